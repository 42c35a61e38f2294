"""CLP: data-free channel-Lipschitzness pruning of an encoder (Zheng et al., ECCV 2022).

The B2 baseline of DIFT's Table 2 (docs/dift.md, Baselines) is B1's retrained encoder followed by CLP.
A backdoor tends to live in a few channels whose output can grow far more than their neighbours'
for a small input change; CLP bounds that growth per channel without any data and switches the
outliers off.

For every BatchNorm2d paired with the most recent Conv2d in module order (conv -> bn, which holds in
torchvision ResNets, shortcuts included), the upper bound of channel k's Lipschitz constant is

    UCLC_k = sigma_max(W_k) * |gamma_k / sigma_k|

with W_k the conv kernel of output channel k reshaped to (C_in, kh*kw), gamma_k the BN weight and
sigma_k = sqrt(running_var_k + eps) (what BatchNorm divides by; eps keeps a dead channel with zero
variance finite). Channels with UCLC_k > mean + u * std of their layer (torch's unbiased std, as the
reference code) are pruned by zeroing gamma_k and beta_k. Default u = 3.

Only modules are touched, so any encoder works; :func:`prune_checkpoint` applies it to a checkpoint
file and writes a new naviewer checkpoint.
"""

from __future__ import annotations

import math

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import nn

from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context

PathLike = Union[str, "os.PathLike[str]"]

DEFAULT_U = 3.0


@dataclass
class ClpLayer:
    """One conv -> BN pair: how many channels it has and which were pruned."""

    bn: str
    conv: str
    channels: int
    pruned: int
    pruned_channels: list[int]
    threshold: float
    max_uclc: float


@dataclass
class ClpReport:
    """What :func:`clp_prune` did: per layer counts, and the BatchNorms it left alone and why."""

    u: float
    layers: list[ClpLayer] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    @property
    def channels(self) -> int:
        return sum(layer.channels for layer in self.layers)

    @property
    def pruned(self) -> int:
        return sum(layer.pruned for layer in self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {"u": self.u, "channels": self.channels, "pruned": self.pruned,
                "layers": [asdict(layer) for layer in self.layers], "skipped": list(self.skipped)}

    def summary(self) -> str:
        text = (f"CLP (u={self.u:g}): pruned {self.pruned} of {self.channels} channels in "
                f"{sum(1 for layer in self.layers if layer.pruned)} of {len(self.layers)} layers")
        if self.skipped:
            text += f"; {len(self.skipped)} BatchNorm layer(s) skipped"
        return text


def channel_lipschitz(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> torch.Tensor:
    """UCLC of every output channel of ``conv`` followed by ``bn``, shape (C_out,), float64.

    One batched spectral norm over the (C_out, C_in/groups, kh*kw) kernels instead of a loop.
    """
    weight = conv.weight.detach().to(torch.float64)
    kernels = weight.reshape(weight.shape[0], weight.shape[1], -1)
    sigma_max = torch.linalg.matrix_norm(kernels, ord=2)
    std = torch.sqrt(bn.running_var.detach().to(torch.float64) + bn.eps)
    return sigma_max * (bn.weight.detach().to(torch.float64) / std).abs()


def _pairs(model: nn.Module) -> tuple[list[tuple[str, nn.Conv2d, str, nn.BatchNorm2d]], list[dict[str, str]]]:
    """(conv name, conv, bn name, bn) for each prunable BN, and the skipped BNs with their reason."""
    pairs = []
    skipped: list[dict[str, str]] = []
    last: Optional[tuple[str, nn.Conv2d]] = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            last = (name, module)
        elif isinstance(module, nn.BatchNorm2d):
            if last is None:
                skipped.append({"bn": name, "reason": "no Conv2d before it in module order"})
            elif last[1].out_channels != module.num_features:
                skipped.append({"bn": name, "reason": f"the preceding Conv2d {last[0]!r} has {last[1].out_channels} "
                                                      f"output channels, the BatchNorm {module.num_features}"})
            elif module.weight is None or module.bias is None:
                skipped.append({"bn": name, "reason": "BatchNorm without affine weight/bias (nothing to zero)"})
            elif module.running_var is None:
                skipped.append({"bn": name, "reason": "BatchNorm without running statistics"})
            else:
                pairs.append((last[0], last[1], name, module))
    return pairs, skipped


@torch.no_grad()
def clp_prune(model: nn.Module, u: float = DEFAULT_U, *, strict: bool = False,
              ctx: Optional[JobContext] = None) -> ClpReport:
    """Prune ``model`` in place with CLP and return what was pruned.

    A BatchNorm2d that cannot be paired (no conv before it, channel count mismatch, no affine
    parameters or running statistics) is skipped and listed in ``report.skipped``; with
    ``strict`` it is a NaviewerError instead. A model with no conv -> BN pair at all is an error.
    """
    ctx = ensure_context(ctx)
    u = float(u)
    if not math.isfinite(u) or u < 0:  # NaN, inf (prunes nothing and wrote a copy, rc 0) or negative
        raise NaviewerError(f"CLP threshold u must be a finite non-negative number, got {u}")
    pairs, skipped = _pairs(model)
    if strict and skipped:
        first = skipped[0]
        raise NaviewerError(f"CLP cannot pair BatchNorm {first['bn']!r}: {first['reason']}")
    if not pairs:
        raise NaviewerError("CLP found no Conv2d -> BatchNorm2d pair to prune in this model"
                            + (f" ({skipped[0]['bn']}: {skipped[0]['reason']})" if skipped else ""))
    report = ClpReport(u=u, skipped=skipped)
    for i, (conv_name, conv, bn_name, bn) in enumerate(pairs):
        ctx.check()
        uclc = channel_lipschitz(conv, bn)
        if uclc.numel() >= 2:
            threshold = float(uclc.mean() + u * uclc.std())
            prune = uclc > threshold
        else:  # one channel: no spread to measure an outlier against
            threshold = float("inf")
            prune = torch.zeros_like(uclc, dtype=torch.bool)
        index = torch.nonzero(prune).flatten()
        if index.numel():
            bn.weight[index.to(bn.weight.device)] = 0
            bn.bias[index.to(bn.bias.device)] = 0
        report.layers.append(ClpLayer(bn=bn_name, conv=conv_name, channels=int(uclc.numel()), pruned=int(index.numel()),
                                      pruned_channels=index.tolist(), threshold=threshold,
                                      max_uclc=float(uclc.max()) if uclc.numel() else 0.0))
        ctx.progress(i + 1, len(pairs), "CLP pruning")
    return report


def _unique_path(path: Path) -> Path:
    n = 2
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate


def default_pruned_path(checkpoint: PathLike) -> Path:
    """``<stem>-clp.pt`` beside the source, never an existing file."""
    source = Path(checkpoint)
    return _unique_path(source.with_name(f"{source.stem}-clp.pt"))


def prune_checkpoint(checkpoint: PathLike, out: Optional[PathLike] = None, u: float = DEFAULT_U, *,
                     backbone: Any = None, ctx: Optional[JobContext] = None) -> tuple[Path, ClpReport]:
    """CLP-prune the backbone of ``checkpoint`` and write a new checkpoint (``out``, default
    ``<stem>-clp.pt`` beside it; an existing file is refused, never overwritten).

    A naviewer checkpoint keeps everything else (heads, momentum branches, optimizer): only its
    ``backbone.*`` weights change, so evaluation and embedding read the pruned encoder. A foreign
    checkpoint (torchvision / MoCo / BYOL layouts) becomes an encoder-only naviewer checkpoint. The
    report is stored under ``"clp"`` in the new file.
    """
    from naviewer.ssl.checkpoints import checkpoint_with_backbone, load_encoder, load_file, save_atomic

    source = Path(checkpoint)
    target = Path(out) if out is not None else default_pruned_path(source)
    if target.exists():
        raise NaviewerError("output checkpoint already exists (choose a new name)", target)
    encoder = load_encoder(source, backbone)
    report = clp_prune(encoder.backbone, u, ctx=ctx)
    state = {k: v for k, v in encoder.backbone.state_dict().items() if not k.startswith("fc.")}
    payload = checkpoint_with_backbone(load_file(source), encoder, state, encoder.image_size)
    payload["clp"] = {**report.to_dict(), "source": str(source)}
    save_atomic(payload, target, replace=False)  # never over one written meanwhile by another command
    return target, report
