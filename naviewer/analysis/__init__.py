"""naviewer.analysis: the Qt-free model of an analyst's review session.

The GUI's analyst views (``naviewer.gui.analyst``) are thin views over :class:`AnalysisSession`;
everything they show (clusters, projections, event probabilities, the HTML report) is computed
here, so a script or the CLI gets the same answers without Qt.
"""

from naviewer.analysis.events import Signal
from naviewer.analysis.review import REVIEW_STATES, MemoryReviewStore, ReviewStore
from naviewer.analysis.session import AnalysisSession

__all__ = ["AnalysisSession", "MemoryReviewStore", "REVIEW_STATES", "ReviewStore", "Signal"]
