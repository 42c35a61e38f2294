"""The DIFT buffer: intersect each epoch's detections until they stop changing (docs/dift.md, Buffer).

Rules: the first non-empty S_t fills B; afterwards B <- B ∩ S_t. An empty S_t is skipped (it
neither changes B nor counts toward stability). If |B ∩ S_t| < n_min the buffer restarts from S_t.
B is stable once unchanged for ``patience`` consecutive detection epochs; detection stops then or
at the cap E_start + max_detection_epochs. A final |B| < n_min means "no poison detected" (no-op).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

from naviewer.defense.config import DiftConfig
from naviewer.evaluation.detection import detection_metrics


@dataclass
class BufferRecord:
    """What one detection epoch did to the buffer (the history the GUI plots, Fig. 3)."""

    epoch: int
    selected: int           # |S_t|
    intersection: int       # |B ∩ S_t| (|S_t| on the first fill)
    detected: int           # |B| after the update
    action: str             # fill | intersect | reset | skip
    stable_count: int
    stable: bool
    precision: Optional[float] = None
    recall: Optional[float] = None

    def to_dict(self) -> dict:
        return asdict(self)


class DetectionBuffer:
    """B across epochs, with its history; ``ground_truth`` (bool mask) only feeds the metrics."""

    def __init__(self, config: Optional[DiftConfig] = None, total_epochs: Optional[int] = None,
                 ground_truth: Optional[np.ndarray] = None) -> None:
        self.config = (config or DiftConfig()).validate()
        self.start_epoch = self.config.detection_start(total_epochs)
        self.last_epoch = self.start_epoch + int(self.config.max_detection_epochs)
        self.ground_truth = None if ground_truth is None else np.asarray(ground_truth, dtype=bool)
        self.members: Optional[np.ndarray] = None   # sorted int64 ids, None before the first fill
        self.stable_count = 0
        self.history: list[BufferRecord] = []
        #: B after each update, parallel to ``history``: the analyst's Figure 3 marks selected samples in it
        self.members_history: list[np.ndarray] = []
        self.finished = False
        self.stop_reason = ""

    # -- schedule --------------------------------------------------------------------------
    def should_detect(self, epoch: int) -> bool:
        return not self.finished and self.start_epoch <= epoch <= self.last_epoch

    @property
    def stable(self) -> bool:
        return self.stable_count >= self.config.patience

    @property
    def size(self) -> int:
        return 0 if self.members is None else int(self.members.size)

    @property
    def empty_result(self) -> bool:
        """At the stop: too few detections to act on (the clean-data no-op)."""
        return self.size < self.config.n_min

    def ids(self) -> np.ndarray:
        return np.empty(0, dtype=np.int64) if self.members is None else self.members.copy()

    # -- update ----------------------------------------------------------------------------
    def update(self, epoch: int, selected: np.ndarray) -> BufferRecord:
        """Fold S_t (ids) into B; marks the buffer finished when stable or at the cap."""
        s = np.unique(np.asarray(selected, dtype=np.int64))
        n_min = self.config.n_min
        if s.size == 0:
            action, inter = "skip", 0
        elif self.members is None:
            action, inter = "fill", int(s.size)
            self.members, self.stable_count = s, 0
        else:
            common = np.intersect1d(self.members, s, assume_unique=True)
            inter = int(common.size)
            if inter < n_min:
                action = "reset"
                self.members, self.stable_count = s, 0
            else:
                action = "intersect"
                self.stable_count = self.stable_count + 1 if common.size == self.members.size else 0
                self.members = common
        precision = recall = None
        if self.ground_truth is not None:
            metrics = detection_metrics(self.ids(), self.ground_truth)
            precision, recall = metrics.precision, metrics.recall
        record = BufferRecord(epoch=int(epoch), selected=int(s.size), intersection=inter, detected=self.size,
                              action=action, stable_count=self.stable_count, stable=self.stable,
                              precision=precision, recall=recall)
        self.history.append(record)
        self.members_history.append(self.ids())
        if self.stable:
            self.finished, self.stop_reason = True, "stable"
        elif epoch >= self.last_epoch:
            self.finished, self.stop_reason = True, "cap"
        return record

    def history_dicts(self, with_ids: bool = False) -> list[dict]:
        """The records as plain dicts; ``with_ids`` adds each epoch's buffer ids (``buffer_ids``)."""
        if not with_ids:
            return [record.to_dict() for record in self.history]
        return [{**record.to_dict(), "buffer_ids": ids.tolist()}
                for record, ids in zip(self.history, self.members_history)]
