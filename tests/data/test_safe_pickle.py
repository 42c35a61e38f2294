"""The restricted unpickler admits CIFAR batches and nothing that could run code."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from naviewer.data.cifar import CifarDataset
from naviewer.data.safe_pickle import load_pickle
from naviewer.errors import NaviewerError

from .makers import make_cifar10, write_pickle


class _RunsCommand:
    """A payload that would run a shell command when unpickled by an unrestricted loader."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_command_payload_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    evil = write_pickle(tmp_path / "evil.pkl", {b"data": _RunsCommand(marker)})
    with pytest.raises(NaviewerError) as info:
        load_pickle(evil)
    assert info.value.path == str(evil)
    assert "system" in str(info.value) and "refused" in str(info.value)
    assert not marker.exists()


def test_command_payload_in_a_cifar_batch_is_refused(tmp_path: Path) -> None:
    folder, _ = make_cifar10(tmp_path, per_batch=2, batches=(1,))
    marker = tmp_path / "PWNED2"
    write_pickle(folder / "data_batch_1", {b"data": _RunsCommand(marker), b"labels": [0, 1]})
    with pytest.raises(NaviewerError) as info:
        CifarDataset(tmp_path)
    assert info.value.path.endswith("data_batch_1")
    assert not marker.exists()


def test_other_globals_are_refused(tmp_path: Path) -> None:
    path = write_pickle(tmp_path / "eval.pkl", (eval, ("1+1",)))  # a reference to builtins.eval
    with pytest.raises(NaviewerError, match=r"\.eval"):
        load_pickle(path)


def test_object_arrays_are_refused(tmp_path: Path) -> None:
    path = write_pickle(tmp_path / "obj.pkl", {b"data": np.array([1, "a"], dtype=object)})
    with pytest.raises(NaviewerError, match="object dtype"):
        load_pickle(path)


def test_legacy_numpy_module_name_is_admitted(tmp_path: Path) -> None:
    """The official files (numpy 1) name numpy.core.multiarray; re-saved ones numpy._core."""
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    raw = pickle.dumps({b"data": array, b"text": b"\xffbytes"}, protocol=2)
    if b"numpy._core.multiarray" in raw:
        raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in raw
    path = tmp_path / "legacy.pkl"
    path.write_bytes(raw)
    loaded = load_pickle(path)
    np.testing.assert_array_equal(loaded[b"data"], array)
    assert loaded[b"text"] == b"\xffbytes"


@pytest.mark.parametrize("cut", [0, 1, 40, -10])
def test_truncated_or_empty_pickle_names_the_file(tmp_path: Path, cut: int) -> None:
    raw = pickle.dumps({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0] * 4}, protocol=2)
    path = tmp_path / "broken"
    path.write_bytes(raw[:cut])
    with pytest.raises(NaviewerError) as info:
        load_pickle(path)
    assert info.value.path == str(path)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(NaviewerError, match="not found") as info:
        load_pickle(tmp_path / "nope")
    assert info.value.path == str(tmp_path / "nope")


def test_an_empty_bytes_field_saved_by_python_3_at_protocol_2_is_read(tmp_path):
    """Python 3 writes b'' as a call of bytes() at protocol 2; the batch was refused as a malicious pickle. A call
    with an argument (bytes(10**12): a terabyte) stays refused."""
    import pickle

    import pytest

    from naviewer.data.safe_pickle import load_pickle
    from naviewer.errors import NaviewerError

    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({b"batch_label": b"", b"labels": [1, 2]}, protocol=2))
    assert load_pickle(path) == {b"batch_label": b"", b"labels": [1, 2]}
    path.write_bytes(b"\x80\x02c__builtin__\nbytes\nJ\x00\x10\xa5\xd4\x85R.")
    with pytest.raises(NaviewerError, match="refused"):
        load_pickle(path)


def test_a_batch_saved_at_protocol_5_is_read_and_its_buffer_checked(tmp_path: Path) -> None:
    """Protocol 5 (Python 3.14's default) writes arrays through numpy's _frombuffer: a re-saved batch was refused as
    a possibly malicious pickle (bad-input sweep, session 17). Admitted for plain data of the right size only."""
    batch = {b"data": np.arange(24, dtype=np.uint8).reshape(2, 12), b"labels": [1, 2],
             b"f": np.asfortranarray(np.arange(6.0).reshape(2, 3))}
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=5))
    out = load_pickle(path)
    assert np.array_equal(out[b"data"], batch[b"data"]) and np.array_equal(out[b"f"], batch[b"f"])
    from naviewer.data.safe_pickle import RefusedPickle, _frombuffer

    with pytest.raises(RefusedPickle, match="bytes for shape"):
        _frombuffer(b"\x00" * 5, np.dtype(np.uint8), (2, 3), "C")  # a shape the bytes do not fill
    with pytest.raises(RefusedPickle, match="not plain data"):
        _frombuffer(b"\x00" * 8, np.dtype(object), (1,), "C")
