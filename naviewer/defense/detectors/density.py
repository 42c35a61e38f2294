"""The field's density and outlier detectors on one neighbour table.

k-distance, LID (Levina-Bickel MLE), SLOF and DAO, in ``global`` mode: every sample's reference
set is all the others (self excluded by id), from one kNN table shared by the pass
(:func:`neighbour_table`). Which direction means "poison" depends on how many co-poisons m fall
within k: with k < m a poison's neighbours are fellow poisons (dense, small d_k); with
k > m its k-th neighbour is a clean point far away (sparse). naviewer's SSL setting (0.5-8 %
poisons in thousands of samples) is the dense one, so k-distance defaults to ``direction="dense"``;
every detector lets the analyst flip it, and the benchmarks report both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from naviewer.defense.config import DiftConfig
from naviewer.catalogue import DETECTOR_SUMMARIES
from naviewer.defense.detectors.base import Detector, DetectorInputs, register_detector
from naviewer.defense.knn import KnnIndex, as_float32
from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext

EPS = 1e-12
DIRECTIONS = ("dense", "sparse")


def neighbour_table(inputs: DetectorInputs, k: int, ctx: JobContext, backend: str = "auto",
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(neighbours, distances) of every sample, k nearest others (unsquared L2 on L2-normalised
    features), shared by every detector of the pass through ``inputs.cache``."""
    n = inputs.n
    if n <= k:
        raise NaviewerError(f"a k={k} neighbour table needs more than {k} samples, got {n}")
    cached = inputs.cache.get("knn")
    if cached is not None and cached[0].shape[1] >= k:
        return cached[0][:, :k], cached[1][:, :k]
    z = inputs.cache.get("z")
    if z is None:
        z = as_float32(np.asarray(inputs.embeddings)[:n], inputs.normalize)
        inputs.cache["z"] = z
    index = KnnIndex(z, DiftConfig(knn_backend=backend, seed=seed), ctx)
    result = index.all_neighbors(k, ctx)
    table = (result.neighbors, np.maximum(result.distances.astype(np.float64), 0.0))
    inputs.cache["knn"] = table
    return table


def lid_mle(distances: np.ndarray) -> np.ndarray:
    """Levina-Bickel MLE of the local intrinsic dimension from each row's sorted k distances."""
    d = np.asarray(distances, dtype=np.float64) + EPS
    ratios = np.log(d / d[:, -1:])
    mean = ratios.mean(axis=1)
    with np.errstate(divide="ignore"):
        return np.where(mean < 0, -1.0 / mean, np.inf)


def _oriented(value: np.ndarray, direction: str, sparse_means_high: bool = True) -> tuple[np.ndarray, str]:
    if direction not in DIRECTIONS:
        raise NaviewerError(f"direction must be dense or sparse, got {direction!r}")
    if (direction == "sparse") == sparse_means_high:
        return value, ""
    return -value, "negated: low raw values are suspicious in this direction"


@dataclass
class NeighbourSettings:
    """What every neighbour-table detector takes: k, which tail is suspicious, the threshold rule."""

    k: int = 16
    direction: str = "sparse"      # sparse: large values are suspicious (Huang) | dense: small ones (DIFT's sense)
    rule: str = "top_fraction"
    fraction: float = 0.01
    z: float = 3.5
    backend: str = "auto"
    seed: int = 0


@dataclass
class KDistanceSettings(NeighbourSettings):
    direction: str = "dense"       # small d_k is suspicious: SSL poisons crowd together (DIFT)


@register_detector
class KDistance(Detector):
    """d_k, the distance to the k-th nearest other sample (the classical kNN outlier score)."""

    name = "kdist"
    Settings = KDistanceSettings
    summary = DETECTOR_SUMMARIES[name]

    def score(self, inputs: DetectorInputs, ctx: JobContext):
        s = self.settings
        _, dist = neighbour_table(inputs, s.k, ctx, s.backend, s.seed)
        value, note = _oriented(np.log(dist[:, s.k - 1] + EPS), s.direction)
        return value, {"direction_note": note or "log d_k"}


@dataclass
class LidSettings(NeighbourSettings):
    k: int = 64                    # Huang et al.'s LID neighbourhood


@register_detector
class Lid(Detector):
    """Local intrinsic dimensionality by maximum likelihood over the k nearest distances."""

    name = "lid"
    Settings = LidSettings
    summary = DETECTOR_SUMMARIES[name]

    def validate(self) -> None:
        super().validate()
        if int(self.settings.k) < 2:  # one distance has no ratio to another: every score came out empty (a probe)
            raise NaviewerError(f"detector lid: k={self.settings.k}: the estimate compares each sample's k nearest "
                                "distances with the k-th, so it needs k >= 2")

    def score(self, inputs: DetectorInputs, ctx: JobContext):
        s = self.settings
        _, dist = neighbour_table(inputs, s.k, ctx, s.backend, s.seed)
        lid = lid_mle(dist[:, :s.k])
        lid = np.where(np.isfinite(lid), lid, np.nan)
        value, note = _oriented(lid, s.direction)
        return value, {"direction_note": note or "LID"}


@dataclass
class SlofSettings(NeighbourSettings):
    pass


@register_detector
class Slof(Detector):
    """Simplified LOF: the mean over the k neighbours of d_k(x) / d_k(o); ~1 inside a cluster."""

    name = "slof"
    Settings = SlofSettings
    summary = DETECTOR_SUMMARIES[name]

    def score(self, inputs: DetectorInputs, ctx: JobContext):
        s = self.settings
        nb, dist = neighbour_table(inputs, s.k, ctx, s.backend, s.seed)
        nb, dist = nb[:, :s.k], dist[:, :s.k]
        dk = dist[:, -1] + EPS
        value = (dk[:, None] / dk[nb]).mean(axis=1)
        value, note = _oriented(np.log(value), s.direction)
        return value, {"direction_note": note or "log SLOF"}


@dataclass
class DaoSettings(NeighbourSettings):
    k_lid: int = 16
    form: str = "log"              # log: mean of LID(o) ln(d_k(x)/d_k(o)) (Huang) | arith: the reference's power mean


@register_detector
class Dao(Detector):
    """Dimensionality-aware outlier score: density ratios to the neighbours, each raised to its LID."""

    SAMPLE_NEIGHBOURS = ("k", "k_lid")

    name = "dao"
    Settings = DaoSettings
    summary = DETECTOR_SUMMARIES[name]

    def validate(self) -> None:
        super().validate()
        if int(self.settings.k_lid) < 2:
            raise NaviewerError(f"detector dao: k_lid={self.settings.k_lid}: the LID estimate needs k_lid >= 2")
        if self.settings.form not in ("log", "arith"):
            raise NaviewerError(f"detector dao: form must be log or arith, got {self.settings.form!r}")

    def score(self, inputs: DetectorInputs, ctx: JobContext):
        s = self.settings
        k_max = max(s.k, s.k_lid)
        nb, dist = neighbour_table(inputs, k_max, ctx, s.backend, s.seed)
        lid = lid_mle(dist[:, :s.k_lid])
        lid = np.where(np.isfinite(lid), lid, 0.0)
        dk = dist[:, s.k - 1] + EPS
        neighbours = nb[:, :s.k]
        log_ratio = np.log(dk[:, None] / dk[neighbours])
        terms = lid[neighbours] * log_ratio
        if s.form == "log":
            value = terms.mean(axis=1)
        else:  # log of the arithmetic mean of ratio**LID, overflow-free
            top = terms.max(axis=1, keepdims=True)
            value = (top[:, 0] + np.log(np.exp(terms - top).mean(axis=1)))
        value, note = _oriented(value, s.direction)
        return value, {"direction_note": note or f"DAO ({s.form})"}
