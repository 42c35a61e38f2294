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
