"""Read PyTorch ``.pth`` checkpoints (the zip format of ``torch.save``, torch >= 1.6) without torch.

A ``.pth`` file is a zip archive holding ``<name>/data.pkl`` (a pickle whose tensors are persistent
references) and one raw little-endian buffer per storage in ``<name>/data/<key>``. We unpickle with an
allow-list: tensors are rebuilt as numpy arrays from their storage, offset, size and stride, and any
other global (arbitrary code in a hostile file) is refused, so loading a checkpoint is safe. Each
storage is read once, straight from the file into its own buffer, and its CRC-32 checked; a tensor
that is a whole storage is that buffer, so the peak memory of a load is about the file's size.

Why this reader and not Jittor's ``jittor_utils.load_pytorch`` (what ``jt.load`` uses for ``.pth``),
measured by ``make bench-checkpoint-load`` (``bench/bench_checkpoint_load.py``; the numbers and the
table are in the README's Benchmarks section): Jittor's reader fails the hard requirement for
user-supplied files. Its unpickler resolves every other global, so a pickled ``os.system`` in a
``.pth`` (zip or legacy format) **runs** while loading; this one refuses both. It also loads a storage
with a flipped byte without an error (this one checks the CRC), reads a tensor at an offset into a
shared storage wrongly (zeros past the offset), returns 0-d tensors (DINO's AdamW ``step``) as shape
``(1,)``, fails on a uint8 storage, and returns ``None`` for a ``.pth.tar`` name. On the official
layouts both are bit-exact with peak RSS about the file size (SAM ViT-B 375 MB: 358 vs 361 MiB; DINO
``checkpoint.pth`` 705 MB: 674 vs 677 MiB) and both keep fp16. Jittor's keeps bf16 as bf16, where
this one widens it to float32 (exact; numpy has no bfloat16; the loaders cast to the module's dtype
anyway). Jittor's is faster: SAM ViT-B median 0.34-0.67 s against 0.42-1.42 s here over four runs
on a shared 2-core machine (the spread is the kernel faulting in the new buffers; about 0.2 s of ours
is the CRC check): a second or two at most per file, once per process.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from tools.errors import LussError

_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # a zip member's local file header (ends: name, extra lengths)
_ENCRYPTED = 0x1

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


def _c_strides(size: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for n in reversed(size):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


def _strided_copy(
    storage: np.ndarray, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
) -> np.ndarray:
    """numpy equivalent of ``torch._utils._rebuild_tensor_v2``: a copy of the strided view of ``storage``."""
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
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(
        self, data: bytes, archive: zipfile.ZipFile, file: BinaryIO, prefix: str, path: str, byteorder: str
    ):
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._file = file
        self._prefix = prefix
        self._path = path
        self._byteorder = byteorder
        self._storages: dict[str, np.ndarray] = {}
        self._handed_out: set[int] = set()  # ids of storages already returned as a tensor

    def _rebuild_tensor(self, storage: np.ndarray, offset: int, size, stride, *_unused) -> np.ndarray:
        """A tensor that is a whole storage, in C order, is that storage (the first time: no copy);
        any other tensor (a view, or a second tensor on the same storage) is a copy."""
        size = tuple(int(s) for s in size)
        stride = tuple(int(s) for s in stride)
        whole = offset == 0 and math.prod(size) == storage.size and stride == _c_strides(size)
        if whole and id(storage) not in self._handed_out:
            self._handed_out.add(id(storage))
            return storage.reshape(size)
        return _strided_copy(storage, offset, size, stride)

    def _read_storage(self, member: str, nbytes: int) -> np.ndarray:
        """The first ``nbytes`` bytes of ``member`` in a new buffer of their own, CRC-checked.

        ``torch.save`` stores every storage uncompressed, so its bytes are read from the file straight
        into the buffer (zipfile's reader would first make a bytes object of each: twice the memory and
        about 3x the time on the SAM ViT-B file); other members go through zipfile.
        """
        info = self._archive.getinfo(member)  # KeyError: the storage is missing
        if info.file_size < nbytes:
            raise CheckpointFormatError(
                f"{self._path}: storage '{member}' holds {info.file_size} bytes, expected {nbytes}"
            )
        buffer = np.empty(info.file_size, dtype=np.uint8)
        if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & _ENCRYPTED:
            file = self._file
            file.seek(info.header_offset)
            header = file.read(_LOCAL_HEADER.size)
            if len(header) < _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
                raise CheckpointFormatError(f"{self._path}: corrupt checkpoint (bad header of '{member}')")
            name_length, extra_length = _LOCAL_HEADER.unpack(header)[-2:]
            file.seek(info.header_offset + _LOCAL_HEADER.size + name_length + extra_length)
            got = file.readinto(memoryview(buffer))
            if got < info.file_size:
                raise CheckpointFormatError(
                    f"{self._path}: storage '{member}' is cut short ({got} of {info.file_size} bytes): "
                    "a truncated download?"
                )
            if zlib.crc32(buffer) != info.CRC:
                raise CheckpointFormatError(f"{self._path}: corrupt checkpoint (bad CRC of '{member}')")
        else:
            with self._archive.open(member) as stream:  # zipfile checks the CRC on reading to the end
                memoryview(buffer)[:] = stream.read()
        return buffer[:nbytes]

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return self._rebuild_tensor
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
        dtype = storage_type.dtype.newbyteorder("<" if self._byteorder == "little" else ">")
        try:
            raw = self._read_storage(member, numel * dtype.itemsize)
        except KeyError:
            raise CheckpointFormatError(f"{self._path}: storage '{member}' is missing") from None
        array = raw.view(dtype)
        if storage_type.name == "BFloat16Storage":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        array = array.astype(array.dtype.newbyteorder("="), copy=False)
        self._storages[key] = array
        return array


def load_torch_checkpoint(path: str | Path) -> Any:
    """Load a ``torch.save`` zip checkpoint; every tensor comes back as a numpy array of its own.

    No two returned arrays share memory, none is read-only, and none is a view of the file.

    Raises :class:`CheckpointFormatError` naming ``path`` when the file is missing, not a zip (e.g. the
    pre-1.6 legacy format or a truncated download), lacks ``data.pkl`` or a storage, holds a storage
    shorter than its tensor or one whose CRC-32 does not match (a damaged file), or references a
    Python global other than tensors, storages, ``OrderedDict`` and ``argparse.Namespace``
    (read as :class:`Namespace`).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointFormatError(f"{path}: checkpoint file not found")
    with open(path, "rb") as file:
        try:
            archive = zipfile.ZipFile(file)
        except zipfile.BadZipFile:
            raise CheckpointFormatError(
                f"{path}: not a PyTorch zip checkpoint (truncated download, or the legacy pre-1.6 format: "
                "re-save it with a recent torch.save)"
            ) from None
        with archive:
            return _load_archive(archive, file, path)


def _load_archive(archive: zipfile.ZipFile, file: BinaryIO, path: Path) -> Any:
    """Unpickle ``data.pkl`` of an open checkpoint archive (``file`` is the archive's own file)."""
    pickles = [n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
    if len(pickles) != 1:
        raise CheckpointFormatError(f"{path}: expected one data.pkl in the archive, found {len(pickles)}")
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = "little"
    if f"{prefix}byteorder" in archive.namelist():
        byteorder = archive.read(f"{prefix}byteorder").decode().strip()
    try:
        data = archive.read(pickles[0])
        return _RestrictedUnpickler(data, archive, file, prefix, str(path), byteorder).load()
    except CheckpointFormatError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, pickle.UnpicklingError, ValueError, OSError) as exc:
        raise CheckpointFormatError(f"{path}: corrupt checkpoint ({exc})") from None
