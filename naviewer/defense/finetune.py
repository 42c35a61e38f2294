"""Fine-tuning for density reduction (DIFT Eq. 7, spec §1.9).

L_ft = -1/(n(n-1)) sum_{i!=j} sqrt(||x_i - x_j||^2 + eps) + lambda/n sum_i ||x_i||^2 on the *raw*
backbone features of the detected poisons (the norm term is constant on the unit sphere). Only the
backbone is optimised; its BatchNorm layers stay in eval mode (trainable affine parameters, frozen
running statistics) so batches made only of poisons do not rewrite the statistics used at test time.

The augmentation is injected as ``poison_views(indices) -> Tensor`` (one augmented view per index),
so this module does not depend on the SSL augmentation code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from naviewer.defense.config import DiftConfig
from naviewer.defense.knn import exact_knn
from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context


def density_reduction_loss(x, lam: float, eps: float = 1e-6):
    """Eq. 7 on raw features x (n, D), n >= 2; explicit sqrt(D2 + eps) so d = 0 has a finite gradient."""
    import torch

    n = x.shape[0]
    if n < 2:
        raise NaviewerError("density-reduction fine-tuning needs at least 2 samples")
    sq = (x * x).sum(dim=1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)).clamp_min(0.0)
    off = ~torch.eye(n, dtype=torch.bool, device=x.device)
    spread = torch.sqrt(d2[off] + eps).mean()
    return -spread + lam * sq.mean()


def lambda_from_norms(norms: Optional[np.ndarray], fallback: float = 0.01) -> float:
    """lambda = 1/(sqrt(2) r) with r the median raw anchor norm: then L(r) ~ -sqrt(2) r + lambda r^2
    is minimal at r, so fine-tuned poisons end at a normal feature magnitude. Fallback when unknown."""
    if norms is None:
        return float(fallback)
    norms = np.asarray(norms, dtype=np.float64).ravel()
    norms = norms[np.isfinite(norms)]
    if norms.size == 0:
        return float(fallback)
    r = float(np.median(norms))
    return 1.0 / (math.sqrt(2.0) * r) if r > 0 else float(fallback)


def cluster_spread(z: np.ndarray, k: int = 20) -> float:
    """s(S): median over the set of each point's distance to its k-th neighbour *within* the set
    (k = min(k, |S|-1)), on L2-normalised features. Small = a tight cluster."""
    z = np.asarray(z, dtype=np.float32)
    if z.shape[0] < 2:
        return float("nan")
    z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    k = min(k, z.shape[0] - 1)
    _, d = exact_knn(z, z, k, query_ids=np.arange(z.shape[0]))
    return float(np.median(d[:, -1]))


@dataclass
class ClusterScore:
    """Spread of the poisons vs a reference of benign dense samples of the same size."""

    poison: float
    reference: float

    @property
    def gone(self) -> bool:
        """The spec's stop rule: the detected set is no tighter than benign dense points."""
        return bool(self.poison >= self.reference)

    def to_dict(self) -> dict:
        return {"poison_spread": self.poison, "reference_spread": self.reference, "gone": self.gone}


def reference_ids(candidates: np.ndarray, flagged: np.ndarray, rank: np.ndarray, size: int,
                  seed: int = 0) -> np.ndarray:
    """R': ``size`` benign candidates (candidates not flagged), topped up with the densest unflagged samples."""
    rng = np.random.default_rng(seed)
    flagged_mask = np.zeros(rank.size, dtype=bool)
    flagged_mask[np.asarray(flagged, dtype=np.int64)] = True
    benign = np.asarray(candidates, dtype=np.int64)
    benign = benign[~flagged_mask[benign]]
    if benign.size >= size:
        return np.sort(rng.choice(benign, size=size, replace=False))
    order = np.argsort(rank, kind="stable")
    extra = order[~flagged_mask[order] & ~np.isin(order, benign)][: size - benign.size]
    return np.sort(np.concatenate([benign, extra]).astype(np.int64))


def make_cluster_score_fn(embed: Callable[[object, np.ndarray], np.ndarray], poison_ids: np.ndarray,
                          reference: np.ndarray, k: int = 20) -> Callable[[object], ClusterScore]:
    """Build ``cluster_score_fn(backbone)`` from ``embed(backbone, ids) -> raw features`` (eval mode,
    no augmentation)."""
    poison_ids = np.asarray(poison_ids, dtype=np.int64)
    reference = np.asarray(reference, dtype=np.int64)

    def score(backbone) -> ClusterScore:
        return ClusterScore(cluster_spread(embed(backbone, poison_ids), k),
                            cluster_spread(embed(backbone, reference), k))

    return score


@dataclass
class FinetuneResult:
    steps: int
    lam: float
    lr: float
    losses: list[float] = field(default_factory=list)
    before: Optional[ClusterScore] = None
    after: Optional[ClusterScore] = None
    checks: list[tuple[int, ClusterScore]] = field(default_factory=list)
    stopped_early: bool = False

    def to_dict(self) -> dict:
        return {"steps": self.steps, "lambda": self.lam, "lr": self.lr,
                "final_loss": self.losses[-1] if self.losses else None,
                "before": self.before.to_dict() if self.before else None,
                "after": self.after.to_dict() if self.after else None, "stopped_early": self.stopped_early}


def _bn_eval(module) -> None:
    from torch import nn

    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def finetune_backbone(backbone, poison_views: Callable[[np.ndarray], object], n_poisons: int,
                      config: Optional[DiftConfig] = None, ctx: Optional[JobContext] = None,
                      cluster_score_fn: Optional[Callable[[object], ClusterScore]] = None,
                      lam: Optional[float] = None, anchor_norms: Optional[np.ndarray] = None,
                      device=None) -> FinetuneResult:
    """Optimise only ``backbone`` with Eq. 7 on the detected poisons (spec §1.9).

    ``poison_views(idx)`` returns one augmented view per index in 0..n_poisons-1, a (B, 3, S, S)
    tensor. SGD(lr = ft_lr_factor * base_lr, momentum), batches of <= ft_batch_size, at most
    ft_max_steps; every ft_check_every steps ``cluster_score_fn(backbone)`` (if given) decides to
    stop once the cluster is gone. lambda: ``lam``, else config.ft_lambda, else from
    ``anchor_norms``, else config.ft_lambda_fallback. The caller syncs momentum branches afterwards.
    """
    import torch

    config = (config or DiftConfig()).validate()
    ctx = ensure_context(ctx)
    if n_poisons < 2:
        raise NaviewerError(f"fine-tuning needs at least 2 detected poisons, got {n_poisons}")
    if lam is None:
        lam = config.ft_lambda if config.ft_lambda is not None else lambda_from_norms(anchor_norms,
                                                                                       config.ft_lambda_fallback)
    if device is None:
        first = next(backbone.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    lr = config.base_lr * config.ft_lr_factor
    params = [p for p in backbone.parameters() if p.requires_grad]
    if not params:
        raise NaviewerError("the backbone has no trainable parameters to fine-tune")
    optimizer = torch.optim.SGD(params, lr=lr, momentum=config.ft_momentum, weight_decay=config.ft_weight_decay)
    rng = np.random.default_rng(config.seed)
    result = FinetuneResult(steps=0, lam=float(lam), lr=float(lr))
    was_training = backbone.training

    def scored() -> ClusterScore:
        backbone.eval()
        try:
            with torch.no_grad():
                return cluster_score_fn(backbone)
        finally:
            backbone.train()
            _bn_eval(backbone)

    try:
        backbone.train()
        _bn_eval(backbone)
        if cluster_score_fn is not None:
            result.before = scored()
            if result.before.gone:
                result.after = result.before
                result.stopped_early = True
                return result
        for step in range(int(config.ft_max_steps)):
            ctx.check()
            if n_poisons <= config.ft_batch_size:
                idx = np.arange(n_poisons, dtype=np.int64)
            else:
                idx = np.sort(rng.choice(n_poisons, size=config.ft_batch_size, replace=False))
            views = poison_views(idx).to(device)
            features = backbone(views).float()
            loss = density_reduction_loss(features, float(lam), config.ft_eps)
            if not torch.isfinite(loss):
                raise NaviewerError(f"fine-tuning diverged at step {step} (loss {float(loss)}); lower base_lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            result.steps = step + 1
            result.losses.append(float(loss.detach()))
            ctx.progress(step + 1, config.ft_max_steps, "DIFT fine-tuning")
            if cluster_score_fn is not None and (step + 1) % config.ft_check_every == 0:
                score = scored()
                result.checks.append((step + 1, score))
                if score.gone:
                    result.stopped_early = step + 1 < config.ft_max_steps
                    break
        if cluster_score_fn is not None:
            result.after = result.checks[-1][1] if result.checks and result.checks[-1][0] == result.steps else scored()
    finally:
        backbone.train(was_training)
    return result
