"""Poison detectors behind one interface (:mod:`.base`), registered by name.

``make_detector("lid", k=32).run(DetectorInputs(embeddings))`` -> a :class:`DetectorResult`.
Importing this package registers every detector; the registry itself lives in :mod:`.base`.
"""

from __future__ import annotations

from typing import Any

from naviewer.defense.detectors import adapters, crops, density, patchsearch  # noqa: F401  (register the detectors)
from naviewer.defense.detectors.base import (
    DETECTORS,
    THRESHOLD_RULES,
    Detector,
    DetectorInputs,
    DetectorResult,
    register_detector,
    threshold,
)
from naviewer.errors import NaviewerError


def make_detector(name: str, **settings: Any) -> Detector:
    """A registered detector with ``settings`` (a NaviewerError names the known ones)."""
    if name not in DETECTORS:
        raise NaviewerError(f"unknown detector {name!r}; choose from {', '.join(sorted(DETECTORS))}")
    return DETECTORS[name](**settings)


def detector_names() -> list[str]:
    return sorted(DETECTORS)


__all__ = ["DETECTORS", "THRESHOLD_RULES", "Detector", "DetectorInputs", "DetectorResult", "detector_names",
           "make_detector", "register_detector", "threshold"]
