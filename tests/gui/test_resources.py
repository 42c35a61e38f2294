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


@pytest.mark.parametrize("name", THEMES)
def test_the_file_dialogs_tool_buttons_show_their_icons(qapp, qtbot, name):
    """The themes' tool-button padding squeezed Qt's file dialog's back / up / new-folder / view buttons to dots (a
    newcomer, session 25): each button's icon keeps at least half of its 16 px."""
    from PySide6.QtWidgets import QFileDialog, QToolButton

    from naviewer.gui.theme import ThemeManager

    sheet, palette, style = qapp.styleSheet(), qapp.palette(), qapp.style().name()
    ThemeManager(qapp, name).apply()
    try:
        dialog = QFileDialog(None, "t")
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog)
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.waitExposed(dialog)
        buttons = [b for b in dialog.findChildren(QToolButton) if b.isVisible() and not b.icon().isNull()]
        assert buttons
        for button in buttons:
            image = button.grab().toImage()
            w, h = image.width(), image.height()
            background = image.pixelColor(1, h // 2).rgb()
            ink = [x for x in range(2, w - 2) for y in range(2, h - 2) if image.pixelColor(x, y).rgb() != background]
            assert ink and max(ink) - min(ink) + 1 >= 8, button.objectName()
    finally:  # the application as the other tests find it
        qapp.setStyle(style)
        qapp.setPalette(palette)
        qapp.setStyleSheet(sheet)


@pytest.mark.parametrize("name", THEMES)
def test_an_on_off_tool_button_looks_different_on_and_off(qapp, qtbot, name):
    """The map's Flags toggle and its Pan / Box / Lasso tools looked the same on and off (a newcomer, session 26)."""
    from PySide6.QtWidgets import QToolButton

    from naviewer.gui.theme import ThemeManager

    sheet, palette, style = qapp.styleSheet(), qapp.palette(), qapp.style().name()
    ThemeManager(qapp, name).apply()
    try:
        button = QToolButton()
        button.setText("Flags")
        button.setCheckable(True)
        qtbot.addWidget(button)
        button.show()
        qtbot.waitExposed(button)
        button.setChecked(True)
        on = button.grab().toImage().pixelColor(3, button.height() // 2).name()
        button.setChecked(False)
        off = button.grab().toImage().pixelColor(3, button.height() // 2).name()
        assert on != off
    finally:
        qapp.setStyle(style)
        qapp.setPalette(palette)
        qapp.setStyleSheet(sheet)
