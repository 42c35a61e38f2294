from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from naviewer.defense.config import DiftConfig
from naviewer.defense.finetune import (ClusterScore, cluster_spread, density_reduction_loss, finetune_backbone,
                                       lambda_from_norms, make_cluster_score_fn, reference_ids)
from naviewer.errors import NaviewerError


def test_gradient_is_finite_with_duplicate_points():
    x = torch.ones(4, 8, requires_grad=True)  # every pair at distance 0
    loss = density_reduction_loss(x, lam=0.1, eps=1e-6)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    with pytest.raises(NaviewerError):
        density_reduction_loss(torch.ones(1, 3), 0.1)


def test_loss_matches_eq7_on_a_small_case():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    pair = (5 + 10 + 5) * 2 / 6  # mean over i != j
    norms = (0 + 25 + 100) / 3
    assert float(density_reduction_loss(x, 0.5, eps=0.0)) == pytest.approx(-pair + 0.5 * norms, rel=1e-5)


def test_lambda_gives_the_intended_norm_on_free_vectors():
    r_bar = 3.0
    lam = lambda_from_norms(np.full(10, r_bar))
    assert lam == pytest.approx(1 / (math.sqrt(2) * r_bar))
    assert lambda_from_norms(None) == 0.01 and lambda_from_norms(np.array([np.nan])) == 0.01
    torch.manual_seed(0)
    x = (torch.randn(32, 64) * 0.01).requires_grad_(True)  # a collapsed "poison cluster"
    opt = torch.optim.Adam([x], lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        density_reduction_loss(x, lam).backward()
        opt.step()
    norms = x.detach().norm(dim=1)
    assert float(norms.mean()) == pytest.approx(r_bar, rel=0.1)


def test_cluster_spread_and_reference_ids():
    rng = np.random.default_rng(0)
    tight = rng.normal(size=(30, 8)) * 0.01 + 1
    loose = rng.normal(size=(30, 8))
    assert cluster_spread(tight, 5) < cluster_spread(loose, 5)
    rank = np.arange(100)
    ref = reference_ids(np.arange(10), np.arange(5), rank, size=8)
    assert ref.size == 8 and not np.isin(ref, np.arange(5)).any()


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 16)
        self.bn = nn.BatchNorm1d(16)
        self.out = nn.Linear(16, 8)

    def forward(self, x):
        return self.out(torch.relu(self.bn(self.lin(x.flatten(1)))))


def _near_duplicate_cluster(gen: "torch.Generator | None" = None):
    """40 near-duplicate poisons (ids 0-39) and 40 benign inputs, drawn from torch's global generator:
    (views(idx) of the poisons, drawn from ``gen``; the cluster score fn, poisons against the benign)."""
    poisons = torch.randn(1, 6).repeat(40, 1) + 0.01 * torch.randn(40, 6)
    data = torch.cat([poisons, torch.randn(40, 6)])

    def views(idx: np.ndarray) -> torch.Tensor:
        return poisons[torch.as_tensor(idx)] + 0.01 * torch.randn(len(idx), 6, generator=gen)

    def embed(backbone, ids):
        return backbone(data[torch.as_tensor(ids)]).detach().numpy()

    return views, make_cluster_score_fn(embed, np.arange(40), np.arange(40, 80), k=5)


def test_finetune_spreads_the_cluster_with_frozen_bn_stats():
    torch.manual_seed(0)
    net = _Tiny()
    running = net.bn.running_mean.clone()
    views, score_fn = _near_duplicate_cluster()
    config = DiftConfig(base_lr=0.5, ft_max_steps=60, ft_check_every=10, ft_batch_size=16)
    result = finetune_backbone(net, views, 40, config, cluster_score_fn=score_fn, anchor_norms=np.full(5, 2.0))
    assert torch.equal(net.bn.running_mean, running)  # BN statistics untouched
    assert net.training  # mode restored
    assert result.before.poison < result.before.reference
    assert result.after.poison > 5 * result.before.poison
    assert result.steps <= 60 and len(result.losses) == result.steps
    if result.after.gone:
        assert result.steps % 10 == 0


def test_finetune_stops_at_once_when_there_is_no_cluster():
    net = _Tiny()
    result = finetune_backbone(net, lambda idx: torch.randn(len(idx), 6), 10, DiftConfig(),
                               cluster_score_fn=lambda b: ClusterScore(1.0, 0.5))
    assert result.steps == 0 and result.stopped_early
    with pytest.raises(NaviewerError):
        finetune_backbone(net, lambda idx: torch.randn(len(idx), 6), 1, DiftConfig())


class _Amplifying(nn.Module):
    """Frozen BN statistics from a narrow batch (running_var 1e-3) amplify the parameter gradient ~1e5x:
    the shape of the in-training divergence (a tiny ResNet, base_lr 0.06, near-duplicate poisons)."""

    def __init__(self) -> None:
        super().__init__()
        self.l1 = nn.Linear(6, 32)
        self.bn = nn.BatchNorm1d(32)
        self.l2 = nn.Linear(32, 32)
        self.out = nn.Linear(32, 16)
        with torch.no_grad():
            self.bn.running_var.fill_(1e-3)

    def forward(self, x):
        return self.out(self.l2(self.bn(self.l1(x.flatten(1)))))


def _near_duplicates():
    torch.manual_seed(0)
    net = _Amplifying()
    return (net, *_near_duplicate_cluster(torch.Generator().manual_seed(1)))


def _finite(net) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in net.state_dict().values())


def test_default_settings_do_not_diverge_on_near_duplicates():
    net, views, score_fn = _near_duplicates()
    result = finetune_backbone(net, views, 40, DiftConfig(), cluster_score_fn=score_fn, anchor_norms=np.full(5, 3.0))
    assert not result.diverged and _finite(net)
    assert result.clipped_steps > 0 and result.max_grad_norm > 100  # the clip is what holds the step
    assert result.after.poison > 10 * result.before.poison


def test_divergence_stops_restores_and_reports():
    net, views, score_fn = _near_duplicates()
    initial = {k: v.clone() for k, v in net.state_dict().items()}
    events = []

    class Reporter:
        def progress(self, *a): pass
        def metric(self, values): pass
        def event(self, kind, data): events.append((kind, data))

    from naviewer.jobs import JobContext

    # the old behaviour (no clipping) at the default lr: the loss explodes within a few steps
    result = finetune_backbone(net, views, 40, DiftConfig(ft_grad_clip=0.0), JobContext(Reporter()),
                               cluster_score_fn=score_fn, anchor_norms=np.full(5, 3.0))
    assert result.diverged and result.restored == "initial" and result.diverged_step < 10
    assert _finite(net) and all(torch.equal(v, initial[k]) for k, v in net.state_dict().items())
    assert result.to_dict()["diverged"] and result.after.poison == pytest.approx(result.before.poison)
    assert [k for k, _ in events] == ["warning"] and "diverged" in events[0][1]["message"]


def test_divergence_after_a_check_restores_the_best_checked_weights():
    net, views, score_fn = _near_duplicates()
    calls = {"n": 0}

    def poisoned_views(idx):  # a non-finite batch at step 13 (say, a corrupt image)
        calls["n"] += 1
        out = views(idx)
        return out * float("nan") if calls["n"] == 13 else out

    config = DiftConfig(ft_check_every=5, ft_max_steps=40)
    result = finetune_backbone(net, poisoned_views, 40, config, cluster_score_fn=score_fn, anchor_norms=np.full(5, 3.0))
    assert result.diverged and result.divergence == "non-finite features" and result.diverged_step == 12
    best_step, best = max(result.checks, key=lambda c: c[1].poison / c[1].reference)
    assert result.restored == f"step {best_step}" and _finite(net)
    assert result.after.poison == pytest.approx(best.poison, rel=1e-4)
