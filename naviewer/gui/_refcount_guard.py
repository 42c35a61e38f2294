"""Soften PySide6 6.12's lost references to None/True/False on Python < 3.12 (and say so).

PySide6-Essentials 6.12.0 returns ``None`` from void methods (``processEvents``, ``setVisible``,
``QPainter`` calls...) without taking a new reference, as if ``None`` were immortal (it is only
from Python 3.12 on). On Python 3.11 a window repainting plots loses hundreds of thousands of
references a second and the interpreter aborts with "Fatal Python error: none_dealloc".

Measured here: keeping the counts topped up (below) removes the steady drain, but 6.12.0 still
aborted in 2 of 3 25-second repaint stress runs with None's count near 2**30, so some path frees
None outright. The real fix is the dependency pin in pyproject.toml (``PySide6-Essentials<6.12``
on Python < 3.12; 6.11.3 ran the same stress with a flat count). When the bug is detected we warn
on stderr and still top the counts up, which makes crashes rarer. This is the only guard:
``naviewer.gui`` applies it on import, so every view (the analyst's too) is covered.
"""

from __future__ import annotations

import ctypes
import sys
import threading
import time

_TARGET = 1 << 30  # where a topped-up count sits
_FLOOR = 1 << 29  # top up when a count falls below this
_PERIOD_S = 1.0
applied = False
_thread: "threading.Thread | None" = None


def bug_present() -> bool:
    """True when a void PySide6 call visibly lowers None's reference count (never on 3.12+, where None is immortal)."""
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(64):
        probe.setObjectName("probe")
    return sys.getrefcount(None) <= before - 32


def _cells() -> list[ctypes.c_ssize_t]:
    return [ctypes.c_ssize_t.from_address(id(obj)) for obj in (None, True, False)]  # ob_refcnt: first field


def top_up() -> None:
    """Raise any singleton count that fell below the floor back to the target (GIL held: atomic enough)."""
    for cell in _cells():
        value = cell.value
        if value < _FLOOR:
            cell.value = value + (_TARGET - _FLOOR)


def _keep_topped_up() -> None:
    while True:
        time.sleep(_PERIOD_S)
        top_up()


def apply() -> bool:
    """Check for the bug once; compensate if it is there. Returns True when compensation applied."""
    global applied, _thread
    if applied or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return applied
    if not bug_present():
        return False
    print(
        "naviewer: this PySide6 build loses references to None on Python < 3.12 and may abort; "
        "install PySide6-Essentials<6.12 (pip install 'PySide6-Essentials<6.12').",
        file=sys.stderr,
    )
    before = sys.getrefcount(None)
    cell = _cells()[0]
    cell.value += _TARGET
    if sys.getrefcount(None) != before + _TARGET:  # unexpected object layout: undo, give up
        cell.value -= _TARGET
        return False
    for other in _cells()[1:]:
        other.value += _TARGET
    applied = True
    _thread = threading.Thread(target=_keep_topped_up, name="naviewer-refcount-guard", daemon=True)
    _thread.start()
    return True
