import pytest
import torch

from naviewer.errors import NaviewerError
from naviewer.ssl.backbones import BackboneConfig, build_backbone


@pytest.mark.parametrize("arch,width,stem,dim", [
    ("resnet10", 8, True, 64), ("resnet18", 16, True, 128), ("resnet50", 8, False, 256),
])
def test_feature_dim_and_forward(arch, width, stem, dim):
    cfg = BackboneConfig(arch, stem, width)
    model = build_backbone(cfg)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, dim) == (2, cfg.feature_dim)


def test_standard_resnet18_matches_torchvision_keys():
    import torchvision

    ours = build_backbone(BackboneConfig("resnet18", cifar_stem=False))
    ref = torchvision.models.resnet18(weights=None)
    assert set(ours.state_dict()) == set(ref.state_dict()) - {"fc.weight", "fc.bias"}
    assert ours.feature_dim == 512


def test_cifar_stem_keeps_resolution():
    model = build_backbone(BackboneConfig("resnet10", cifar_stem=True, width=8))
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)


def test_bad_config_is_user_error():
    with pytest.raises(NaviewerError):
        BackboneConfig(arch="vgg")
    with pytest.raises(NaviewerError):
        BackboneConfig.from_any({"arch": "resnet18", "depth": 3})


def test_an_encoder_too_wide_for_the_machine_is_refused_before_allocating():
    """--width 4096 passed the option's range and stalled allocating ~40 GB; the check counts parameters on the
    meta device and compares their training state with the machine's memory."""
    from naviewer.errors import NaviewerError
    from naviewer.ssl.backbones import check_backbone_fits, parameter_count

    assert parameter_count({"arch": "resnet10", "width": 16}) < parameter_count({"arch": "resnet10", "width": 32})
    check_backbone_fits({"arch": "resnet18", "width": 64}, memory=2**30)  # 11.7M parameters: ~190 MB to train
    with pytest.raises(NaviewerError, match="--width 256"):
        check_backbone_fits({"arch": "resnet18", "width": 256}, memory=2**30)
