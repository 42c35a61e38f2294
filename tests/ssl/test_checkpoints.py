import os
import pickle

import pytest
import torch

from naviewer.errors import NaviewerError
from naviewer.ssl.backbones import BackboneConfig, build_backbone
from naviewer.ssl.checkpoints import infer_backbone_config, load_encoder, save_atomic
from naviewer.ssl.trainer import TrainConfig, build_trainer
from sslkit import TINY


@pytest.fixture
def reference():
    torch.manual_seed(3)
    return build_backbone(BackboneConfig(**TINY))


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return set(sa) == set(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("prefix,wrap", [
    ("", None), ("module.", "state_dict"), ("module.encoder_q.", "state_dict"), ("backbone.", "model"),
    ("online_network.encoder.", None), ("encoder.", "state_dict"), ("model.", None),
])
def test_prefixed_layouts(tmp_path, reference, prefix, wrap):
    state = {prefix + k: v for k, v in reference.state_dict().items()}
    state[prefix + "fc.weight"] = torch.zeros(10, 64)  # a classifier/projection head is dropped
    if prefix == "module.encoder_q.":  # MoCo checkpoints also hold the key encoder: must not be picked
        state.update({"module.encoder_k." + k: torch.zeros_like(v) for k, v in reference.state_dict().items()})
    if prefix == "online_network.encoder.":
        state.update({"target_network.encoder." + k: torch.zeros_like(v) for k, v in reference.state_dict().items()})
    obj = {wrap: state, "epoch": 3} if wrap else state
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path)
    loaded = load_encoder(path)
    assert loaded.config == BackboneConfig(**TINY)
    assert _same(loaded.backbone, reference)


def test_torchvision_resnet18_state_dict(tmp_path):
    import torchvision

    model = torchvision.models.resnet18(weights=None)
    torch.save(model.state_dict(), tmp_path / "tv.pth")
    loaded = load_encoder(tmp_path / "tv.pth")
    assert loaded.config == BackboneConfig("resnet18", cifar_stem=False, width=64)


def test_naviewer_checkpoint_round_trip(tmp_path, tiny_store):
    cfg = TrainConfig(backbone=TINY, epochs=1, batch_size=16, image_size=16, max_steps_per_epoch=1, num_threads=1)
    trainer = build_trainer(cfg, tiny_store, tmp_path / "run")
    trainer.fit()
    loaded = load_encoder(tmp_path / "run" / "checkpoints" / "last.pt")
    assert loaded.method == "simclr" and loaded.image_size == 16
    assert _same(loaded.backbone, trainer.method.backbone)


def test_mismatch_lists_keys(tmp_path, reference):
    torch.save(reference.state_dict(), tmp_path / "small.pth")
    with pytest.raises(NaviewerError) as info:
        load_encoder(tmp_path / "small.pth", backbone={"arch": "resnet18", "width": 8})
    text = str(info.value)
    assert "small.pth" in text and "missing keys" in text and "layer1.1" in text


def test_malicious_pickle_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"state_dict": Evil()}, tmp_path / "evil.pt")
    with open(tmp_path / "evil.pkl", "wb") as fh:
        pickle.dump(Evil(), fh)
    for name in ("evil.pt", "evil.pkl"):
        with pytest.raises(NaviewerError) as info:
            load_encoder(tmp_path / name)
        assert name in str(info.value)
    assert not marker.exists()


def test_corrupt_and_missing_files(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    for name in ("junk.pt", "missing.pt"):
        with pytest.raises(NaviewerError) as info:
            load_encoder(tmp_path / name)
        assert name in str(info.value)
    torch.save({"weights": [1, 2, 3]}, tmp_path / "empty.pt")
    with pytest.raises(NaviewerError):
        load_encoder(tmp_path / "empty.pt")


def test_infer_and_atomic_save(tmp_path, reference):
    assert infer_backbone_config(reference.state_dict()) == BackboneConfig(**TINY)
    path = save_atomic({"a": torch.ones(2)}, tmp_path / "x" / "f.pt")
    assert path.exists() and not list(path.parent.glob(".*tmp"))


# -- issue 15: hostile and broken checkpoints, Ctrl-C, disk full, stale temporaries ---------------------------
import errno
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np

from naviewer.ssl.checkpoints import cleanup_checkpoint_temps, load_file, load_training_checkpoint


def _good_checkpoint(path, reference, **changes):
    payload = {"format": "naviewer-checkpoint", "version": 1,
               "method": {"method": "simclr", "backbone": dict(TINY), "settings": {}},
               "config": {"image_size": 16}, "model": {"backbone." + k: v for k, v in reference.state_dict().items()}}
    payload.update(changes)
    torch.save(payload, path)
    return path


def _bad_files(tmp_path, reference):
    good = _good_checkpoint(tmp_path / "good.pt", reference)
    data = good.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "text.pt").write_text("hello\n")
    np.save(tmp_path / "array.npy", np.zeros(3))
    (tmp_path / "array.npy").rename(tmp_path / "array.pt")
    with zipfile.ZipFile(tmp_path / "zip.pt", "w") as archive:
        archive.writestr("x.txt", "hi")
    torch.save(reference.state_dict(), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    legacy = (tmp_path / "legacy.pt").read_bytes()
    (tmp_path / "legacy_truncated.pt").write_bytes(legacy[: len(legacy) // 2])
    with open(tmp_path / "plain.pt", "wb") as fh:
        pickle.dump({"a": [1, 2]}, fh, protocol=4)
    return {
        "truncated.pt": "truncated or damaged", "legacy_truncated.pt": "truncated or damaged",
        "random.pt": "neither a zip archive nor a pickle", "empty.pt": "empty", "text.pt": "neither a zip",
        "array.pt": "NumPy array", "zip.pt": "not a PyTorch checkpoint", "plain.pt": "a pickle that is not",
    }


def test_unreadable_checkpoints_are_said_plainly(tmp_path, reference):
    """Whole sentences in naviewer's words; random bytes are not said to hold code; no weights_only=False advice."""
    for name, expected in _bad_files(tmp_path, reference).items():
        with pytest.raises(NaviewerError) as info:
            load_file(tmp_path / name)
        text = str(info.value)
        assert text.startswith(str(tmp_path / name)) and expected in text, text
        assert "weights_only" not in text and "code" not in text and "\n" not in text and len(text) < 400, text


def test_code_in_a_checkpoint_is_named(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(NaviewerError, match=r"refused: loading it would call \w+\.system") as info:
        load_file(tmp_path / "evil.pt")
    assert "weights_only" not in str(info.value)


@pytest.mark.parametrize("changes, message", [
    ({"method": "simclr"}, "'method' should be a table .*, found the text 'simclr'"),
    ({"method": None}, "'method' should be a table .*, found nothing \\(the field is missing or empty\\)"),
    ({"method": {"method": 3}}, "'method.method' should be a method name, found the number 3"),
    ({"config": "x"}, "'config' should be a table"),
    ({"config": {"image_size": -4}}, "'config.image_size' should be a size"),
    ({"model": {"backbone.conv1.weight": [1, 2]}}, "'model' should hold only named tensors"),
    ({"model": [1]}, "'model' should be a table of named tensors"),
    ({"model": {}}, "no backbone weights"),
    ({"version": "1"}, "'version' should be a whole number"),
    ({"version": 99}, "newer than this naviewer"),
    ({"method": {"method": "simclr", "backbone": {"arch": "resnet10", "width": 4096}}}, "records the backbone"),
    ({"method": {"method": "simclr", "backbone": {"depth": 3}}}, "backbone record is unusable"),
])
def test_forged_naviewer_checkpoints_are_refused_with_the_field(tmp_path, reference, changes, message):
    path = _good_checkpoint(tmp_path / "forged.pt", reference, **changes)
    with pytest.raises(NaviewerError, match=message) as info:
        load_encoder(path)
    assert info.value.path == str(path)


def test_forged_training_checkpoint_is_refused_before_resume(tmp_path, reference):
    path = _good_checkpoint(tmp_path / "last.pt", reference, optimizer=[1], schedule={}, completed_epochs=1,
                            step_in_epoch=0, global_step=3)
    with pytest.raises(NaviewerError, match="'optimizer' should be a table"):
        load_training_checkpoint(path)


class _FullDisk:
    """A file whose writes fail with ENOSPC after ``room`` bytes, like a full file system."""

    def __init__(self, path, room):
        self.handle = open(path, "wb", buffering=0)
        self.room = room

    def write(self, data):
        data = bytes(data)
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.handle.write(data)

    def flush(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


def test_disk_full_during_a_save_keeps_the_old_checkpoint_and_no_temporary(tmp_path, monkeypatch):
    from naviewer.ssl import checkpoints

    target = save_atomic({"a": torch.ones(4)}, tmp_path / "last.pt")
    before = target.read_bytes()
    monkeypatch.setattr(checkpoints, "open", lambda path, mode="r", buffering=-1: _FullDisk(path, 300), raising=False)
    with pytest.raises(NaviewerError, match="cannot save the checkpoint: the disk is full; nothing was written") as info:
        save_atomic({"a": torch.zeros(10000)}, target)
    assert info.value.path == str(target)
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temporaries_of_killed_saves_are_removed_on_the_next_run(tmp_path, tiny_store):
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    dead = _dead_pid()
    stale = [folder / f".last.pt.{dead}.tmp", folder / f".last.tmp-{dead}-0a1b2c3d.pt"]
    live = folder / f".last.pt.{os.getpid()}.tmp"  # a save in progress in a live process is left alone
    for path in [*stale, live]:
        path.write_bytes(b"partial")
    assert sorted(p.name for p in cleanup_checkpoint_temps(folder)) == sorted(p.name for p in stale)
    for path in stale:
        path.write_bytes(b"partial")
    cfg = TrainConfig(backbone=TINY, epochs=1, batch_size=16, image_size=16, max_steps_per_epoch=1, num_threads=1)
    build_trainer(cfg, tiny_store, tmp_path / "run").fit()
    assert sorted(p.name for p in folder.iterdir()) == sorted([live.name, "last.pt"])


@pytest.mark.slow  # over 6 s on 2 shared cores
def test_ctrl_c_during_train_writes_the_checkpoint_its_help_promises(tmp_path):
    run = tmp_path / "run"
    args = [sys.executable, "-m", "naviewer", "train", "--dataset", "demo", "--epochs", "100", "--out", str(run),
            "--arch", "resnet10", "--width", "8", "--image-size", "16", "--batch-size", "32", "--threads", "1",
            "--warmup-epochs", "0", "--log-every", "1"]
    # a terminal's Ctrl-C: the child starts with SIGINT at its default even when this suite runs as a
    # background job (nohup ... &), whose children inherit SIGINT ignored and rightly leave it so
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        metrics = run / "metrics.jsonl"
        deadline = time.monotonic() + 240
        while not (metrics.exists() and '"kind": "step"' in metrics.read_text()):
            assert child.poll() is None, child.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.1)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, err
    assert "saving a checkpoint" in err and "Traceback" not in err
    state = load_training_checkpoint(run / "checkpoints" / "last.pt")
    assert state["global_step"] >= 1 and state["completed_epochs"] < 100
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]


def test_checkpoint_values_that_would_break_later_are_refused(tmp_path, tiny_store):
    """NaN weights (all-NaN embeddings with exit 0 before) and a training size no image has (an out-of-memory
    traceback before) are named at load; a damaged training state is named when resuming."""
    from naviewer.ssl.trainer import Trainer

    cfg = TrainConfig(backbone=TINY, epochs=1, batch_size=16, image_size=16, max_steps_per_epoch=1, num_threads=1)
    build_trainer(cfg, tiny_store, tmp_path / "run").fit()
    path = tmp_path / "run" / "checkpoints" / "last.pt"
    obj = torch.load(path, weights_only=True)
    nan = {**obj, "model": {k: (v * float("nan") if v.is_floating_point() else v) for k, v in obj["model"].items()}}
    torch.save(nan, tmp_path / "nan.pt")
    with pytest.raises(NaviewerError, match="NaN or infinite"):
        load_encoder(tmp_path / "nan.pt")
    # a quantised export's integer weights were cast to float, embeddings written, exit 0 (a probe, session 28)
    ints = {**obj, "model": {k: ((v * 100).to(torch.int32) if v.is_floating_point() else v)
                             for k, v in obj["model"].items()}}
    torch.save(ints, tmp_path / "int.pt")
    with pytest.raises(NaviewerError, match=r"weights are integers \(int32"):
        load_encoder(tmp_path / "int.pt")
    torch.save({**obj, "config": {**obj["config"], "image_size": 65536}}, tmp_path / "huge.pt")
    with pytest.raises(NaviewerError, match="not an image size"):
        load_encoder(tmp_path / "huge.pt")
    torch.save({**obj, "schedule": {**obj["schedule"], "base_lr": "fast"}} if "schedule" in obj else
               {**obj, "total_epochs": "many"}, path)
    with pytest.raises(NaviewerError, match="damaged training checkpoint"):
        Trainer.resume(tmp_path / "run", tiny_store, config_overrides={"epochs": 2}).fit()


def test_a_checkpoint_of_meta_tensors_is_refused_when_loaded(tmp_path, reference):
    """Weights saved from a model built on the meta device load, then every read of them raised torch's RuntimeError
    (detect, embed, prune, train --resume: a traceback; a bad-input probe, session 30)."""
    from naviewer.ssl.checkpoints import load_file

    path = tmp_path / "meta.pt"
    torch.save({"model": {k: v.to("meta") for k, v in reference.state_dict().items()}}, path)
    with pytest.raises(NaviewerError, match=r"meta\.pt: the checkpoint's tensors hold no values \(meta tensors, first "
                                            r"model\.conv1\.weight\)"):
        load_file(path)
    with pytest.raises(NaviewerError, match="hold no values"):
        load_encoder(path)


def test_a_recorded_stem_against_the_weights_stem_is_named():
    """A 7x7 conv1 under a record of the CIFAR stem read "records resnet10 width 8 (CIFAR stem) but its weights are
    of resnet10 width 8", the difference easy to miss (a bad-input probe, session 30): both stems are named."""
    from naviewer.ssl.checkpoints import _describe

    assert _describe(BackboneConfig(arch="resnet10", width=8, cifar_stem=True)) == "resnet10 width 8 (CIFAR stem, 3x3 conv1)"
    assert _describe(BackboneConfig(arch="resnet10", width=8, cifar_stem=False)) == "resnet10 width 8 (ImageNet stem, 7x7 conv1)"
