"""Issue 14 item 7: the whole xcb set is checked before the QApplication exists; naviewer's own hint with
the complete apt line instead of Qt's abort (which named xcb-cursor when icccm and keysyms were missing);
``naviewer demo`` falls back to --no-gui with that message."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from naviewer import system_libs

MISSING = {"libxcb-icccm.so.4", "libxcb-keysyms.so.1"}


def _loader(missing=MISSING):
    def load(name: str) -> None:
        if Path(name).name in missing:
            raise OSError(f"{name}: cannot open shared object file: No such file or directory")

    return load


def test_the_whole_xcb_set_is_checked_and_the_hint_names_every_package():
    assert system_libs.missing_xcb_libraries(loader=_loader()) == sorted(MISSING)
    message = system_libs.xcb_problem(loader=_loader(), env={"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":0"})
    assert "libxcb-icccm.so.4" in message and "libxcb-keysyms.so.1" in message
    assert "xcb-cursor" not in message.split("\n")[0]  # names what is missing, not Qt's guess
    apt = next(line for line in message.splitlines() if "apt-get install" in line)
    for package in ("libxcb-icccm4", "libxcb-keysyms1", "libxcb-cursor0", "libxcb-image0", "libxcb-render-util0",
                    "libxkbcommon-x11-0", "libgl1", "libegl1", "fontconfig"):
        assert package in apt.split(), package
    assert system_libs.xcb_problem(loader=_loader(set()), env={"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":0"}) is None


@pytest.mark.parametrize("env, platform", [
    ({"QT_QPA_PLATFORM": "offscreen"}, "offscreen"),
    ({"QT_QPA_PLATFORM": "xcb;wayland", "DISPLAY": ":0"}, "xcb"),
    ({"DISPLAY": ":0"}, "xcb"),
    ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, "wayland"),
])
def test_which_platform_qt_will_load(env, platform):
    assert system_libs.qt_platform(env) == (platform if sys.platform.startswith("linux") else None)


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("readelf") is None, reason="Linux with readelf")
def test_the_list_covers_what_the_installed_xcb_plugin_links():
    plugin = system_libs.xcb_plugin_path()
    assert plugin is not None
    needed = set()
    for library in (plugin, plugin.parents[2] / "lib" / "libQt6XcbQpa.so.6"):
        out = subprocess.run(["readelf", "-d", str(library)], capture_output=True, text=True, check=True).stdout
        needed |= {line.split("[")[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line}
    bundled = {p.name for p in (plugin.parents[2] / "lib").iterdir()}
    system = {n for n in needed - bundled if not n.startswith(("libc.so", "libm.so", "libstdc++", "libgcc_s"))}
    assert system <= set(system_libs.XCB_LIBRARIES), system - set(system_libs.XCB_LIBRARIES)


def test_the_app_prints_the_hint_and_exits_2_instead_of_aborting(tmp_path):
    script = (
        "import sys, naviewer.system_libs as s\n"
        "real = s._load\n"
        f"def load(name):\n    import os\n    if os.path.basename(name) in {sorted(MISSING)!r}: raise OSError(name)\n    return real(name)\n"
        "s._load = load\n"
        "sys.argv = ['naviewer-gui']\n"
        "from naviewer.gui.app import main\n"
        "main()\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "DISPLAY": ":0", "NAVIEWER_SETTINGS_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "libxcb-icccm.so.4" in done.stderr and "sudo apt-get install" in done.stderr
    assert "xcb-cursor0 or libxcb-cursor0 is needed" not in done.stderr


def test_demo_falls_back_to_no_gui_with_the_message(monkeypatch, capsys, tmp_path):
    from naviewer.cli import demo
    import naviewer.gui.demo as gui_demo

    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(system_libs, "_load", _loader())
    monkeypatch.setattr(gui_demo, "run_demo_gui", lambda *a, **k: 134)  # what Qt's abort amounted to
    ran = []
    monkeypatch.setattr(demo, "_headless", lambda path, config, args, started: ran.append(path) or 0)
    args = argparse.Namespace(workspace=str(tmp_path / "ws"), no_gui=False, epochs=None, device=None, threads=None,
                              settings=None, json=False)
    assert demo.run(args) == 0
    assert ran == [tmp_path / "ws"] and args.no_gui
    err = capsys.readouterr()
    text = err.out + err.err
    assert "libxcb-keysyms.so.1" in text and "sudo apt-get install" in text and "--no-gui" in text


def test_the_docs_give_the_same_apt_line():
    root = Path(__file__).resolve().parents[2] / "docs"
    for name in ("getting-started.md", "packaging.md"):
        text = (root / name).read_text(encoding="utf-8")
        assert system_libs.APT_LINE in text, name
