"""``method.txt``: the six ``Label: value`` lines the ImageNet-S server requires in every submission.

The labels and their order are exactly those written by PASS, ImageNetSegModel and MMSeg
``imagenets_submit.py`` (formats.md section 3.1).
"""

from __future__ import annotations

from dataclasses import dataclass

# (attribute, label) in file order. The labels are the server's; do not reword them.
METHOD_FIELDS: tuple[tuple[str, str], ...] = (
    ("method_name", "Method name"),
    ("training_data", "Training data"),
    ("training_scheme", "Training scheme"),
    ("networks", "Networks"),
    ("link", "Paper/Project link"),
    ("description", "Method description"),
)


@dataclass(frozen=True)
class MethodInfo:
    """What the submission says about the method. Every value must be one non-empty line."""

    method_name: str = "luss (PASS + SAMPASS)"
    training_data: str = "ImageNet-S50 train (no labels)"
    training_scheme: str = "SSL"
    networks: str = "SAM ViT-B/16 + Feature Aggregator"
    link: str = "https://github.com/LUSSeg/ImageNet-S"
    description: str = (
        "Fully unsupervised: self-supervised pretraining, pixel-attention clustering into pseudo-labels, "
        "fine-tuning on the pseudo-labels, SAM semantic voting; clusters matched to classes on validation."
    )

    def problems(self, source: str = "method.txt") -> list[str]:
        """Empty or multi-line values, each naming its field (an empty list means valid)."""
        out = []
        for attr, label in METHOD_FIELDS:
            value = getattr(self, attr)
            if not isinstance(value, str) or not value.strip():
                out.append(f"{source}: '{label}' is empty; the server requires a value on every line.")
            elif "\n" in value or "\r" in value:
                # A newline would split one field over two lines and break the 6-line layout.
                out.append(f"{source}: '{label}' spans several lines; it must be a single line.")
        return out

    def to_text(self) -> str:
        """The exact file content: six ``Label: value`` lines, each ending in a newline."""
        return "".join(f"{label}: {getattr(self, attr).strip()}\n" for attr, label in METHOD_FIELDS)


def parse_method_text(text: str, source: str = "method.txt") -> tuple[MethodInfo | None, list[str]]:
    """Parse ``method.txt`` strictly: six lines, the server's labels in order, non-empty values.

    Returns ``(info, problems)``; ``info`` is ``None`` when any problem was found.
    """
    # Trailing blank lines and Windows line ends are harmless; anything else must match exactly.
    lines = text.replace("\r\n", "\n").rstrip("\n").split("\n") if text.strip() else []
    problems: list[str] = []
    if len(lines) != len(METHOD_FIELDS):
        problems.append(
            f"{source}: has {len(lines)} lines, expected exactly {len(METHOD_FIELDS)} "
            f"({', '.join(label for _, label in METHOD_FIELDS)})."
        )
    values: dict[str, str] = {}
    for lineno, ((attr, label), line) in enumerate(zip(METHOD_FIELDS, lines, strict=False), start=1):
        prefix = f"{label}:"
        if not line.startswith(prefix):
            problems.append(f"{source}: line {lineno} must start with '{prefix}', got {line[:60]!r}.")
            continue
        value = line[len(prefix) :].strip()
        if not value:
            problems.append(f"{source}: line {lineno} ('{label}') has no value.")
        values[attr] = value
    if problems:
        return None, problems
    return MethodInfo(**values), []
