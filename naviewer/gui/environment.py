"""What torch reports (versions, usable devices), probed in a background thread, once.

Importing torch takes seconds, so About and the Train dialog never do it on the GUI thread: they
show "checking…" and fill in the answer when :class:`EnvironmentProbe` reports. The result is
cached for the session.
"""

from __future__ import annotations

import threading
from typing import Any, Optional

from PySide6.QtCore import QObject, Signal

_cache: Optional[dict[str, Any]] = None
#: one thread at a time imports torch / torchvision / the training engine: the probe imports torch in its
#: thread while a job (the Train dialog's speed estimate, training) may import it in another, and two
#: threads importing one package at once can see it half initialised ("cannot import name
#: 'StochasticDepth' from partially initialized module 'torchvision.ops'", seen in the Train dialog)
TORCH_IMPORT_LOCK = threading.RLock()


def import_training_engine() -> None:
    """Import torch, torchvision and naviewer's trainer once, never alongside another thread doing so."""
    with TORCH_IMPORT_LOCK:
        import naviewer.ssl.trainer  # noqa: F401 - imported for its side effect: everything loaded


def probe_environment() -> dict[str, Any]:
    """Versions of torch/torchvision, the default device and every device torch can use."""
    from naviewer.versions import _module_version, device_description

    info: dict[str, Any] = {
        "torch": _module_version("torch"),
        "torchvision": _module_version("torchvision"),
        "device": device_description(),
        "devices": ["cpu"],
    }
    try:
        import torch

        if torch.cuda.is_available():
            info["devices"].append("cuda")
            info["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            info["devices"].append("mps")
    except Exception:  # noqa: BLE001 - no torch: cpu only, already said by the versions
        pass
    return info


def cached_environment() -> Optional[dict[str, Any]]:
    return _cache


class EnvironmentProbe(QObject):
    """Starts the probe (at most one at a time) and emits ``ready(info)`` on the GUI thread.

    The probe runs in a daemon Python thread (not a QThread): quitting while torch is still being
    imported must not hold the exit or trip Qt's "thread destroyed while running" abort.
    """

    ready = Signal(dict)
    _probed = Signal()  # emitted from the probe thread; queued to this GUI-thread object

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._thread: Optional[threading.Thread] = None
        self._probed.connect(self._finished)

    def request(self) -> None:
        if _cache is not None:
            self.ready.emit(dict(_cache))
            return
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._run, name="naviewer-environment-probe", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        global _cache
        with TORCH_IMPORT_LOCK:
            _cache = probe_environment()
        self._probed.emit()

    def _finished(self) -> None:
        if _cache is not None:
            self.ready.emit(dict(_cache))

    def wait(self, timeout_s: float = 60.0) -> bool:
        if self._thread is not None:
            self._thread.join(timeout_s)
        return self._thread is None or not self._thread.is_alive()
