"""Work around PySide6 6.12's lost references to None/True/False on Python < 3.12.

PySide6-Essentials 6.12.0 returns ``None`` from void methods (``processEvents``, ``setVisible``,
``QThread.run`` overrides...) without taking a new reference, as if ``None`` were immortal (it
is only from Python 3.12 on). On Python 3.11 every such call lowers ``None``'s reference count by
one, and after a few thousand calls the interpreter aborts with "Fatal Python error: none_dealloc".
PySide6 6.11 does not have the bug. We detect it with a cheap probe and, if present, give the
three singletons a reference count so large that no session can exhaust it (they are static
objects that are never freed, so the extra count costs nothing).
"""

from __future__ import annotations

import ctypes
import sys

_BUMP = 1 << 40
applied = False


def _loses_none_references() -> bool:
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(64):
        probe.setObjectName("probe")
    return sys.getrefcount(None) <= before - 32


def apply() -> bool:
    """Check for the bug once; compensate if it is there. Returns True when compensation applied."""
    global applied
    if applied or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return applied
    if not _loses_none_references():
        return False
    for singleton in (None, True, False):
        before = sys.getrefcount(singleton)
        cell = ctypes.c_ssize_t.from_address(id(singleton))  # ob_refcnt: first field of PyObject
        cell.value += _BUMP
        if sys.getrefcount(singleton) != before + _BUMP:  # unexpected object layout: undo, give up
            cell.value -= _BUMP
            return False
    applied = True
    return True
