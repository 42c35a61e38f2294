"""Finding the shipped resources (themes, icons) in installed, editable and source checkouts.

The files live in the top-level ``resources/`` folder, installed as the package
``naviewer.resources``. An editable install made before that mapping existed cannot import it, so
we fall back to the folder next to the ``naviewer`` package in a source checkout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

THEMES = ("light", "dark")
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


@lru_cache(maxsize=1)
def resource_root() -> Path:
    """The folder holding ``themes/`` and ``icons/``."""
    try:
        from importlib.resources import files

        root = files("naviewer.resources")
        candidate = Path(str(root))
        if (candidate / "themes").is_dir():
            return candidate
    except (ModuleNotFoundError, TypeError):
        pass
    import naviewer

    candidate = Path(naviewer.__file__).resolve().parent.parent / "resources"
    if (candidate / "themes").is_dir():
        return candidate
    raise FileNotFoundError("naviewer resources not found: reinstall naviewer (pip install -e .)")


def resource_path(*parts: str) -> Path:
    return resource_root().joinpath(*parts)


@dataclass(frozen=True)
class Theme:
    """A Qt stylesheet plus the colours pyqtgraph needs (it does not read stylesheets)."""

    name: str
    stylesheet: str
    plot_background: str
    plot_foreground: str
    plot_grid_alpha: float = 0.25
    series: tuple[str, ...] = field(default_factory=tuple)
    accent: str = "#2f6fd0"

    @property
    def dark(self) -> bool:
        return self.name == "dark"

    def color(self, index: int) -> str:
        return self.series[index % len(self.series)] if self.series else self.accent


@lru_cache(maxsize=None)
def load_theme(name: str) -> Theme:
    if name not in THEMES:
        raise ValueError(f"unknown theme {name!r}; choose one of {', '.join(THEMES)}")
    folder = resource_path("themes")
    meta = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    return Theme(
        name=name,
        # the arrows' images are files beside the sheet: @THEMES@ is that folder (a url Qt reads as a path)
        stylesheet=(folder / f"{name}.qss").read_text(encoding="utf-8").replace("@THEMES@", folder.as_posix()),
        plot_background=meta["plot_background"],
        plot_foreground=meta["plot_foreground"],
        plot_grid_alpha=float(meta.get("plot_grid_alpha", 0.25)),
        series=tuple(meta.get("series", ())),
        accent=meta.get("accent", "#2f6fd0"),
    )


def app_icon():  # -> QIcon (Qt imported lazily so this module is cheap to import)
    """The application icon, with every pre-rendered PNG size plus the SVG for anything larger."""
    from PySide6.QtCore import QSize
    from PySide6.QtGui import QIcon

    icon = QIcon()
    for size in ICON_SIZES:
        png = resource_path("icons", f"naviewer-{size}.png")
        if png.is_file():
            icon.addFile(str(png), QSize(size, size))
    svg = resource_path("icons", "naviewer.svg")
    if icon.isNull() and svg.is_file():
        icon.addFile(str(svg))
    return icon


def render_icon_pngs(svg: Path | None = None, out_dir: Path | None = None) -> list[Path]:
    """Re-render ``icons/naviewer-<size>.png`` from the SVG (run after editing the SVG).

    ``python -m naviewer.gui.resources`` does this; it needs a QGuiApplication (offscreen works).
    """
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    svg = svg or resource_path("icons", "naviewer.svg")
    out_dir = out_dir or svg.parent
    _app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - keeps Qt alive while rendering
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg}: not a valid SVG")
    written = []
    for size in ICON_SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        target = out_dir / f"naviewer-{size}.png"
        image.save(str(target))
        written.append(target)
    return written


if __name__ == "__main__":  # pragma: no cover - developer tool
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    for path in render_icon_pngs():
        print(path)
