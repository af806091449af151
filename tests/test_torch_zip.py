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


def test_missing_storage_is_an_error(tmp_path):
    torch.save({"w": torch.ones(3)}, tmp_path / "a.pth")
    with zipfile.ZipFile(tmp_path / "a.pth") as src, zipfile.ZipFile(tmp_path / "b.pth", "w") as dst:
        for name in src.namelist():
            if "/data/" not in name:
                dst.writestr(name, src.read(name))
    with pytest.raises(CheckpointFormatError, match="storage .* is missing"):
        load_torch_checkpoint(tmp_path / "b.pth")
