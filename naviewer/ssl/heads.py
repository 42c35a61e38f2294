"""Projector and predictor MLPs shared by the SSL methods."""

from __future__ import annotations

from torch import nn


def mlp(in_dim: int, hidden_dim: int, out_dim: int, *, batch_norm: bool = True, layers: int = 2,
        last_bn: bool = False) -> nn.Sequential:
    """Linear -> (BN) -> ReLU repeated ``layers - 1`` times, then Linear (-> affine-free BN).

    Hidden linears drop their bias when a BN follows (it would be cancelled). ``last_bn`` adds
    SimSiam's affine-free BN on the output.
    """
    if layers < 2:
        raise ValueError("an MLP head needs at least two layers")
    modules: list[nn.Module] = []
    dim = in_dim
    for _ in range(layers - 1):
        modules.append(nn.Linear(dim, hidden_dim, bias=not batch_norm))
        if batch_norm:
            modules.append(nn.BatchNorm1d(hidden_dim))
        modules.append(nn.ReLU(inplace=True))
        dim = hidden_dim
    modules.append(nn.Linear(dim, out_dim, bias=not last_bn))
    if last_bn:
        modules.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*modules)
