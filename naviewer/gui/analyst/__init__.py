"""Analyst views (issue 7): Qt widgets over one :class:`naviewer.analysis.AnalysisSession`.

Import the widgets from their modules (``naviewer.gui.analyst.panel.AnalystPanel`` docks them all).
Importing this package imports :mod:`naviewer.gui` first, which applies the one PySide6
None-refcount guard (:mod:`naviewer.gui._refcount_guard`).
"""
