"""DIFT (the paper's, the default) and the B1 clustering filters as detectors of the one interface."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from naviewer.catalogue import DETECTOR_SUMMARIES
from naviewer.defense.detectors.base import Detector, DetectorInputs, register_detector
from naviewer.jobs import JobContext


@dataclass
class DiftDetectorSettings:
    dift: dict = field(default_factory=dict)   # DiftConfig overrides


@register_detector
class DiftDetector(Detector):
    """DIFT's post-hoc pass: flags are its final set, the score its kNN density (-log d_k)."""

    name = "dift"
    Settings = DiftDetectorSettings
    needs = ("anchors",)
    summary = DETECTOR_SUMMARIES[name]

    def validate(self) -> None:
        super().validate()
        _check_dift(self.name, self.settings.dift)

    def score(self, inputs: DetectorInputs, ctx: JobContext):
        from naviewer.defense.config import DiftConfig
        from naviewer.defense.pipeline import PosthocDetector

        config = DiftConfig.from_dict(self.settings.dift)
        result = PosthocDetector(config).run(inputs.embeddings, inputs.anchors, inputs.ground_truth, ctx,
                                             sample_count=inputs.sample_count)
        inputs.cache["dift"] = result
        density = -np.log(np.maximum(result.detection.knn.kth_distance.astype(np.float64), 1e-12))
        flags = np.zeros(result.samples, dtype=bool)
        flags[result.final_ids] = True
        return density, {"flags": flags, "threshold": {"rule": "own", "noop": bool(result.noop)},
                         "clusters": result.scores()["cluster"], "direction_note": "-log d_k (density)"}


@dataclass
class ClusterFilterSettings:
    min_samples: int = 20
    dift: dict = field(default_factory=dict)


def _check_dift(name: str, overrides: dict) -> None:
    """DIFT's overrides checked as the detector is made, not after the embedding (a bad-input probe, session 32)."""
    from naviewer.defense.config import DiftConfig
    from naviewer.errors import NaviewerError

    try:
        DiftConfig.from_dict(overrides).validate()
    except NaviewerError as exc:
        raise NaviewerError(f"detector {name}: dift setting: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise NaviewerError(f"detector {name}: bad dift setting: {exc}") from None


class _ClusterFilter(Detector):
    Settings = ClusterFilterSettings
    method = ""

    def validate(self) -> None:
        super().validate()
        from naviewer.errors import NaviewerError

        if int(self.settings.min_samples) < 2:  # OPTICS raised scikit-learn's own error from deep inside (a probe)
            raise NaviewerError(f"detector {self.name}: min_samples must be >= 2, got {self.settings.min_samples}")
        _check_dift(self.name, self.settings.dift)

    def score(self, inputs: DetectorInputs, ctx: JobContext):
        from naviewer.defense.baselines import dbscan_filter, optics_filter
        from naviewer.defense.config import DiftConfig

        fn = dbscan_filter if self.method == "dbscan" else optics_filter
        features = np.asarray(inputs.embeddings)[:inputs.n]
        res = fn(features, DiftConfig.from_dict(self.settings.dift), min_samples=self.settings.min_samples, ctx=ctx)
        flags = res.flagged_mask()
        return flags.astype(np.float64), {"flags": flags, "threshold": {"rule": "own"},
                                          "direction_note": "1 = in a flagged cluster"}


@register_detector
class DbscanDetector(_ClusterFilter):
    name = "dbscan"
    method = "dbscan"
    summary = DETECTOR_SUMMARIES[name]


@register_detector
class OpticsDetector(_ClusterFilter):
    name = "optics"
    method = "optics"
    summary = DETECTOR_SUMMARIES[name]
