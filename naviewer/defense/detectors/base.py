"""The detector contract: every poison detector, DIFT included, as one interface.

A detector takes the pass's inputs (:class:`DetectorInputs`: embeddings, and where it needs them the
anchors or a shared neighbour table) and returns a :class:`DetectorResult`: a per-sample ``score``
(float64, length N, **higher = more suspicious**, NaN = not scored), ``flags`` (bool, length N), the
threshold rule that made the flags, and the settings it ran with. Detectors are registered by name
(like the SSL methods) and made with :func:`make_detector`; each has typed settings.

Threshold rules turn any score into flags: ``top_fraction`` (the
top ceil(qN)), ``robust_z`` ((s - median) / 1.4826 MAD > z) and ``gmm2`` (a two-component GMM on the
score; the high component is flagged only when the two are separated by >= 2 standard deviations,
DIFT's guard).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

import numpy as np

from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context

THRESHOLD_RULES = ("top_fraction", "robust_z", "gmm2")


@dataclass
class DetectorInputs:
    """What one detection pass offers a detector (each takes what it needs)."""

    embeddings: np.ndarray                          # (N, D) raw backbone features
    anchors: Any = None                             # naviewer.defense.anchors.Anchors (ids into embeddings)
    ground_truth: Optional[np.ndarray] = None       # evaluation only: never read by a detector's scoring
    sample_count: Optional[int] = None              # leading rows that are samples (external anchors follow)
    normalize: bool = True                          # L2-normalise before distances (DIFT's space); False for tests
    cache: dict = field(default_factory=dict)       # shared work between detectors of one pass (normalised z, kNN)
    encoder: Any = None                             # the backbone (torch module), for detectors that embed crops
    images: Any = None                              # the samples' ImageStore (native shapes), same order
    image_size: Optional[int] = None                # the encoder's training crop size S
    device: Any = None                              # where the encoder runs (None: where it is)

    @property
    def n(self) -> int:
        return int(len(self.embeddings) if self.sample_count is None else self.sample_count)


@dataclass
class DetectorResult:
    """A detector's per-sample answer (see the module docstring)."""

    name: str
    score: np.ndarray                               # (N,) float64, higher = more suspicious
    flags: np.ndarray                               # (N,) bool
    settings: dict
    threshold: dict = field(default_factory=dict)   # {"rule": ..., parameters..., "value": cut-off}
    direction_note: str = ""                        # which raw quantity was negated, if any
    clusters: Optional[np.ndarray] = None           # (N,) int64 cluster per sample, -1 none (optional)
    extras: dict = field(default_factory=dict)      # per-sample side outputs
    seconds: float = 0.0

    @property
    def flagged(self) -> np.ndarray:
        return np.flatnonzero(self.flags).astype(np.int64)

    def scores_for_pass(self) -> dict[str, np.ndarray]:
        """Arrays for ``store.add_detection_pass`` (``score``, ``flagged``, ``cluster``)."""
        cluster = self.clusters if self.clusters is not None else np.where(self.flags, 0, -1)
        return {"score": self.score.astype(np.float32), "flagged": self.flags.astype(bool),
                "cluster": np.asarray(cluster, dtype=np.int64)}


# -- threshold rules -------------------------------------------------------------------------------


def rule_words(threshold_record: Any) -> str:
    """A pass's threshold record in words for the terminal and the report ("robust_z" and "top_fraction" stood
    there alone; a newcomer, session 31)."""
    record = threshold_record if isinstance(threshold_record, dict) else {}
    rule = str(record.get("rule") or "")
    if record.get("refused"):  # no flags, and a score that ranks nothing (PatchSearch's classifier found no trigger)
        return f"no verdict: {record['refused']}"
    if rule == "top_fraction":
        try:
            share = f"{100 * float(record.get('fraction', 0.01)):g} %"
        except (TypeError, ValueError):
            share = "share"
        return f"its top {share}: a ranking, read its score, not a count of poisons"
    if rule == "robust_z":
        return f"scores {record.get('z', 3.5)} robust deviations (MAD) above the median"
    if rule == "gmm2":
        fallback = record.get("fallback") if isinstance(record.get("fallback"), dict) else None
        outliers = record.get("outliers_added")
        extra = (f", and {int(outliers):,} robust outliers above it" if isinstance(outliers, int) and outliers > 0
                 else "")
        if record.get("value") is None and fallback:  # no split: the fallback flagged (a review, session 32)
            return "no two populations in the scores (no split); instead " + rule_words(fallback) + extra
        return "the upper of two Gaussians fitted to the scores, where they part" + extra
    if rule == "own":
        return "the detector's own rule" + (f" ({record['classifier']})" if record.get("classifier") else "")
    return rule

def threshold(score: np.ndarray, rule: str = "top_fraction", fraction: float = 0.01, z: float = 3.5,
              separation: float = 2.0, seed: int = 0) -> tuple[np.ndarray, dict]:
    """(flags, description) of ``rule`` on ``score`` (NaN never flagged)."""
    s = np.asarray(score, dtype=np.float64)
    finite = np.isfinite(s)
    flags = np.zeros(s.size, dtype=bool)
    if not finite.any():
        return flags, {"rule": rule, "value": None}
    if rule == "top_fraction":
        if not 0.0 < fraction < 1.0:
            raise NaviewerError(f"top_fraction needs a fraction in (0, 1), got {fraction}")
        count = max(1, math.ceil(fraction * s.size - 1e-9))
        order = np.argsort(-np.where(finite, s, -np.inf), kind="stable")[:count]
        flags[order] = True
        return flags, {"rule": rule, "fraction": fraction, "value": float(s[order[-1]])}
    if rule == "robust_z":
        med = float(np.median(s[finite]))
        mad = 1.4826 * float(np.median(np.abs(s[finite] - med)))
        cut = med + z * mad if mad > 0 else np.inf
        flags[finite] = s[finite] > cut
        return flags, {"rule": rule, "z": z, "value": float(cut)}
    if rule == "gmm2":
        from sklearn.mixture import GaussianMixture

        values = s[finite].reshape(-1, 1)
        if values.shape[0] < 4 or np.ptp(values) == 0:
            return flags, {"rule": rule, "value": None}
        gmm = GaussianMixture(2, random_state=seed, n_init=2).fit(values)
        means = gmm.means_.ravel()
        stds = np.sqrt(gmm.covariances_.ravel())
        hi, lo = int(np.argmax(means)), int(np.argmin(means))
        sep = abs(means[hi] - means[lo]) / max(float(stds.max()), 1e-12)
        if sep >= separation:
            flags[np.flatnonzero(finite)] = gmm.predict(values) == hi
        return flags, {"rule": rule, "separation": float(sep), "required": separation,
                       "value": float(means[hi]) if sep >= separation else None}
    raise NaviewerError(f"unknown threshold rule {rule!r}; choose from {', '.join(THRESHOLD_RULES)}")


def with_outliers(score: np.ndarray, flags: np.ndarray, description: dict, z: float) -> tuple[np.ndarray, dict]:
    """``flags`` joined by the score's robust outliers (z > ``z`` above the median, in MADs), and the record.

    Why: a two-component split takes the upper mode only. Where the poisons' scores spread out from the
    clean mass, or some of them saturate, the split leaves the rest, though they sit far above every clean
    sample (PatchSearch on a NA cell: 57 of 107 poisons; crop_density on the CIFAR cell: 84 of 354)."""
    outliers, robust = threshold(score, "robust_z", z=z)
    return flags | outliers, {**description, "or": "robust_z", "robust_z": robust,
                              "outliers_added": int((outliers & ~flags).sum())}


# -- the interface and the registry --------------------------------------------------------------

class Detector:
    """Base class: ``name``, ``Settings`` (a dataclass with ``rule``/``fraction`` fields), ``score``."""

    name: ClassVar[str] = ""
    Settings: ClassVar[type] = object
    #: what the detector reads beyond the embeddings ("anchors"), for the GUI and the CLI's checks
    needs: ClassVar[tuple[str, ...]] = ()
    summary: ClassVar[str] = ""

    def __init__(self, **settings: Any) -> None:
        known = [f.name for f in dataclasses.fields(self.Settings)]
        unknown = [key for key in settings if key not in known]
        if unknown:  # said as the option, not as "LidSettings.__init__() got an unexpected keyword argument"
            raise NaviewerError(f"detector {self.name!r} has no setting {unknown[0]!r}; its settings: {', '.join(known)}")
        try:
            self.settings = self.Settings(**settings)
        except TypeError as exc:
            raise NaviewerError(f"bad settings for detector {self.name!r}: {exc}; known settings: "
                                f"{', '.join(known)}") from None
        self._check_types(settings)
        self.validate()

    def _check_types(self, given: dict) -> None:
        """Each given setting has its default's type (an int is a float; a list is a tuple), so that
        ``classifier=maybe`` from the command line is an error, not a truthy string."""
        defaults = self.Settings()
        for key, value in given.items():
            default = getattr(defaults, key)
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, int):
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif isinstance(default, float):
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            elif isinstance(default, (tuple, list)):
                ok = isinstance(value, (tuple, list))
            elif isinstance(default, (str, dict)):
                ok = isinstance(value, type(default))
            else:
                ok = True
            if not ok:
                raise NaviewerError(f"detector {self.name}: setting {key} must be {type(default).__name__} "
                                    f"(like its default {default!r}), got {value!r}")

    def validate(self) -> None:
        """The settings every detector shares, checked as it is made (before any embedding): a bad one was refused
        only after the embedding, or raised from deep inside (a bad-input probe, session 32)."""
        s = self.settings
        rule = getattr(s, "rule", "top_fraction")
        if rule not in THRESHOLD_RULES + ("own",):
            raise NaviewerError(f"detector {self.name}: unknown threshold rule {rule!r}")
        k = getattr(s, "k", None)
        if k is not None and int(k) < 1:
            raise NaviewerError(f"detector {self.name}: k must be >= 1, got {k}")
        fraction = getattr(s, "fraction", None)  # read by top_fraction, and by gmm2 where its split fails
        if fraction is not None and rule in ("top_fraction", "gmm2") and not 0.0 < float(fraction) < 1.0:
            raise NaviewerError(f"detector {self.name}: fraction must be in (0, 1), got {fraction}")
        z = getattr(s, "z", None)
        if z is not None and not (math.isfinite(float(z)) and float(z) >= 0):
            raise NaviewerError(f"detector {self.name}: z must be a finite number, 0 or more, got {z}")
        seed = getattr(s, "seed", None)
        if seed is not None and not 0 <= int(seed) < 2 ** 32:
            raise NaviewerError(f"detector {self.name}: seed must be in [0, 2**32), got {seed}")
        direction = getattr(s, "direction", None)
        if direction is not None and direction not in ("sparse", "dense"):
            raise NaviewerError(f"detector {self.name}: direction must be sparse or dense, got {direction!r}")
        backend = getattr(s, "backend", None)
        if backend is not None:
            from naviewer.defense.config import KNN_BACKENDS

            if backend not in KNN_BACKENDS:
                raise NaviewerError(f"detector {self.name}: backend must be one of {', '.join(KNN_BACKENDS)}, "
                                    f"got {backend!r}")
        for key in ("batch", "batch_crops", "classifier_width"):
            value = getattr(s, key, None)
            if value is not None and int(value) < 1:
                raise NaviewerError(f"detector {self.name}: {key} must be >= 1, got {value}")

    #: the settings that count neighbouring samples (a kNN table over the N samples), checked against N before any
    #: work; empty where the detector's k counts something else (crop_density's crops)
    SAMPLE_NEIGHBOURS: tuple[str, ...] = ("k",)

    def check_inputs(self, image_size: Optional[int] = None, n_samples: Optional[int] = None,
                     encoder: Any = None) -> None:
        """Refuse, before any work, settings the inputs make impossible (extend; e.g. a window larger
        than the image, a layer the ``encoder`` lacks). A pass calls it before embedding, so the error does not come
        after minutes (lid's k=64 on 48 samples was refused after the embedding and the DIFT pass, which it left
        written; a sweep, session 26)."""
        for key in self.SAMPLE_NEIGHBOURS or ():
            k = getattr(self.settings, key, None)
            if k is not None and n_samples is not None and int(k) >= int(n_samples):
                raise NaviewerError(f"detector {self.name}: {key}={k} neighbours need more than {k} samples, the "
                                    f"workspace has {n_samples:,}: give --detector-set {self.name}:{key}=N with N below "
                                    f"{n_samples:,}")

    def settings_dict(self) -> dict:
        return dataclasses.asdict(self.settings)

    def score(self, inputs: DetectorInputs, ctx: JobContext) -> tuple[np.ndarray, dict]:
        """(score over the N samples, extras such as a direction note); override."""
        raise NotImplementedError

    def run(self, inputs: DetectorInputs, ctx: Optional[JobContext] = None) -> DetectorResult:
        ctx = ensure_context(ctx)
        for need in self.needs:
            if getattr(inputs, need, None) is None:
                raise NaviewerError(f"detector {self.name} needs {need}")
        start = time.perf_counter()
        score, extras = self.score(inputs, ctx)
        score = np.asarray(score, dtype=np.float64)[:inputs.n]
        flags = extras.pop("flags", None)
        if flags is None:
            s = self.settings
            flags, rule = threshold(score, getattr(s, "rule", "top_fraction"), getattr(s, "fraction", 0.01),
                                    getattr(s, "z", 3.5), seed=getattr(s, "seed", 0))
        else:
            rule = extras.pop("threshold", {"rule": "own"})
        return DetectorResult(self.name, score, np.asarray(flags, dtype=bool)[:inputs.n], self.settings_dict(), rule,
                              extras.pop("direction_note", ""), extras.pop("clusters", None), extras,
                              time.perf_counter() - start)


DETECTORS: dict[str, type[Detector]] = {}


def register_detector(cls: type[Detector]) -> type[Detector]:
    if not cls.name or cls.name in DETECTORS:
        raise NaviewerError(f"detector name {cls.name!r} is empty or taken")
    DETECTORS[cls.name] = cls
    return cls
