"""Light and dark themes: a Qt stylesheet, a matching palette, and pyqtgraph's colours.

pyqtgraph ignores stylesheets, so plots listen to :attr:`ThemeManager.theme_changed` and recolour
themselves; pyqtgraph's global defaults are set only once pyqtgraph is imported (it is slow to
import and not needed to put the window on screen).
"""

from __future__ import annotations

import sys
from typing import Optional

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from naviewer.gui.resources import THEMES, Theme, load_theme


def _palette(theme: Theme) -> QPalette:
    """A palette so that widgets the stylesheet does not cover (pyqtgraph axes, dialogs) match."""
    palette = QPalette()
    if theme.dark:
        base, window, text, button = "#1b2030", "#151a26", "#d7deec", "#232b3f"
        disabled = "#5a6478"
    else:
        base, window, text, button = "#ffffff", "#f4f6fa", "#1f2430", "#ffffff"
        disabled = "#a4acbc"
    roles = {
        QPalette.ColorRole.Window: window,
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: window,
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: button,
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.ToolTipBase: text,
        QPalette.ColorRole.ToolTipText: window,
        QPalette.ColorRole.Highlight: theme.accent,
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.PlaceholderText: disabled,
    }
    # links in labels and the guide viewer: Qt's default dark blue was barely readable on the dark theme's
    # near-black (a newcomer, session 28)
    roles[QPalette.ColorRole.Link] = "#8ab4ff" if theme.dark else "#1a56c4"
    roles[QPalette.ColorRole.LinkVisited] = "#c3a6ff" if theme.dark else "#6a3fb0"
    for role, colour in roles.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(disabled))
    return palette


#: the theme last applied: pyqtgraph is imported lazily (the window shows faster), after the theme was set
_current_theme: Optional[Theme] = None


def configure_pyqtgraph(theme: Theme) -> None:
    """Set pyqtgraph's defaults for plots created from now on (remembered until pyqtgraph is imported)."""
    global _current_theme
    _current_theme = theme
    pg = sys.modules.get("pyqtgraph")
    if pg is None:
        return
    pg.setConfigOptions(background=theme.plot_background, foreground=theme.plot_foreground, antialias=True)


def sync_pyqtgraph() -> None:
    """Give pyqtgraph the theme applied before it was imported. Modules that build plots call it once imported:
    the first window of a new user (no saved theme) drew the map on pyqtgraph's own black with dim points, until
    the theme was toggled twice (newcomer session 17)."""
    if _current_theme is not None:
        configure_pyqtgraph(_current_theme)


class ThemeManager(QObject):
    """Owns the current theme and tells views when it changes."""

    theme_changed = Signal(object)  # Theme

    def __init__(self, app: QApplication, name: str = "light") -> None:
        super().__init__(app)
        self._app = app
        self._theme = load_theme(name if name in THEMES else "light")

    @property
    def theme(self) -> Theme:
        return self._theme

    def apply(self, name: str | None = None) -> Theme:
        if name is not None:
            self._theme = load_theme(name if name in THEMES else "light")
        theme = self._theme
        self._app.setStyle("Fusion")
        self._app.setPalette(_palette(theme))
        self._app.setStyleSheet(theme.stylesheet)
        configure_pyqtgraph(theme)
        self.theme_changed.emit(theme)
        return theme
