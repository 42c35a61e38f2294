"""Readable advice when the desktop app's Qt cannot load a system library.

PySide6's wheels link the host's OpenGL/EGL/xcb/Wayland libraries, which pip cannot install: on a
bare server or a minimal container ``import PySide6.QtWidgets`` fails with an ``ImportError``
naming a ``.so``. A user should see which library is missing and the one line that installs it,
not a traceback. The list was checked on a minimal Debian 12 (see docs/packaging.md).

Qt's X11 platform plugin (xcb) needs a further set of libraries that only matter when the
QApplication is created, where a missing one makes Qt *abort* (exit status 134) with a message that
names ``xcb-cursor0`` whichever library is really missing. :func:`xcb_problem` checks the whole set
(:data:`XCB_LIBRARIES`, what ``libqxcb.so`` and ``libQt6XcbQpa.so.6`` link) before that, without
importing Qt, so the app can print this module's hint and exit 2, and ``naviewer demo`` can run
without the window instead.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
from pathlib import Path
from typing import Callable, Mapping, Optional

#: what Qt's xcb platform plugin links from the host (soname -> Debian/Ubuntu package)
XCB_LIBRARIES = {
    "libGL.so.1": "libgl1",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
}

#: the packages a minimal Debian/Ubuntu host needs for the desktop app (X11 and Wayland)
HOST_PACKAGES = " ".join(dict.fromkeys([
    "libgl1", "libegl1", *XCB_LIBRARIES.values(), "libwayland-cursor0", "libwayland-egl1", "fontconfig", "fonts-dejavu-core",
]))

APT_LINE = f"sudo apt-get install --no-install-recommends {HOST_PACKAGES}"

HOST_LIBS_HINT = (
    "The desktop app needs system libraries that this computer lacks.\n"
    "On Debian/Ubuntu:\n"
    f"  {APT_LINE}\n"
    '(see "Host requirements" in docs/packaging.md). The command-line actions work without them.'
)


class MissingSystemLibraries(ImportError):
    """Qt's platform plugin would not load: the message names the missing libraries and the apt line."""


def missing_library_message(exc: BaseException) -> Optional[str]:
    """The message for an ImportError caused by a missing shared library, else None."""
    if isinstance(exc, MissingSystemLibraries):
        return str(exc)
    text = str(exc)
    if not isinstance(exc, ImportError) or "cannot open shared object file" not in text:
        return None
    return f"naviewer: {text}\n{HOST_LIBS_HINT}"


def report_missing_library(exc: ImportError) -> int:
    """For an entry point's ``except ImportError``: print the advice and return exit code 2 when a
    system library is missing; any other ImportError is a bug and propagates."""
    message = missing_library_message(exc)
    if message is None:
        raise exc
    print(message, file=sys.stderr)
    return 2


# -- Qt's X11 platform ------------------------------------------------------------------------
def qt_platform(env: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The platform plugin Qt will load first (``xcb``, ``wayland``, ``offscreen``, ...), or None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    env = os.environ if env is None else env
    forced = env.get("QT_QPA_PLATFORM", "").strip()
    if forced:
        return forced.split(";")[0].split(":")[0].strip() or None
    if env.get("XDG_SESSION_TYPE") == "wayland" and env.get("WAYLAND_DISPLAY"):
        return "wayland"
    return "xcb"


def _pyside_dir() -> Optional[Path]:
    try:
        spec = importlib.util.find_spec("PySide6")  # finds the package without importing Qt
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def xcb_plugin_path() -> Optional[Path]:
    """``PySide6/Qt/plugins/platforms/libqxcb.so`` of the installed PySide6, if there is one."""
    root = _pyside_dir()
    if root is None:
        return None
    plugin = root / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.is_file() else None


def _load(name: str) -> None:
    """dlopen ``name`` (raises OSError when it or a library it needs is missing)."""
    ctypes.CDLL(name)


def missing_xcb_libraries(loader: Optional[Callable[[str], None]] = None) -> list[str]:
    """The sonames of :data:`XCB_LIBRARIES` that cannot be loaded, sorted. A library the system lacks
    but the application carries (Qt's own folder, a bundle's) counts as present."""
    load = loader or _load
    folders = []
    root = _pyside_dir()
    if root is not None:
        folders.append(root / "Qt" / "lib")
    if getattr(sys, "_MEIPASS", None):
        folders.append(Path(sys._MEIPASS))  # type: ignore[attr-defined]
    missing = []
    for name in XCB_LIBRARIES:
        for candidate in [name, *(str(folder / name) for folder in folders if (folder / name).is_file())]:
            try:
                load(candidate)
                break
            except OSError:
                continue
        else:
            missing.append(name)
    return sorted(missing)


def xcb_problem(env: Optional[Mapping[str, str]] = None, loader: Optional[Callable[[str], None]] = None) -> Optional[str]:
    """naviewer's message when Qt is about to load its X11 platform and a library it needs is
    missing (every missing one is named, with the complete apt line); None when all is there, when
    another platform will be used, or when no PySide6 is installed to check."""
    if qt_platform(env) != "xcb":
        return None
    missing = missing_xcb_libraries(loader)
    if not missing:
        return None
    packages = sorted({XCB_LIBRARIES[name] for name in missing})
    names = ", ".join(missing[:-1]) + (" and " if len(missing) > 1 else "") + missing[-1]
    return (
        f"naviewer: the window cannot open: Qt's X11 platform (xcb) needs {names}, which this computer lacks "
        f"(package{'s' if len(packages) > 1 else ''} {' '.join(packages)}).\n{HOST_LIBS_HINT}"
    )


def check_gui_libraries(env: Optional[Mapping[str, str]] = None, loader: Optional[Callable[[str], None]] = None) -> None:
    """Raise :class:`MissingSystemLibraries` (an ImportError, so the entry points report it and exit 2)
    when :func:`xcb_problem` finds one. Call it before creating the QApplication."""
    problem = xcb_problem(env, loader)
    if problem is not None:
        raise MissingSystemLibraries(problem)
