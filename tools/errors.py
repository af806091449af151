"""Errors that describe a user's mistake. The CLI prints them without a traceback."""

from __future__ import annotations


class LussError(Exception):
    """Base class: something the user can fix. The message names the file and the fix."""


class DatasetError(LussError):
    """The dataset tree is missing a part or holds a bad file; the CLI prints each of ``problems``."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or []


class DamagedImageError(DatasetError):
    """An image file that cannot be decoded (truncated, empty, not an image). ``path`` names it."""

    def __init__(self, message: str, path: str):
        super().__init__(message)
        self.path = path

    def __reduce__(self):  # loader workers send it back to the trainer through a pipe
        return (type(self), (str(self), self.path))


class LabelFormatError(LussError):
    """A label/prediction PNG is not in the ImageNet-S encoding (RGB, id = R + 256*G, B = 0)."""


class SubmissionError(LussError):
    """A prediction folder or submission zip would be refused by the server."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or []


class PrepareError(LussError):
    """``luss prepare`` cannot build the ImageNet-S tree from the given inputs."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or []


class MissingSourceError(PrepareError):
    """An image the split lists name is not in the ILSVRC2012 folder."""


class AnnotationZipError(PrepareError):
    """The annotation zip is unreadable, of another benchmark, or lacks listed masks."""


class NoSpaceError(PrepareError):
    """The destination's disk is (or would become) full."""
