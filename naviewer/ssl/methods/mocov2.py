"""MoCo v2: query encoder vs a momentum key encoder and a queue of negatives (He/Chen et al.)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from naviewer.ssl.heads import mlp
from naviewer.ssl.methods.base import SSLMethod, copy_module_, distributed_world, ema_update_, frozen_copy


@dataclass
class MoCoV2Settings:
    """Defaults (queue 4096, m 0.99, T 0.2, projector D->512->128, no BN: MoCo v2)."""

    momentum: float = 0.99
    queue_size: int = 4096
    temperature: float = 0.2
    proj_hidden: int = 512
    proj_dim: int = 128
    #: compute the key encoder's BN statistics over this many shuffled sub-batches, a one-device
    #: stand-in for MoCo's cross-GPU shuffle BN (stops queries and keys sharing batch statistics)
    shuffle_bn_groups: int = 2
    #: also score view2 queries against view1 keys (CIFAR re-implementations often do)
    symmetric: bool = False


class MoCoV2(SSLMethod):
    name = "mocov2"
    Settings = MoCoV2Settings

    def build_heads(self, s: MoCoV2Settings) -> None:
        self.projector = mlp(self.feature_dim, s.proj_hidden, s.proj_dim, batch_norm=False)
        self.backbone_k = frozen_copy(self.backbone)
        self.projector_k = frozen_copy(self.projector)
        self.register_buffer("queue", torch.empty(s.queue_size, s.proj_dim))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self.reset_queue()

    @torch.no_grad()
    def reset_queue(self) -> None:
        """Random unit vectors and pointer 0, exactly as at MoCo's initialisation."""
        self.queue.copy_(F.normalize(torch.randn_like(self.queue), dim=1))
        self.queue_ptr.zero_()

    @torch.no_grad()
    def _keys(self, view: torch.Tensor) -> torch.Tensor:
        groups = max(1, min(self.settings.shuffle_bn_groups, view.shape[0] // 2))
        if groups == 1:
            return F.normalize(self.projector_k(self.backbone_k(view)).float(), dim=1)
        perm = torch.randperm(view.shape[0], device=view.device)
        chunks = [self.projector_k(self.backbone_k(part)) for part in view[perm].chunk(groups)]
        keys = torch.empty_like(torch.cat(chunks))
        keys[perm] = torch.cat(chunks)
        return F.normalize(keys.float(), dim=1)

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        if distributed_world() > 1:
            import torch.distributed as dist

            gathered = [torch.empty_like(keys) for _ in range(dist.get_world_size())]
            dist.all_gather(gathered, keys)
            keys = torch.cat(gathered)
        size = self.queue.shape[0]
        keys = keys[-size:]
        slots = (self.queue_ptr + torch.arange(keys.shape[0], device=keys.device)) % size
        self.queue[slots] = keys.to(self.queue.dtype)
        self.queue_ptr.copy_((self.queue_ptr + keys.shape[0]) % size)

    def _contrast(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        q = F.normalize(q.float(), dim=1)
        positive = (q * k).sum(dim=1, keepdim=True)
        negative = q @ self.queue.detach().clone().float().t()  # clone: the queue is updated in place
        logits = torch.cat([positive, negative], dim=1) / self.settings.temperature
        return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device))

    def training_loss(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        batch = view1.shape[0]
        if self.settings.symmetric:
            q = self.projector(self.backbone(torch.cat([view1, view2])))
            k2, k1 = self._keys(view2), self._keys(view1)
            loss = 0.5 * (self._contrast(q[:batch], k2) + self._contrast(q[batch:], k1))
            self._enqueue(torch.cat([k2, k1]))
            return loss
        q = self.projector(self.backbone(view1))
        k = self._keys(view2)
        loss = self._contrast(q, k)
        self._enqueue(k)
        return loss

    @torch.no_grad()
    def after_step(self, progress: float) -> None:
        m = self.settings.momentum
        ema_update_(self.backbone_k, self.backbone, m)
        ema_update_(self.projector_k, self.projector, m)

    @torch.no_grad()
    def sync_momentum_branch(self) -> None:
        copy_module_(self.backbone_k, self.backbone)
        copy_module_(self.projector_k, self.projector)
        self.reset_queue()

    def parameter_groups(self):
        params = list(self.backbone.parameters()) + list(self.projector.parameters())
        return [{"params": params, "name": "query"}]
