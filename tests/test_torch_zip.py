"""Reading torch.save checkpoints without torch: tensors become numpy arrays; nothing else is executed."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

from tools.checkpoints.torch_zip import CheckpointFormatError, load_torch_checkpoint
from tools.errors import LussError

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch


def test_state_dict_of_a_small_model_round_trips(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(5, 2))
    state = model.state_dict()
    torch.save(state, tmp_path / "m.pth")
    loaded = load_torch_checkpoint(tmp_path / "m.pth")
    assert isinstance(loaded, OrderedDict)
    assert list(loaded) == list(state)
    for key, value in state.items():
        assert loaded[key].dtype == value.numpy().dtype, key
        np.testing.assert_array_equal(loaded[key], value.numpy())


def test_dtypes_strides_offsets_and_shared_storage(tmp_path):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    obj = {
        "transposed": base.t(),  # non-contiguous strides
        "slice": base[1:3, 2:5],  # storage offset, shared storage with "transposed"
        "half": torch.linspace(-2, 2, 7, dtype=torch.float16),
        "bf16": torch.tensor([1.5, -3.0, 0.125], dtype=torch.bfloat16),
        "double": torch.tensor([1e-300, 2.0], dtype=torch.float64),
        "long": torch.tensor([2**40, -1]),
        "int": torch.tensor([7, -7], dtype=torch.int32),
        "uint8": torch.tensor([0, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False]),
        "scalar": torch.tensor(3.25),
        "empty": torch.zeros(0, 3),
        "param": torch.nn.Parameter(torch.ones(2, 2)),
        "nested": {"epoch": 3, "names": ["a", "b"], "lr": 0.1, "t": (torch.ones(1),)},
    }
    torch.save(obj, tmp_path / "x.pth")
    got = load_torch_checkpoint(tmp_path / "x.pth")
    for key in ["transposed", "slice", "half", "double", "long", "int", "uint8", "bool", "scalar", "param"]:
        np.testing.assert_array_equal(got[key], obj[key].detach().numpy(), err_msg=key)
        assert got[key].dtype == obj[key].detach().numpy().dtype, key
    np.testing.assert_array_equal(got["bf16"], np.array([1.5, -3.0, 0.125], dtype=np.float32))
    assert got["empty"].shape == (0, 3)
    assert got["nested"]["epoch"] == 3 and got["nested"]["names"] == ["a", "b"]
    np.testing.assert_array_equal(got["nested"]["t"][0], np.ones(1, np.float32))


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_arbitrary_globals_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("evil/data.pkl", pickle.dumps({"x": _Evil()}, protocol=2))
    with pytest.raises(CheckpointFormatError, match=r"refuses to load '(posix|os)\.system'") as err:
        load_torch_checkpoint(path)
    assert str(path) in str(err.value)
    assert isinstance(err.value, LussError)


def test_truncated_file_names_the_file(tmp_path):
    torch.save({"w": torch.ones(1000)}, tmp_path / "ok.pth")
    data = (tmp_path / "ok.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointFormatError, match="cut.pth"):
        load_torch_checkpoint(tmp_path / "cut.pth")


def test_legacy_format_and_missing_file_are_errors(tmp_path):
    buf = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buf, _use_new_zipfile_serialization=False)
    (tmp_path / "legacy.pth").write_bytes(buf.getvalue())
    with pytest.raises(CheckpointFormatError, match="legacy"):
        load_torch_checkpoint(tmp_path / "legacy.pth")
    with pytest.raises(CheckpointFormatError, match="not found"):
        load_torch_checkpoint(tmp_path / "absent.pth")


def _rewrite(src, dst, storage=lambda data: data, compression=zipfile.ZIP_STORED) -> None:
    """Copy a checkpoint zip, passing each storage's bytes through ``storage`` (None drops it)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=compression) as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if "/data/" in name:
                data = storage(data)
            if data is not None:
                zout.writestr(name, data)


def test_missing_storage_is_an_error(tmp_path):
    torch.save({"w": torch.ones(3)}, tmp_path / "a.pth")
    _rewrite(tmp_path / "a.pth", tmp_path / "b.pth", storage=lambda data: None)
    with pytest.raises(CheckpointFormatError, match="storage .* is missing"):
        load_torch_checkpoint(tmp_path / "b.pth")


def test_a_storage_shorter_than_its_tensor_is_an_error(tmp_path):
    torch.save({"w": torch.ones(3)}, tmp_path / "a.pth")
    _rewrite(tmp_path / "a.pth", tmp_path / "short.pth", storage=lambda data: data[:8])
    with pytest.raises(CheckpointFormatError, match=r"short.pth: storage .* holds 8 bytes, expected 12"):
        load_torch_checkpoint(tmp_path / "short.pth")


def test_a_flipped_byte_in_a_storage_is_a_crc_error(tmp_path):
    torch.save({"w": torch.arange(1000, dtype=torch.float32)}, tmp_path / "ok.pth")
    data = bytearray((tmp_path / "ok.pth").read_bytes())
    with zipfile.ZipFile(tmp_path / "ok.pth") as archive:
        info = next(i for i in archive.infolist() if "/data/" in i.filename)
    data[info.header_offset + 1000] ^= 0xFF  # inside the 4,000 bytes of the storage
    (tmp_path / "flipped.pth").write_bytes(bytes(data))
    with pytest.raises(CheckpointFormatError, match=r"flipped.pth: corrupt checkpoint \(bad CRC"):
        load_torch_checkpoint(tmp_path / "flipped.pth")


def test_compressed_storages_are_read_too(tmp_path):
    state = {"w": torch.randn(4, 5), "h": torch.arange(6, dtype=torch.float16)}
    torch.save(state, tmp_path / "a.pth")
    _rewrite(tmp_path / "a.pth", tmp_path / "deflated.pth", compression=zipfile.ZIP_DEFLATED)
    got = load_torch_checkpoint(tmp_path / "deflated.pth")
    for key, value in state.items():
        np.testing.assert_array_equal(got[key], value.numpy(), err_msg=key)
        assert got[key].dtype == value.numpy().dtype


def test_tensors_own_their_memory(tmp_path):
    """The first whole-storage tensor is its storage read from the file, no second copy; every other
    tensor on that storage is a copy, so no two loaded tensors share memory and all are writable."""
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    obj = {"whole": base, "flat": base.view(24), "rows": base[1:3], "t": base.t()}
    torch.save(obj, tmp_path / "shared.pth")
    got = load_torch_checkpoint(tmp_path / "shared.pth")
    for key, value in obj.items():
        np.testing.assert_array_equal(got[key], value.numpy(), err_msg=key)
        assert got[key].flags.writeable, key
    keys = list(obj)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            assert not np.shares_memory(got[a], got[b]), (a, b)
