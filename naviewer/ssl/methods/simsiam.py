"""SimSiam: symmetric negative cosine with a stop-gradient on the target (Chen & He 2021)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from naviewer.ssl.heads import mlp
from naviewer.ssl.methods.base import SSLMethod


@dataclass
class SimSiamSettings:
    """Defaults (projector D->2048, predictor bottleneck 512, predictor lr fixed).

    The projector ends in an affine-free BN as in the paper; ``proj_layers=2`` is its CIFAR variant.
    """

    proj_hidden: int = 2048
    proj_dim: int = 2048
    proj_layers: int = 2
    pred_hidden: int = 512
    fixed_predictor_lr: bool = True


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """-cos(p, stopgrad(z)), averaged: the target ``z`` never receives a gradient."""
    return -F.cosine_similarity(p.float(), z.detach().float(), dim=1).mean()


class SimSiam(SSLMethod):
    name = "simsiam"
    Settings = SimSiamSettings

    def build_heads(self, s: SimSiamSettings) -> None:
        self.projector = mlp(self.feature_dim, s.proj_hidden, s.proj_dim, layers=s.proj_layers, last_bn=True)
        self.predictor = mlp(s.proj_dim, s.pred_hidden, s.proj_dim)

    def training_loss(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        batch = view1.shape[0]
        z = self.projector(self.backbone(torch.cat([view1, view2])))
        p = self.predictor(z)
        return 0.5 * (negative_cosine(p[:batch], z[batch:]) + negative_cosine(p[batch:], z[:batch]))

    def parameter_groups(self):
        encoder = [*self.backbone.parameters(), *self.projector.parameters()]
        return [
            {"params": encoder, "name": "encoder"},
            {"params": list(self.predictor.parameters()), "name": "predictor",
             "fixed_lr": self.settings.fixed_predictor_lr},
        ]
