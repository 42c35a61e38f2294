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
