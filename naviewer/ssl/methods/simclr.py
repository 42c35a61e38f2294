"""SimCLR: NT-Xent over two views (Chen et al. 2020); CTRL/toolbox CIFAR settings."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from naviewer.ssl.heads import mlp
from naviewer.ssl.methods.base import SSLMethod, distributed_world


@dataclass
class SimCLRSettings:
    """Defaults (temperature 0.5, projector D->512->128)."""

    temperature: float = 0.5
    proj_hidden: int = 512
    proj_dim: int = 128
    #: use the other ranks' projections as negatives under DDP (gradients flow through all_gather)
    gather_distributed: bool = True


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float, gather: bool = False) -> torch.Tensor:
    """Normalised-temperature cross entropy; row i of z1 and of z2 are the positive pair.

    Each of the 2B local anchors is scored against all 2B*W projections (W ranks when gathering)
    except itself; the loss is the mean cross entropy of picking its partner.
    """
    z = F.normalize(torch.cat([z1, z2], dim=0).float(), dim=1)
    n_local, batch = z.shape[0], z1.shape[0]
    offset = 0
    candidates = z
    if gather and distributed_world() > 1:
        import torch.distributed as dist
        import torch.distributed.nn.functional as dist_fn

        candidates = torch.cat(dist_fn.all_gather(z), dim=0)
        offset = dist.get_rank() * n_local
    logits = z @ candidates.t() / temperature
    rows = torch.arange(n_local, device=z.device)
    logits[rows, rows + offset] = float("-inf")
    partner = torch.cat([rows[batch:], rows[:batch]]) + offset
    return F.cross_entropy(logits, partner)


class SimCLR(SSLMethod):
    name = "simclr"
    Settings = SimCLRSettings

    def build_heads(self, s: SimCLRSettings) -> None:
        self.projector = mlp(self.feature_dim, s.proj_hidden, s.proj_dim)

    def training_loss(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        batch = view1.shape[0]
        z = self.projector(self.backbone(torch.cat([view1, view2], dim=0)))
        return nt_xent(z[:batch], z[batch:], self.settings.temperature, self.settings.gather_distributed)
