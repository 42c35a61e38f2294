"""Where the application remembers things (window layout, theme, recent workspaces).

Tests and benchmarks set ``NAVIEWER_SETTINGS_DIR`` so that they read and write an INI file in a
folder of their own instead of the user's real settings.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

ORGANIZATION = "naviewer"
APPLICATION = "naviewer"
SETTINGS_DIR_ENV = "NAVIEWER_SETTINGS_DIR"
MAX_RECENT = 10


#: the settings folder used instead of one that cannot be made (one per process, said once on stderr)
_FALLBACK: dict[str, str] = {}


def app_settings() -> QSettings:
    """The application's QSettings: an INI file under $NAVIEWER_SETTINGS_DIR, else the platform store. A settings
    folder that cannot be made (no permission, a file in its place) is replaced by a temporary one for this run,
    said on stderr: the window did not start, a traceback (a permission probe, session 34)."""
    folder = os.environ.get(SETTINGS_DIR_ENV)
    if folder:
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            folder = _fallback_folder(folder, exc)
        return QSettings(str(Path(folder) / "naviewer.ini"), QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def _fallback_folder(folder: str, exc: OSError) -> str:
    import sys
    import tempfile

    if folder not in _FALLBACK:
        from naviewer.io import describe_os_error

        _FALLBACK[folder] = tempfile.mkdtemp(prefix="naviewer-settings-")
        print(f"naviewer: the settings folder {folder} cannot be made ({describe_os_error(exc)}); this run keeps its "
              f"settings in {_FALLBACK[folder]} (a later run does not read them)", file=sys.stderr)
    return _FALLBACK[folder]


def _as_list(value: object) -> list[str]:
    # QSettings returns a str for one-element lists and None for missing keys on INI files.
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if not isinstance(value, (list, tuple)):  # a number written there by hand read as a TypeError at start
        return [str(value)]
    return [str(v) for v in value]


def recent_workspaces(settings: QSettings) -> list[str]:
    return _as_list(settings.value("recent/workspaces"))


def reopens_last_workspace(settings: QSettings) -> bool:
    """Whether the window opens the workspace used last when started with no folder (on unless turned off)."""
    value = settings.value("startup/reopen_last", True)
    return value not in (False, "false", "0", 0)


def add_recent_workspace(settings: QSettings, path: str) -> list[str]:
    """Put ``path`` first in the recent list (no duplicates, at most MAX_RECENT) and return the list."""
    path = os.path.abspath(path)
    items = [p for p in recent_workspaces(settings) if p != path]
    items.insert(0, path)
    items = items[:MAX_RECENT]
    settings.setValue("recent/workspaces", items)
    return items


def remove_recent_workspace(settings: QSettings, path: str) -> list[str]:
    items = [p for p in recent_workspaces(settings) if p != path]
    settings.setValue("recent/workspaces", items)
    return items


def start_folder(settings: QSettings, kind: str) -> str:
    """Where a file dialog of ``kind`` (workspace, dataset, encoder, ...) opens: the folder last chosen
    for it, else the folder naviewer was started in (where the analyst's data usually is), else home."""
    last = settings.value(f"dialogs/{kind}")
    if isinstance(last, str) and last and Path(last).is_dir():
        return last
    cwd = os.getcwd()
    return cwd if Path(cwd).is_dir() else str(Path.home())


def remember_folder(settings: QSettings, kind: str, chosen: "str | os.PathLike[str]") -> None:
    """Remember the folder of a chosen file (or the chosen folder) for the next dialog of ``kind``."""
    path = Path(chosen)
    folder = path if path.is_dir() else path.parent
    settings.setValue(f"dialogs/{kind}", str(folder.resolve()))


def _pass_key(path: str) -> str:
    import hashlib

    return "reviewed_pass/" + hashlib.sha1(os.path.abspath(path).encode("utf-8", "surrogatepass")).hexdigest()[:20]


def remember_reviewed_pass(settings: QSettings, path: str, pass_id: int, latest: int) -> None:
    """The detection pass the analyst had open in workspace ``path``, and the workspace's latest then."""
    settings.setValue(_pass_key(path), f"{int(pass_id)}:{int(latest)}")


def pass_to_reopen(settings: QSettings, path: str, latest: int) -> int:
    """The pass to open ``path`` on: the one the analyst had open last, unless a newer pass was made since (then
    the newest). A newcomer switched back to pass 1 (their decisions), quit, and reopened on pass 4, "no poison
    detected · reviewed 0 / 0", and thought the decisions were gone."""
    value = settings.value(_pass_key(path))
    try:
        shown, then = (int(part) for part in str(value).split(":"))
    except (TypeError, ValueError):
        return int(latest)
    return shown if then == int(latest) and 0 < shown <= int(latest) else int(latest)


def _view_key(path: str) -> str:
    return "analyst_view/" + _pass_key(path).split("/", 1)[1]


def remember_analyst_view(settings: QSettings, path: str, view: dict) -> None:
    """The Analyst panel's evaluation mode and map colouring in workspace ``path`` (``AnalystPanel.view``)."""
    import json

    settings.setValue(_view_key(path), json.dumps(view, default=str))


def analyst_view_to_reopen(settings: QSettings, path: str) -> dict:
    """What :func:`remember_analyst_view` kept for ``path``; {} when nothing (or something unreadable) was kept."""
    import json

    try:
        view = json.loads(str(settings.value(_view_key(path)) or ""))
    except (TypeError, ValueError):
        return {}
    return view if isinstance(view, dict) else {}
