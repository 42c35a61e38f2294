"""Resources (themes, icons) are found through the package naviewer.resources, and packaging lists every package."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from naviewer.gui.resources import ICON_SIZES, THEMES, app_icon, load_theme, resource_root

REPO = Path(__file__).resolve().parents[2]


def test_themes_load():
    for name in THEMES:
        theme = load_theme(name)
        assert "QMainWindow" in theme.stylesheet
        assert theme.plot_background.startswith("#") and theme.series
    with pytest.raises(ValueError):
        load_theme("purple")


def test_every_image_a_theme_names_exists_and_loads(qapp):
    """The spin boxes' and combo boxes' arrows are SVG files beside the sheet (styled without them, a spin box's
    arrows were thin lines): each url() of a sheet is a file Qt can read."""
    import re

    from PySide6.QtGui import QImage

    for name in THEMES:
        sheet = load_theme(name).stylesheet
        assert "@THEMES@" not in sheet
        urls = re.findall(r"url\(([^)]+)\)", sheet)
        assert any("up-" in u for u in urls) and any("down-" in u for u in urls)
        for url in urls:
            assert Path(url).is_file(), url
            assert not QImage(url).isNull(), url


def test_icon_files_exist_and_load(qapp):
    root = resource_root()
    assert (root / "icons" / "naviewer.svg").is_file()
    for size in ICON_SIZES:
        assert (root / "icons" / f"naviewer-{size}.png").is_file()
    icon = app_icon()
    assert not icon.isNull() and len(icon.availableSizes()) == len(ICON_SIZES)
    assert (root / "naviewer.desktop").read_text().startswith("[Desktop Entry]")


def test_pyproject_lists_every_package():
    """resources/ is mapped to naviewer.resources, so packages are listed explicitly: keep the list whole."""
    if sys.version_info < (3, 11):
        pytest.skip("tomllib needs Python 3.11")
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {
        ".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "naviewer").rglob("__init__.py")
    }
    missing = sorted(on_disk - listed)
    assert not missing, f"add these packages to [tool.setuptools] packages in pyproject.toml: {missing}"
    assert config["package-dir"]["naviewer.resources"] == "resources"
    data = config["package-data"]
    assert {"naviewer.resources.icons", "naviewer.resources.themes"} <= listed  # data folders ship as packages
    assert "*.desktop" in data["naviewer.resources"] and "*.xml" in data["naviewer.resources"]
    assert "*.png" in data["naviewer.resources.icons"] and "*.qss" in data["naviewer.resources.themes"]
