"""BYOL: online predictor regresses a slow EMA target (Grill et al. 2020)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from naviewer.ssl.heads import mlp
from naviewer.ssl.methods.base import SSLMethod, copy_module_, ema_update_, frozen_copy


@dataclass
class BYOLSettings:
    """Defaults (projector D->2048(BN,ReLU)->256, predictor 256->2048->256, tau 0.996).

    ``tau_schedule="cosine"`` raises tau from ``tau_base`` to 1 over the run as in the BYOL paper;
    "constant" keeps CTRL's fixed 0.996.
    """

    tau_base: float = 0.996
    tau_schedule: str = "cosine"
    proj_hidden: int = 2048
    proj_dim: int = 256
    pred_hidden: int = 2048

    def __post_init__(self) -> None:
        if self.tau_schedule not in ("cosine", "constant"):
            raise ValueError("tau_schedule must be 'cosine' or 'constant'")


def _regression_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    return (2 - 2 * F.cosine_similarity(p.float(), z.float(), dim=1)).mean()


class BYOL(SSLMethod):
    name = "byol"
    Settings = BYOLSettings

    def build_heads(self, s: BYOLSettings) -> None:
        self.projector = mlp(self.feature_dim, s.proj_hidden, s.proj_dim)
        self.predictor = mlp(s.proj_dim, s.pred_hidden, s.proj_dim)
        self.target_backbone = frozen_copy(self.backbone)
        self.target_projector = frozen_copy(self.projector)
        self.tau = s.tau_base

    def tau_at(self, progress: float) -> float:
        s = self.settings
        if s.tau_schedule == "constant":
            return s.tau_base
        progress = min(max(progress, 0.0), 1.0)
        return 1.0 - (1.0 - s.tau_base) * (math.cos(math.pi * progress) + 1.0) / 2.0

    def training_loss(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        batch = view1.shape[0]
        both = torch.cat([view1, view2])
        p = self.predictor(self.projector(self.backbone(both)))
        with torch.no_grad():
            z = self.target_projector(self.target_backbone(both))
        return _regression_loss(p[:batch], z[batch:]) + _regression_loss(p[batch:], z[:batch])

    @torch.no_grad()
    def after_step(self, progress: float) -> None:
        self.tau = self.tau_at(progress)
        ema_update_(self.target_backbone, self.backbone, self.tau)
        ema_update_(self.target_projector, self.projector, self.tau)

    @torch.no_grad()
    def sync_momentum_branch(self) -> None:
        """Target backbone and projector <- online (BN buffers included); the predictor is untouched."""
        copy_module_(self.target_backbone, self.backbone)
        copy_module_(self.target_projector, self.projector)

    def parameter_groups(self):
        params = [*self.backbone.parameters(), *self.projector.parameters(), *self.predictor.parameters()]
        return [{"params": params, "name": "online"}]
