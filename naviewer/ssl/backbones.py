"""Encoders: torchvision ResNets with an optional CIFAR stem and no classifier.

The backbone maps a normalised (B, 3, S, S) batch to (B, D) pooled features; the SSL heads sit on
top and downstream code (kNN, linear probe, DIFT) reads the backbone alone. ``width`` scales every
stage (64 = torchvision's network); narrow widths exist so tests and the demo run in seconds on a
laptop CPU, which torchvision itself cannot offer (its BasicBlock refuses ``width_per_group``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import torch
from torch import nn
from torchvision.models import resnet as tv_resnet

from naviewer.errors import NaviewerError
from naviewer.settings import settings_from_dict

#: arch -> (block, layers per stage)
ARCHS: dict[str, tuple[type, list[int]]] = {
    "resnet10": (tv_resnet.BasicBlock, [1, 1, 1, 1]),
    "resnet18": (tv_resnet.BasicBlock, [2, 2, 2, 2]),
    "resnet34": (tv_resnet.BasicBlock, [3, 4, 6, 3]),
    "resnet50": (tv_resnet.Bottleneck, [3, 4, 6, 3]),
}


@dataclass(frozen=True)
class BackboneConfig:
    """Which encoder: ``arch`` in ARCHS, ``cifar_stem`` (3x3 stride-1 conv1, no max-pool) for
    32-64 px inputs, and ``width`` = channels of the first stage (64 = the standard network)."""

    arch: str = "resnet18"
    cifar_stem: bool = True
    width: int = 64

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise NaviewerError(f"unknown backbone {self.arch!r}; choose one of {', '.join(ARCHS)}")
        if self.width < 4 or self.width % 4:
            raise NaviewerError(f"backbone width must be a positive multiple of 4, got {self.width}")

    @property
    def feature_dim(self) -> int:
        block, _ = ARCHS[self.arch]
        return 8 * self.width * block.expansion

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_any(cls, value: "BackboneConfig | Mapping[str, Any] | str | None") -> "BackboneConfig":
        """Accept a config, a dict (unknown keys refused), an arch name or None (defaults)."""
        if value is None:
            return cls()
        if isinstance(value, BackboneConfig):
            return value
        if isinstance(value, str):
            return cls(arch=value)
        return settings_from_dict(cls, value, "backbone")


class NarrowResNet(tv_resnet.ResNet):
    """torchvision's ResNet with every stage's channel count scaled by ``width / 64``.

    Built by torchvision's own ``_make_layer`` after resetting ``inplanes``, so blocks, forward and
    state-dict key names are exactly torchvision's; only the channel counts differ.
    """

    def __init__(self, block: type, layers: list[int], width: int) -> None:
        super().__init__(block, layers)
        self.inplanes = width
        self.dilation = 1
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = self._norm_layer(width)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.fc = nn.Linear(8 * width * block.expansion, 1000)
        _init_resnet(self)


def _init_resnet(model: nn.Module) -> None:
    """torchvision's ResNet initialisation (He normal for convs, unit BN)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)


#: bytes a parameter costs in training: the weight, its gradient, the optimiser's state and a second network
#: (MoCo's key encoder, BYOL's target), as float32
TRAINING_BYTES_PER_PARAMETER = 16


def _physical_memory() -> int | None:
    import os

    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def parameter_count(config: "BackboneConfig | Mapping[str, Any] | str | None" = None) -> int:
    """How many parameters ``config``'s encoder has, counted on the meta device (nothing allocated)."""
    config = BackboneConfig.from_any(config)
    block, layers = ARCHS[config.arch]
    with torch.device("meta"):
        model = NarrowResNet(block, layers, config.width)
    return int(sum(p.numel() for p in model.parameters()))


def check_backbone_fits(config: "BackboneConfig | Mapping[str, Any] | str | None", memory: int | None = None) -> None:
    """Refuse an encoder whose training state alone exceeds this machine's physical memory: ``--width 4096``
    passed the option's range and then stalled silently for minutes allocating ~40 GB, or died in torch's
    allocator with a message that did not name the width. Checked where a width is chosen for training (the
    command line's options), not when a checkpoint is loaded: inference needs a quarter of this."""
    config = BackboneConfig.from_any(config)
    memory = _physical_memory() if memory is None else memory
    if not memory:
        return
    count = parameter_count(config)
    need = count * TRAINING_BYTES_PER_PARAMETER
    if need > memory:
        raise NaviewerError(f"--width {config.width}: a {config.arch} that wide has {count / 1e6:,.0f}M parameters, "
                            f"about {need / 2**30:,.1f} GiB to train, more than this machine's "
                            f"{memory / 2**30:,.1f} GiB of memory; choose a smaller --width (64 is the standard)")


def build_backbone(config: "BackboneConfig | Mapping[str, Any] | str | None" = None) -> nn.Module:
    """The encoder for ``config``; its ``fc`` is Identity so it returns pooled (B, D) features."""
    config = BackboneConfig.from_any(config)
    block, layers = ARCHS[config.arch]
    if config.width == 64:
        if config.arch == "resnet10":
            model: nn.Module = tv_resnet.ResNet(block, layers)
        else:
            model = getattr(tv_resnet, config.arch)(weights=None)
    else:
        model = NarrowResNet(block, layers, config.width)
    if config.cifar_stem:
        out = model.conv1.out_channels
        model.conv1 = nn.Conv2d(3, out, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
        model.maxpool = nn.Identity()
    model.fc = nn.Identity()
    model.feature_dim = config.feature_dim  # type: ignore[attr-defined]
    model.naviewer_config = config  # type: ignore[attr-defined]
    return model


def backbone_config_of(model: nn.Module) -> BackboneConfig | None:
    """The config a backbone was built from (None for foreign modules)."""
    config = getattr(model, "naviewer_config", None)
    return config if isinstance(config, BackboneConfig) else None


@torch.no_grad()
def infer_feature_dim(model: nn.Module, image_size: int = 32) -> int:
    """Feature width of any encoder, by one forward pass of a tiny batch (for foreign modules)."""
    dim = getattr(model, "feature_dim", None)
    if isinstance(dim, int):
        return dim
    was_training = model.training
    model.eval()
    param = next(model.parameters())
    out = model(torch.zeros(2, 3, image_size, image_size, device=param.device, dtype=param.dtype))
    model.train(was_training)
    return int(out.shape[1])
