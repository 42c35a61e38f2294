"""Fine-tuning for density reduction (DIFT Eq. 7; docs/dift.md, Fine-tuning).

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
        """The stop rule (docs/dift.md, Fine-tuning): the detected set is no tighter than benign dense points."""
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
    grad_clip: float = 0.0
    clipped_steps: int = 0          # steps whose gradient norm exceeded grad_clip (and was scaled down)
    max_grad_norm: float = 0.0      # largest pre-clipping gradient norm seen
    diverged: bool = False          # a non-finite loss/feature/gradient/weight stopped the run
    diverged_step: Optional[int] = None
    divergence: str = ""            # what was non-finite
    restored: str = ""              # "" | "initial" | "step N": the weights put back after a divergence

    def to_dict(self) -> dict:
        out = {"steps": self.steps, "lambda": self.lam, "lr": self.lr,
               "final_loss": self.losses[-1] if self.losses else None,
               "before": self.before.to_dict() if self.before else None,
               "after": self.after.to_dict() if self.after else None, "stopped_early": self.stopped_early,
               "grad_clip": self.grad_clip, "clipped_steps": self.clipped_steps, "max_grad_norm": self.max_grad_norm,
               "diverged": self.diverged}
        if self.diverged:
            out.update(diverged_step=self.diverged_step, divergence=self.divergence, restored=self.restored)
        return out


def _bn_eval(module) -> None:
    from torch import nn

    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def _snapshot(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _finite_score(score: Optional[ClusterScore]) -> bool:
    return score is not None and math.isfinite(score.poison) and math.isfinite(score.reference)


def _spread_ratio(score: ClusterScore) -> float:
    return score.poison / score.reference if score.reference > 0 else score.poison


def finetune_backbone(backbone, poison_views: Callable[[np.ndarray], object], n_poisons: int,
                      config: Optional[DiftConfig] = None, ctx: Optional[JobContext] = None,
                      cluster_score_fn: Optional[Callable[[object], ClusterScore]] = None,
                      lam: Optional[float] = None, anchor_norms: Optional[np.ndarray] = None,
                      device=None) -> FinetuneResult:
    """Optimise only ``backbone`` with Eq. 7 on the detected poisons (docs/dift.md, Fine-tuning).

    ``poison_views(idx)`` returns one augmented view per index in 0..n_poisons-1, a (B, 3, S, S)
    tensor. SGD(lr = ft_lr_factor * base_lr, momentum), batches of <= ft_batch_size, at most
    ft_max_steps; every ft_check_every steps ``cluster_score_fn(backbone)`` (if given) decides to
    stop once the cluster is gone. lambda: ``lam``, else config.ft_lambda, else from
    ``anchor_norms``, else config.ft_lambda_fallback. The caller syncs momentum branches afterwards.

    Robust by design: the total gradient norm is clipped to ``config.ft_grad_clip`` (the loss's
    gradient w.r.t. the features is O(1), but through a small network with frozen BN statistics
    the parameter gradient reaches 1e3-1e4 on near-duplicates and one plain SGD step blew the
    features up to inf). If a loss, feature, gradient, weight or check score is still non-finite,
    fine-tuning stops, the best checked weights (largest poison/reference spread ratio; else the
    last finite check; else the initial weights) are put back, and the result says so
    (``diverged``, ``divergence``, ``restored``) with a ``warning`` event - never a corrupt encoder.
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
    clip = float(config.ft_grad_clip)
    result = FinetuneResult(steps=0, lam=float(lam), lr=float(lr), grad_clip=clip)
    was_training = backbone.training
    saved = {"state": _snapshot(backbone), "label": "initial", "ratio": -math.inf}

    def scored() -> ClusterScore:
        backbone.eval()
        try:
            with torch.no_grad():
                return cluster_score_fn(backbone)
        finally:
            backbone.train()
            _bn_eval(backbone)

    def diverge(step: int, what: str) -> None:
        backbone.load_state_dict(saved["state"])
        result.diverged, result.diverged_step, result.divergence = True, int(step), what
        result.restored = saved["label"]
        ctx.event("warning", message=f"DIFT fine-tuning diverged at step {step} ({what}); stopped and restored the "
                  f"{saved['label']} weights of the encoder (lower base_lr or ft_grad_clip to fine-tune further)",
                  diverged_step=int(step), divergence=what, restored=saved["label"])

    def weights_finite() -> bool:
        return all(bool(torch.isfinite(p).all()) for p in params)

    try:
        backbone.train()
        _bn_eval(backbone)
        if cluster_score_fn is not None:
            result.before = scored()
            if _finite_score(result.before):
                saved["ratio"] = _spread_ratio(result.before)
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
            if not bool(torch.isfinite(features).all()):
                diverge(step, "non-finite features")
                break
            loss = density_reduction_loss(features, float(lam), config.ft_eps)
            if not bool(torch.isfinite(loss)):
                diverge(step, f"non-finite loss ({float(loss.detach())})")
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm = float(torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf")))
            if not math.isfinite(norm):
                diverge(step, "non-finite gradient")
                break
            result.max_grad_norm = max(result.max_grad_norm, norm)
            result.clipped_steps += int(clip > 0 and norm > clip)
            optimizer.step()
            result.steps = step + 1
            result.losses.append(float(loss.detach()))
            ctx.progress(step + 1, config.ft_max_steps, "DIFT fine-tuning")
            if (step + 1) % config.ft_check_every == 0:
                if not weights_finite():
                    diverge(step + 1, "non-finite weights")
                    break
                if cluster_score_fn is None:
                    saved.update(state=_snapshot(backbone), label=f"step {step + 1}")
                    continue
                score = scored()
                if not _finite_score(score):
                    diverge(step + 1, "non-finite cluster score")
                    break
                result.checks.append((step + 1, score))
                if _spread_ratio(score) > saved["ratio"]:
                    saved.update(state=_snapshot(backbone), label=f"step {step + 1}", ratio=_spread_ratio(score))
                if score.gone:
                    result.stopped_early = step + 1 < config.ft_max_steps
                    break
        if not result.diverged and not weights_finite():
            diverge(result.steps, "non-finite weights")
        if cluster_score_fn is not None:
            if not result.diverged and result.checks and result.checks[-1][0] == result.steps:
                result.after = result.checks[-1][1]
            else:
                result.after = scored()
    finally:
        backbone.train(was_training)
    return result
