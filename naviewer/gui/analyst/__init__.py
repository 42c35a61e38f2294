"""Analyst views (issue 7): Qt widgets over one :class:`naviewer.analysis.AnalysisSession`.

Import the widgets from their modules (``naviewer.gui.analyst.panel.AnalystPanel`` docks them all).
Importing this package installs the PySide6 None-refcount guard (see ``_refcount_guard``).
"""

from naviewer.gui.analyst import _refcount_guard

_refcount_guard.install()
