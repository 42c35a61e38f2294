"""Work around a PySide6 binding bug: void Qt calls drop a reference to None on CPython < 3.12.

PySide6 6.12.0 (measured here with CPython 3.11.7) returns ``None`` from every void-returning
method without taking a reference (``sys.getrefcount(None)`` falls by one per call; bool singletons
leak the same way through some overrides). On 3.12+ these singletons are immortal so nothing
happens; on 3.11 a GUI that repaints a thumbnail grid for a few seconds drives the count to zero and
the interpreter aborts ("none_dealloc"/"bool_dealloc"). The guard probes for the bug once and, only
if present, adds 2**40 to the reference counts of None, True and False (what 3.12 does by making them
immortal): no memory, no timer, decades of headroom. Remove once PySide6 is fixed or 3.11 is dropped.
"""

from __future__ import annotations

import ctypes
import sys

_HEADROOM = 1 << 40
_installed = False


def bug_present() -> bool:
    """True when a void PySide6 call visibly lowers None's reference count."""
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(200):
        probe.setObjectName("probe")
    return sys.getrefcount(None) < before - 100


def install() -> bool:
    """Protect None/True/False if the bug is present; returns whether the guard is active."""
    global _installed
    if _installed:
        return True
    shared = sys.modules.get("naviewer.gui._refcount_guard")  # the main window's identical guard, if it ran
    if shared is not None and getattr(shared, "applied", False):
        return True
    if not bug_present():
        return False
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += _HEADROOM
    _installed = True
    return True
