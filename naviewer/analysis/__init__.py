"""naviewer.analysis: the Qt-free model of an analyst's review session, and of the application.

The GUI's analyst views (``naviewer.gui.analyst``) are thin views over :class:`AnalysisSession`;
everything they show (clusters, projections, event probabilities, the HTML report) is computed
here, so a script or the CLI gets the same answers without Qt. The main window is a view of
:class:`naviewer.analysis.app_state.AppState`.

The names below load on first use (PEP 562): the main window imports ``app_state`` before its
first paint, and that must not import numpy.
"""

from importlib import import_module
from typing import Any

from naviewer.analysis.events import Signal

_LAZY = {
    "AnalysisSession": "naviewer.analysis.session",
    "MemoryReviewStore": "naviewer.analysis.review",
    "REVIEW_STATES": "naviewer.analysis.review",
    "ReviewStore": "naviewer.analysis.review",
}

__all__ = ["AnalysisSession", "MemoryReviewStore", "REVIEW_STATES", "ReviewStore", "Signal"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
