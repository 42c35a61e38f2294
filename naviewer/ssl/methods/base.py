"""What every SSL method offers the trainer, DIFT and the GUI.

A method is an ``nn.Module`` holding the online backbone (``method.backbone``: the encoder that
downstream evaluation, embedding extraction and DIFT read), its heads and any momentum branch.
``forward(v1, v2)`` is ``training_loss(v1, v2)`` so that DDP can wrap the whole method.
"""

from __future__ import annotations

import math
from dataclasses import asdict, fields, is_dataclass
from typing import Any, ClassVar, Mapping

import torch
from torch import nn

from naviewer.catalogue import METHODS
from naviewer.errors import NaviewerError
from naviewer.settings import settings_from_dict
from naviewer.ssl.backbones import BackboneConfig, build_backbone


#: (least, most, why) of the settings whose positive values can still break training: temperature=1e-30 diverged and
#: the advice blamed the learning rate (a bad-input probe, session 30); a momentum above 1 grows the target branch
SETTING_RANGES: dict[str, tuple[float, float, str]] = {
    "temperature": (1e-3, 100.0, "the contrastive loss's logits are similarities divided by it: SimCLR uses 0.1-0.5"),
    "momentum": (0.0, 1.0, "the momentum encoder's EMA rate: MoCo uses 0.99-0.999"),
    "tau_base": (0.0, 1.0, "the target network's EMA rate: BYOL uses 0.99-0.996"),
}


class SSLMethod(nn.Module):
    """Base class: subclasses set ``name`` and ``Settings`` (a dataclass), build their heads in
    ``build_heads`` and implement ``training_loss``; the default optimiser hyper-parameters come
    from the torch-free catalogue (``naviewer.catalogue.METHODS``) under the subclass's ``name``,
    unless it sets them itself."""

    name: ClassVar[str] = "base"
    Settings: ClassVar[type] = object
    #: learning rate at batch 256 (scaled by the trainer's rule) and weight decay, from the method's published recipe
    default_lr: ClassVar[float] = 0.05
    default_weight_decay: ClassVar[float] = 1e-4

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name in METHODS:
            _label, lr, weight_decay = METHODS[cls.name]
            if "default_lr" not in cls.__dict__:
                cls.default_lr = lr
            if "default_weight_decay" not in cls.__dict__:
                cls.default_weight_decay = weight_decay

    def __init__(self, backbone: "BackboneConfig | Mapping[str, Any] | str | None" = None, settings: Any = None) -> None:
        super().__init__()
        self.backbone_config = BackboneConfig.from_any(backbone)
        self.settings = self.make_settings(settings)
        self.backbone = build_backbone(self.backbone_config)
        self.feature_dim = self.backbone_config.feature_dim
        self.build_heads(self.settings)

    def build_heads(self, settings: Any) -> None:
        """Override: the method's heads and momentum branch from its ``settings``, after the backbone
        (``self.backbone``, ``self.feature_dim``) is built."""

    # -- settings ----------------------------------------------------------------------------
    @classmethod
    def make_settings(cls, settings: Any = None) -> Any:
        """A ``Settings`` instance from None, an instance or a dict (unknown keys refused)."""
        if settings is None:
            return cls.Settings()
        if isinstance(settings, cls.Settings):
            return settings
        if is_dataclass(settings):
            settings = asdict(settings)
        made = settings_from_dict(cls.Settings, settings, cls.name)
        for f in fields(made):  # sizes, dims, layer and group counts: whole numbers >= 1; rates finite and > 0
            value = getattr(made, f.name)
            if isinstance(value, bool):
                continue
            if isinstance(value, int) and value < 1:
                raise NaviewerError(f"{cls.name} setting {f.name} must be at least 1, got {value}")
            if isinstance(value, float) and not (math.isfinite(value) and value > 0):
                raise NaviewerError(f"{cls.name} setting {f.name} must be a positive number, got {value}")
            bounds = SETTING_RANGES.get(f.name)
            if bounds is not None and isinstance(value, (int, float)) and not bounds[0] <= value <= bounds[1]:
                raise NaviewerError(f"{cls.name} setting {f.name} must be within {bounds[0]:g}-{bounds[1]:g}, got "
                                    f"{value:g} ({bounds[2]})")
        return made

    def describe(self) -> dict[str, Any]:
        """Plain data that rebuilds this method: name, settings and backbone config."""
        return {"method": self.name, "settings": asdict(self.settings), "backbone": self.backbone_config.to_dict()}

    # -- the training protocol ------------------------------------------------------------------
    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:  # noqa: D401
        return self.training_loss(view1, view2)

    def training_loss(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def after_step(self, progress: float) -> None:
        """Called after every optimiser step with ``progress`` in [0, 1] over the whole run."""

    def sync_momentum_branch(self) -> None:
        """Copy the online branch into the momentum branch (DIFT, after fine-tuning)."""

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Optimiser groups; a group with ``fixed_lr=True`` keeps its initial lr (SimSiam predictor)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "name": "all"}]

    def encoder_state(self) -> dict[str, torch.Tensor]:
        """The online backbone's state dict (what an exported encoder holds)."""
        return self.backbone.state_dict()


def copy_module_(target: nn.Module, source: nn.Module) -> None:
    """target <- source, parameters and buffers (BN statistics included), no autograd."""
    target.load_state_dict(source.state_dict())


@torch.no_grad()
def ema_update_(target: nn.Module, source: nn.Module, momentum: float) -> None:
    """target = m * target + (1 - m) * source for parameters; buffers are copied."""
    t_params = [p for p in target.parameters()]
    s_params = [p.detach() for p in source.parameters()]
    if t_params:
        torch._foreach_mul_(t_params, momentum)
        torch._foreach_add_(t_params, s_params, alpha=1.0 - momentum)
    for tb, sb in zip(target.buffers(), source.buffers()):
        tb.copy_(sb)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy with gradients off: the start of a momentum branch."""
    import copy

    clone = copy.deepcopy(module)
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone


def distributed_world() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
