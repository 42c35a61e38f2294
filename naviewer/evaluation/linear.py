"""Linear probe on frozen features, the toolbox "10 % protocol" head.

Head = L2-normalise -> standardise each dimension with the train features' mean/variance (CompRess)
-> Linear(D, C). SGD lr 0.01, momentum 0.9, wd 1e-4, 40 epochs, MultiStepLR [15, 30, 40] x0.1.
It trains on precomputed features, so 40 epochs over 5k samples take well under a second.

Which epoch is reported: the LAST one (epoch 40, after the final learning-rate step), unless a
``val`` set is given to :func:`train_linear_probe`. The toolbox keeps the best epoch by clean val
accuracy, but its "val" is the test set itself, so that choice selects on the numbers
it reports; the DIFT protocol names no selection. :func:`naviewer.evaluation.evaluate_encoder`
(and so ``naviewer eval`` and ``naviewer reproduce``) therefore passes no ``val`` and reports the
last epoch; pass a held-out ``val`` split to get the toolbox's best-epoch behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from naviewer.errors import NaviewerError


@dataclass
class LinearProbeSettings:
    epochs: int = 40
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    milestones: Sequence[int] = (15, 30, 40)
    batch_size: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        from naviewer.catalogue import EPOCHS_MAX
        from naviewer.errors import NaviewerError

        if not 1 <= int(self.epochs) <= EPOCHS_MAX:  # --linear-epochs 1e25 ran until killed (a sweep)
            raise NaviewerError(f"linear probe epochs must be from 1 to {EPOCHS_MAX:,}, got {self.epochs:,}")


class LinearProbe(nn.Module):
    """normalise -> standardise (fixed train statistics) -> linear."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.linear = nn.Linear(mean.shape[0], num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = F.normalize(features.float(), dim=1)
        return self.linear((x - self.mean) / self.std)

    @torch.no_grad()
    def predict(self, features: "np.ndarray | torch.Tensor", batch_size: int = 4096) -> np.ndarray:
        x = torch.as_tensor(np.asarray(features, dtype=np.float32)) if not isinstance(features, torch.Tensor) else features
        x = x.to(self.mean.device)
        return torch.cat([self(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)]).cpu().numpy()


def train_linear_probe(
    features: "np.ndarray | torch.Tensor",
    labels: np.ndarray,
    num_classes: Optional[int] = None,
    settings: Optional[LinearProbeSettings] = None,
    val: Optional[tuple[np.ndarray, np.ndarray]] = None,
    device: "torch.device | str | None" = None,
) -> LinearProbe:
    """Train the probe and return it as it stands after the LAST epoch.

    With ``val`` = (features, labels), the weights of the epoch with the best val accuracy are
    returned instead (the earliest such epoch on ties), as the toolbox does with its val split.
    """
    s = settings or LinearProbeSettings()
    device = torch.device(device) if device is not None else torch.device("cpu")
    labels = np.asarray(labels, dtype=np.int64)
    keep = labels >= 0
    if keep.sum() < 2:
        raise NaviewerError("the linear probe needs labelled training features")
    x = torch.as_tensor(np.asarray(features, dtype=np.float32)[keep], device=device)
    y = torch.as_tensor(labels[keep], device=device)
    classes = int(num_classes if num_classes is not None else labels.max() + 1)
    normed = F.normalize(x, dim=1)
    mean = normed.mean(0)
    std = normed.var(0, unbiased=False).add(1e-5).sqrt()
    generator = torch.Generator().manual_seed(s.seed)
    torch_state = torch.get_rng_state()
    torch.manual_seed(s.seed)
    probe = LinearProbe(mean, std, classes).to(device)
    torch.set_rng_state(torch_state)
    opt = torch.optim.SGD(probe.parameters(), lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(s.milestones), gamma=0.1)
    best_acc, best_state = -1.0, None
    n = len(y)
    for _ in range(s.epochs):
        perm = torch.randperm(n, generator=generator).to(device)
        for start in range(0, n, s.batch_size):
            idx = perm[start:start + s.batch_size]
            loss = F.cross_entropy(probe(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        if val is not None:
            acc = float((probe.predict(val[0]) == np.asarray(val[1])).mean())
            if acc > best_acc:
                best_acc, best_state = acc, {k: v.clone() for k, v in probe.state_dict().items()}
    if best_state is not None:
        probe.load_state_dict(best_state)
    return probe
