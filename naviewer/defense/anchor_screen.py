"""The untrusted-anchor screen: which anchors drawn from a suspect set's own labels are poisons?

Anchors drawn from the dataset's labels are the weak point of DIFT (Eq. 6): an attack labels its
poisons as the target class, so a label-drawn target-class anchor is a poison with the probability
that a target-class sample is one (Noisy Alignment at 8 % of the digits replaces references by
poisons: 107 of the 142 "0"s). A poisoned anchor pulls every poison's MinDist down and DIFT's guard
then rejects the split (issue 12: nothing flagged).

The screen uses DIFT's own premise, that poisons are dense, without trusting any label: the
densest samples (the DIFT candidates of this epoch, anchors included) seed a label spreading whose
benign seeds are random samples from the less dense half of the set; every anchor the poison label
reaches is dropped, with a note. Measured on the digits (docs/results.md, "Trusted anchors"): it
dropped only poisons, none of the clean anchors; it cannot see poisons outside the dense cluster's
reach, so with a heavily poisoned target class some poisoned anchors remain: trusted anchors stay
the fix, and the workflows say so. A class keeps its anchors when most of them are reached (see
:func:`screen_anchors`): measured on clean digits, dropping them there created false flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np

from naviewer.defense.anchors import Anchors
from naviewer.defense.config import DiftConfig
from naviewer.defense.knn import KnnIndex, KnnResult
from naviewer.defense.spreading import label_spread
from naviewer.jobs import JobContext

#: benign seeds of the screen's spreading: at most this many samples from the less dense half
BENIGN_SEEDS = 300


@dataclass
class AnchorScreen:
    """What :func:`screen_anchors` did: the anchors kept and one note per dropped anchor."""

    anchors: Anchors
    dropped: np.ndarray                 # sample ids of the dropped anchors
    reached: int = 0                    # samples the dense seeds' label reached (seeds included)
    notes: list[str] = field(default_factory=list)


def screen_anchors(z: np.ndarray, anchors: Anchors, knn: KnnResult, config: DiftConfig,
                   index: Optional[KnnIndex] = None, ctx: Optional[JobContext] = None,
                   sample_count: Optional[int] = None) -> AnchorScreen:
    """Drop the anchors that the densest samples' label spreading reaches (see the module docstring).

    ``z`` are the normalised features of the detection, ``knn`` its all-sample kNN answer (and
    ``index`` its index, reused). A class keeps all its anchors, with a warning, when dropping the
    reached ones would leave fewer than half: on clean digits the dense "1"s are reached too, and
    dropping them made the clean pile look far from every class (141 false flags in 2 of 3 seeds)."""
    n = int(knn.kth_distance.size if sample_count is None else sample_count)
    order = np.argsort(knn.kth_distance[:n], kind="stable")
    seeds = order[:config.n_candidates(n)]
    loose = order[n // 2:]
    rng = np.random.default_rng([int(config.seed), 1201])
    benign = rng.choice(loose, size=min(BENIGN_SEEDS, loose.size), replace=False) if loose.size else loose
    benign = np.setdiff1d(benign, seeds)
    if seeds.size == 0 or benign.size == 0:
        return AnchorScreen(anchors, np.empty(0, dtype=np.int64))
    spread = label_spread(z, seeds, benign, replace(config, spread_mode="pool" if config.spread_mode == "none"
                                                      else config.spread_mode), index=index, knn=knn, ctx=ctx)
    reached = np.union1d(spread.flagged, seeds)
    hit = np.isin(anchors.indices, reached)
    drop = hit.copy()
    warnings: list[str] = []
    for cls in np.unique(anchors.labels[hit]):
        members = anchors.labels == cls
        if (members & ~hit).sum() < members.sum() / 2:
            # most of the class lies in the dense pile: a dense clean class (thin "1"s) or a class the poisons
            # outnumber; dropping them would flag the clean ones, so keep them and say that we cannot tell
            drop[members] = False
            warnings.append(f"class {int(cls)}: {int((members & hit).sum())} of its {int(members.sum())} anchors lie in "
                            "the densest pile; kept (a dense clean class and a poisoned one look alike here): give "
                            "trusted anchors")
    notes = [f"anchor {int(i)} (class {int(c)}) dropped: the densest samples' label spreading reaches it"
             for i, c in zip(anchors.indices[drop], anchors.labels[drop])]
    kept = anchors.subset(~drop)
    kept.warnings.extend(warnings)
    return AnchorScreen(kept, anchors.indices[drop], int(reached.size), notes)
