"""Bad-input corpus, checkpoints and embeddings: ``naviewer embed``, ``prune``, ``train --resume`` and
``review --embeddings`` refuse each with exit 2, the file named, no traceback, nothing written (issue 15)."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from badinput_kit import (
    TINY_TRAIN,
    assert_refused,
    image_tree,
    naviewer_checkpoint,
    run_cli,
    tiny_backbone_state,
    tiny_workspace,
    unchanged,
)


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return tiny_backbone_state()


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _raw(data: bytes) -> Callable[[Path, dict], Path]:
    def make(path: Path, state: dict) -> Path:
        path.write_bytes(data)
        return path
    return make


def _truncated(path: Path, state: dict) -> Path:
    naviewer_checkpoint(path, state)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def _legacy_truncated(path: Path, state: dict) -> Path:
    torch.save(state, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _npy(path: Path, state: dict) -> Path:
    with open(path, "wb") as handle:
        np.save(handle, np.zeros((3, 3)))
    return path


def _zip(path: Path, state: dict) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hello")
    return path


def _pickled(obj: object, protocol: int = 2) -> Callable[[Path, dict], Path]:
    def make(path: Path, state: dict) -> Path:
        with open(path, "wb") as handle:
            pickle.dump(obj, handle, protocol=protocol)
        return path
    return make


def _torch_code(path: Path, state: dict) -> Path:
    torch.save({"state_dict": _Evil()}, path)
    return path


def _forged(**changes: object) -> Callable[[Path, dict], Path]:
    def make(path: Path, state: dict) -> Path:
        return naviewer_checkpoint(path, state, **changes)
    return make


def _folder(path: Path, state: dict) -> Path:
    path.mkdir()
    return path


def _no_resnet(path: Path, state: dict) -> Path:
    torch.save({"weights": {"a.b": torch.zeros(3)}}, path)
    return path


def _odd_width(path: Path, state: dict) -> Path:
    torch.save({"conv1.weight": torch.zeros(6, 3, 3, 3)}, path)
    return path


def _sparse(path: Path, state: dict) -> Path:
    """A state dict with one sparse tensor: torch has no sparse kernel for the checks (a NotImplementedError)."""
    name = next(k for k, v in state.items() if v.ndim == 4)
    torch.save({**state, name: state[name].to_sparse()}, path)
    return path


def _changed_inside(path: Path, state: dict) -> Path:
    """64 bytes changed in the middle of a valid checkpoint: torch's reader does not check the CRCs (loaded)."""
    naviewer_checkpoint(path, state)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes((b + 1) % 256 for b in data[middle:middle + 64])
    path.write_bytes(bytes(data))
    return path


def _tensors_changed(change: Callable[[str, torch.Tensor], torch.Tensor]) -> Callable[[Path, dict], Path]:
    def make(path: Path, state: dict) -> Path:
        return naviewer_checkpoint(path, {name: change(name, tensor) for name, tensor in state.items()})
    return make


#: (id, maker, words in the message)
CHECKPOINT_CASES = [
    ("truncated", _truncated, ["truncated"]),
    ("legacy-truncated", _legacy_truncated, ["truncated"]),
    ("random-bytes", _raw(bytes(np.random.default_rng(5).integers(0, 256, 3000, dtype=np.uint8))), ["neither"]),
    ("empty", _raw(b""), ["empty"]),
    ("text", _raw(b"just some notes\n"), ["neither"]),
    ("numpy-array", _npy, ["NumPy"]),
    ("zip-not-torch", _zip, ["not a PyTorch"]),
    ("plain-pickle", _pickled({"a": [1, 2]}, protocol=4), ["pickle"]),
    ("code-pickle", _pickled(_Evil()), []),
    ("torch-with-code", _torch_code, ["refused", "system"]),
    ("method-is-a-string", _forged(method="simclr"), ["'method' should be a table"]),
    ("method-name-number", _forged(method={"method": 7}), ["'method.method'"]),
    ("config-not-table", _forged(config=[1]), ["'config' should be a table"]),
    ("image-size-negative", _forged(config={"image_size": -3}), ["image_size"]),
    ("model-not-tensors", _forged(model={"backbone.conv1.weight": "x"}), ["'model' should hold only named tensors"]),
    ("model-empty", _forged(model={}), ["no backbone weights"]),
    ("version-newer", _forged(version=7), ["newer"]),
    ("backbone-width-forged", _forged(method={"method": "simclr", "backbone": {"arch": "resnet10", "width": 8192}}),
     ["records the backbone"]),
    ("backbone-unknown-key", _forged(method={"method": "simclr", "backbone": {"layers": 3}}), ["backbone record"]),
    ("no-resnet-weights", _no_resnet, ["no ResNet backbone weights"]),
    ("odd-width", _odd_width, ["multiple of 4"]),
    ("a-folder", _folder, ["folder"]),
    ("sparse-tensor", _sparse, ["sparse"]),
    ("bytes-changed-inside", _changed_inside, ["checksum"]),
    # finite weights, NaN features: embed wrote all-NaN embeddings and eval reported chance accuracy, rc 0 (a sweep)
    ("negative-running-var", _tensors_changed(lambda n, t: -torch.ones_like(t) if n.endswith("running_var") else t),
     ["running variance is negative"]),
    ("huge-weights", _tensors_changed(lambda n, t: torch.full_like(t, 1e30) if n.endswith("conv1.weight") else t),
     ["NaN or infinite"]),
    # "lt_cpu not implemented for ComplexFloat" from the running-variance check (a bad-input probe, session 32)
    ("complex-weights", _tensors_changed(lambda n, t: torch.complex(t, t) if t.is_floating_point() else t),
     ["complex numbers"]),
]


@pytest.mark.parametrize("case, make, words", CHECKPOINT_CASES, ids=[c[0] for c in CHECKPOINT_CASES])
def test_embed_refuses_a_bad_checkpoint(tmp_path: Path, state, case: str, make, words: list[str]) -> None:  # noqa: ANN001
    checkpoint = make(tmp_path / "model.pt", state)
    out = tmp_path / "emb.npy"
    with unchanged(tmp_path):
        outcome = run_cli(["embed", "--checkpoint", checkpoint, "--dataset", "demo", "--out", out, "--device", "cpu"])
    line = assert_refused(outcome, checkpoint, *words)
    assert "weights_only" not in line
    assert not out.exists() and not Path("PWNED").exists() and not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("case", ["truncated", "method-is-a-string", "code-pickle", "backbone-width-forged"])
def test_prune_refuses_a_bad_checkpoint(tmp_path: Path, state, case: str) -> None:
    make = dict((c[0], c[1]) for c in CHECKPOINT_CASES)[case]
    checkpoint = make(tmp_path / "model.pt", state)
    with unchanged(tmp_path):
        outcome = run_cli(["prune", checkpoint])
    assert_refused(outcome, checkpoint)
    assert not (tmp_path / "model-clp.pt").exists()


@pytest.mark.parametrize("changes, words", [
    ({"optimizer": [1], "schedule": {}, "completed_epochs": 1, "step_in_epoch": 0, "global_step": 1}, ["'optimizer'"]),
    ({"optimizer": {}, "schedule": {}, "completed_epochs": "1", "step_in_epoch": 0, "global_step": 1},
     ["'completed_epochs'"]),
    ({"method": "simclr"}, ["'method' should be a table"]),
], ids=["optimizer-list", "epochs-text", "method-string"])
def test_train_resume_refuses_a_forged_training_checkpoint(tmp_path: Path, state, changes, words) -> None:  # noqa: ANN001
    data = image_tree(tmp_path / "data", per_class=4)
    last = naviewer_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt", state, **changes)
    with unchanged(tmp_path):
        outcome = run_cli(["train", "--dataset", data, "--out", tmp_path / "run", "--resume", "--epochs", "2",
                           *TINY_TRAIN])
    assert_refused(outcome, last, *words)


def _embeddings(kind: str, n: int) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "truncated":
            with open(path, "wb") as handle:
                np.save(handle, np.zeros((n, 4), np.float32))
            path.write_bytes(path.read_bytes()[:-20])
        elif kind == "objects":
            with open(path, "wb") as handle:
                np.save(handle, np.array([{"a": 1}] * n, dtype=object), allow_pickle=True)
        elif kind == "rows":
            np.save(path, np.zeros((n + 3, 4), np.float32))
        elif kind == "one-d":
            np.save(path, np.zeros(n, np.float32))
        elif kind == "strings":
            np.save(path, np.array([["x"] * 4] * n))
        elif kind == "text":
            path.write_text("0.1 0.2\n")
        elif kind == "empty":
            path.write_bytes(b"")
    return write


@pytest.mark.parametrize("kind, words", [
    ("truncated", ["corrupt embeddings"]), ("objects", ["Python objects"]), ("rows", ["rows"]),
    ("one-d", ["2-D"]), ("strings", ["numbers"]),
    # a text file read as "it holds Python objects (pickles are never loaded)" (a sweep, session 18)
    ("text", ["corrupt embeddings", "not a .npy file"]), ("empty", ["corrupt embeddings", "empty"]),
])
def test_review_refuses_bad_embeddings(tmp_path: Path, kind: str, words: list[str]) -> None:
    ws = tiny_workspace(tmp_path / "ws")
    path = ws / "embeddings" / "r1" / "feat.npy"
    _embeddings(kind, 8)(path)
    with unchanged(tmp_path):
        outcome = run_cli(["review", ws, "--embeddings", "r1:feat"])
    assert_refused(outcome, path, *words)


def test_a_checkpoint_saved_without_checksums_still_loads(tmp_path: Path, state) -> None:  # noqa: ANN001
    """torch.serialization.set_crc32_options(False) writes zero CRCs: torch loads the file, and so must naviewer."""
    from naviewer.ssl.checkpoints import load_file

    torch.serialization.set_crc32_options(False)
    try:
        torch.save(state, tmp_path / "nocrc.pt")
    finally:
        torch.serialization.set_crc32_options(True)
    assert set(load_file(tmp_path / "nocrc.pt")) == set(state)


def test_eval_says_when_k_exceeds_the_bank_or_the_temperature_leaves_one_vote(tmp_path) -> None:
    """eval --knn-k 100000 on 1,437 images and --knn-t 1e-30 ran without a word (a sweep, session 18)."""
    from badinput_kit import naviewer_checkpoint, run_cli, tiny_backbone_state

    checkpoint = naviewer_checkpoint(tmp_path / "model.pt", tiny_backbone_state())
    outcome = run_cli(["eval", "--checkpoint", checkpoint, "--train-dataset", "demo", "--test-dataset", "demo",
                       "--no-linear", "--knn-k", "100000", "--knn-t", "1e-30", "--device", "cpu"])
    assert outcome.code == 0, outcome.err
    assert "--knn-k 100000 is more than the 1,437 training images" in outcome.err
    assert "--knn-t 1e-30 makes the nearest neighbour's vote the only one" in outcome.err


def test_embed_replaces_only_an_earlier_embedding_of_the_same_shape(tmp_path: Path, state) -> None:
    """``embed --out mine.npy`` replaced someone's own array (a sweep, session 21): an existing .npy is replaced only
    when it has this run's shape (N samples x D features, an earlier embedding of the same set and encoder)."""
    import numpy as np

    checkpoint = naviewer_checkpoint(tmp_path / "model.pt", state)
    data = image_tree(tmp_path / "imgs", per_class=4)
    mine = tmp_path / "mine.npy"
    np.save(mine, np.arange(12.0).reshape(3, 4))
    with unchanged(tmp_path):
        outcome = run_cli(["embed", "--checkpoint", checkpoint, "--dataset", data, "--out", mine, "--device", "cpu"])
    assert_refused(outcome, mine, "holds a 3 x 4 array", "replaces only an earlier embedding of the same shape")
    out = tmp_path / "emb.npy"
    argv = ["embed", "--checkpoint", checkpoint, "--dataset", data, "--out", out, "--device", "cpu"]
    assert run_cli(argv).code == 0 and np.load(out).shape[0] == 8
    assert run_cli(argv).code == 0  # its own earlier output: replaced
    # an array of the very same shape that naviewer did not write is the user's, not an earlier embedding
    same = tmp_path / "same.npy"
    np.save(same, np.zeros(np.load(out).shape, dtype=np.float32))
    with unchanged(tmp_path):
        outcome = run_cli(["embed", "--checkpoint", checkpoint, "--dataset", data, "--out", same, "--device", "cpu"])
    assert_refused(outcome, same, "naviewer embed did not write", "same.npy.source.json")
    # a garbage record beside the user's array vouches for nothing; a protected earlier output is not replaced
    (tmp_path / "same.npy.source.json").write_text("garbage", encoding="utf-8")
    with unchanged(tmp_path):
        outcome = run_cli(["embed", "--checkpoint", checkpoint, "--dataset", data, "--out", same, "--device", "cpu"])
    assert_refused(outcome, same, "naviewer embed did not write")
    import os

    os.chmod(out, 0o444)
    with unchanged(tmp_path):
        outcome = run_cli(argv)
    assert_refused(outcome, out, "read-only")
    os.chmod(out, 0o644)
    # the plain embed's record lets a sharded run of the same encoder reuse its file
    sharded = run_cli(argv + ["--shard-size", "4", "--dtype", "float32"])
    assert sharded.code == 0 and "wrote 8 x" in sharded.out, sharded.err
