"""Read PyTorch ``.pth`` checkpoints (the zip format of ``torch.save``, torch >= 1.6) without torch.

A ``.pth`` file is a zip archive holding ``<name>/data.pkl`` (a pickle whose tensors are persistent
references) and one raw little-endian buffer per storage in ``<name>/data/<key>``. We unpickle with an
allow-list: tensors are rebuilt as numpy arrays from their storage, offset, size and stride, and any
other global (arbitrary code in a hostile file) is refused, so loading a checkpoint is safe.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from tools.errors import LussError

# torch storage class name -> numpy dtype (bfloat16 is widened to float32 on load).
_STORAGE_DTYPES: dict[str, np.dtype] = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class CheckpointFormatError(LussError):
    """A checkpoint file is not a readable PyTorch zip checkpoint, or holds something we refuse."""


class _StorageType:
    """Stands in for ``torch.<X>Storage`` inside the pickle: it only carries the element dtype."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


def _rebuild_tensor(storage: np.ndarray, offset: int, size, stride, *_unused) -> np.ndarray:
    """numpy equivalent of ``torch._utils._rebuild_tensor_v2``: view ``storage`` as a strided tensor."""
    size = tuple(int(s) for s in size)
    stride = tuple(int(s) for s in stride)
    if any(s == 0 for s in size):
        return np.empty(size, dtype=storage.dtype)
    last = offset + sum((n - 1) * st for n, st in zip(size, stride, strict=False))
    if offset < 0 or last >= storage.size:
        raise CheckpointFormatError(
            f"tensor of size {size} (stride {stride}, offset {offset}) reads past its storage of "
            f"{storage.size} elements"
        )
    base = storage[offset:]
    strides = tuple(st * storage.itemsize for st in stride)
    return np.lib.stride_tricks.as_strided(base, shape=size, strides=strides).copy()


def _rebuild_parameter(data: np.ndarray, *_unused) -> np.ndarray:
    return data


class Namespace:
    """Stands in for ``argparse.Namespace``: training checkpoints (DINO's ``checkpoint.pth``) keep their
    command-line ``args`` in one. Unpickling only fills an attribute bag; no code of the file runs."""

    def __repr__(self) -> str:
        return f"Namespace({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("argparse", "Namespace"): Namespace,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, path: str, byteorder: str):
        import io

        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._prefix = prefix
        self._path = path
        self._byteorder = byteorder
        self._storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise CheckpointFormatError(
                f"{self._path}: refuses to load '{module}.{name}' (only tensors and plain containers are "
                "allowed in a checkpoint)"
            ) from None

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise CheckpointFormatError(f"{self._path}: unknown persistent reference {pid!r}")
        storage_type, key, _location, numel = pid[1], str(pid[2]), pid[3], int(pid[4])
        if not isinstance(storage_type, _StorageType):
            raise CheckpointFormatError(f"{self._path}: unsupported storage type {storage_type!r}")
        if key in self._storages:
            return self._storages[key]
        member = f"{self._prefix}data/{key}"
        try:
            raw = self._archive.read(member)
        except KeyError:
            raise CheckpointFormatError(f"{self._path}: storage '{member}' is missing") from None
        dtype = storage_type.dtype.newbyteorder("<" if self._byteorder == "little" else ">")
        if len(raw) < numel * dtype.itemsize:
            raise CheckpointFormatError(
                f"{self._path}: storage '{member}' holds {len(raw)} bytes, expected {numel * dtype.itemsize}"
            )
        array = np.frombuffer(raw, dtype=dtype, count=numel)
        if storage_type.name == "BFloat16Storage":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        array = array.astype(array.dtype.newbyteorder("="), copy=False)
        self._storages[key] = array
        return array


def load_torch_checkpoint(path: str | Path) -> Any:
    """Load a ``torch.save`` zip checkpoint; every tensor comes back as a numpy array (a copy).

    Raises :class:`CheckpointFormatError` naming ``path`` when the file is missing, not a zip (e.g. the
    pre-1.6 legacy format or a truncated download), lacks ``data.pkl`` or a storage, or references a
    Python global other than tensors, storages, ``OrderedDict`` and ``argparse.Namespace``
    (read as :class:`Namespace`).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointFormatError(f"{path}: checkpoint file not found")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise CheckpointFormatError(
            f"{path}: not a PyTorch zip checkpoint (truncated download, or the legacy pre-1.6 format: "
            "re-save it with a recent torch.save)"
        ) from None
    with archive:
        pickles = [n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise CheckpointFormatError(f"{path}: expected one data.pkl in the archive, found {len(pickles)}")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "little"
        if f"{prefix}byteorder" in archive.namelist():
            byteorder = archive.read(f"{prefix}byteorder").decode().strip()
        try:
            data = archive.read(pickles[0])
            return _RestrictedUnpickler(data, archive, prefix, str(path), byteorder).load()
        except CheckpointFormatError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, pickle.UnpicklingError, ValueError, OSError) as exc:
            raise CheckpointFormatError(f"{path}: corrupt checkpoint ({exc})") from None
