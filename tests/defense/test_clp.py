"""CLP pruning: a planted high-Lipschitz channel goes, u large prunes nothing, unpairable BNs, checkpoints."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from naviewer.defense.clp import ClpReport, channel_lipschitz, clp_prune, prune_checkpoint
from naviewer.errors import NaviewerError


def _tiny(planted: int = 5, scale: float = 50.0) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 24, 3, padding=1, bias=False), nn.BatchNorm2d(24), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )
    with torch.no_grad():
        model[3].weight[planted] *= scale  # one channel with a huge kernel: the planted "backdoor" channel
        model[4].bias.fill_(0.1)
    return model.eval()


def test_planted_channel_is_pruned() -> None:
    model = _tiny(planted=5)
    report = clp_prune(model, u=3.0)
    assert isinstance(report, ClpReport)
    assert [(layer.bn, layer.conv, layer.channels) for layer in report.layers] == [("1", "0", 16), ("4", "3", 24)]
    assert 5 in report.layers[1].pruned_channels and report.layers[1].pruned == len(report.layers[1].pruned_channels)
    assert model[4].weight[5].item() == 0.0 and model[4].bias[5].item() == 0.0
    kept = [c for c in range(24) if c not in report.layers[1].pruned_channels]
    assert (model[4].weight[kept] != 0).all() and (model[4].bias[kept] == 0.1).all()
    assert report.pruned == sum(layer.pruned for layer in report.layers) and report.channels == 40
    assert "pruned" in report.summary() and report.to_dict()["layers"][1]["pruned"] == report.layers[1].pruned


def test_uclc_matches_per_channel_svd() -> None:
    model = _tiny()
    conv, bn = model[3], model[4]
    with torch.no_grad():
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(-2.0, 2.0)
    uclc = channel_lipschitz(conv, bn)
    for k in (0, 5, 23):
        w = conv.weight[k].detach().double().reshape(conv.in_channels, -1)
        expected = torch.linalg.svdvals(w)[0] * abs(bn.weight[k].double() / torch.sqrt(bn.running_var[k].double() + bn.eps))
        assert torch.isclose(uclc[k], expected)


def test_large_u_prunes_nothing() -> None:
    model = _tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = clp_prune(model, u=1e6)
    assert report.pruned == 0 and all(layer.pruned_channels == [] for layer in report.layers)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bn_without_preceding_conv_is_skipped_or_refused() -> None:
    model = nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 4, 1), nn.BatchNorm2d(6))
    report = clp_prune(model.eval(), u=3.0)
    assert [layer.bn for layer in report.layers] == ["2"]
    reasons = {s["bn"]: s["reason"] for s in report.skipped}
    assert "no Conv2d before it" in reasons["0"] and "output channels" in reasons["4"]
    with pytest.raises(NaviewerError, match="no Conv2d before it"):
        clp_prune(model, strict=True)
    with pytest.raises(NaviewerError, match="no Conv2d -> BatchNorm2d pair"):
        clp_prune(nn.Sequential(nn.BatchNorm2d(3), nn.ReLU()))
    with pytest.raises(NaviewerError, match="non-negative"):
        clp_prune(_tiny(), u=-1)


def test_pruned_resnet_still_runs_and_checkpoint_round_trips(tmp_path) -> None:
    from naviewer.ssl.backbones import build_backbone
    from naviewer.ssl.checkpoints import load_encoder, load_file

    backbone = build_backbone({"arch": "resnet10", "width": 8})
    with torch.no_grad():
        backbone.layer2[0].conv1.weight[3] *= 100.0
    source = tmp_path / "torchvision.pt"
    torch.save(backbone.state_dict(), source)
    out, report = prune_checkpoint(source, u=3.0)
    assert out == tmp_path / "torchvision-clp.pt" and out.is_file()
    layer = next(layer for layer in report.layers if layer.bn == "layer2.0.bn1")
    assert 3 in layer.pruned_channels
    assert any(layer.bn == "layer2.0.downsample.1" and layer.conv == "layer2.0.downsample.0" for layer in report.layers)
    pruned = load_encoder(out)
    assert pruned.backbone.layer2[0].bn1.weight[3].item() == 0.0
    assert load_file(out)["clp"]["pruned"] == report.pruned
    features = pruned.backbone.eval()(torch.rand(2, 3, 16, 16))
    assert features.shape == (2, 64) and torch.isfinite(features).all()
    with pytest.raises(NaviewerError, match="already exists"):
        prune_checkpoint(source, out)
    # a second prune of the same source gets a new name instead of overwriting
    assert prune_checkpoint(source)[0] == tmp_path / "torchvision-clp-2.pt"


def test_prune_cli_writes_a_new_checkpoint(tmp_path, capsys) -> None:
    from naviewer.cli import main
    from naviewer.ssl.backbones import build_backbone
    from naviewer.ssl.checkpoints import load_file

    backbone = build_backbone({"arch": "resnet10", "width": 8})
    with torch.no_grad():
        backbone.layer3[0].conv2.weight[7] *= 100.0
    source = tmp_path / "enc.pt"
    torch.save({"state_dict": {"module." + k: v for k, v in backbone.state_dict().items()}}, source)
    assert main(["prune", str(source), "--out", str(tmp_path / "b2.pt"), "--u", "3"]) == 0
    out = capsys.readouterr().out
    assert "layer3.0.bn2" in out and "CLP (u=3): pruned" in out and str(tmp_path / "b2.pt") in out
    assert load_file(tmp_path / "b2.pt")["model"]["backbone.layer3.0.bn2.weight"][7].item() == 0.0
    assert main(["prune", str(tmp_path / "missing.pt")]) == 2
    assert "not found" in capsys.readouterr().err
