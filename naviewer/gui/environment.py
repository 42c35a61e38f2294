"""What torch reports (versions, usable devices), probed in a background thread, once.

Importing torch takes seconds, so About and the Train dialog never do it on the GUI thread: they
show "checking…" and fill in the answer when :class:`EnvironmentProbe` reports. The result is
cached for the session.

The first ``import torch`` froze the GUI thread for 0.5-0.9 s even in a worker (its C++ module
initialisation holds the GIL), so :func:`start_engine_preload` imports it when the window first shows,
before any work is on screen, after mapping torch's libraries through ctypes (which lets go of the
GIL while they load). ``naviewer bench responsiveness`` measures both.
"""

from __future__ import annotations

import sys
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


#: torch's own shared libraries, in dependency order: loaded with ctypes before ``import torch`` (see below)
_TORCH_LIBRARIES = ("libc10.so", "libtorch_cpu.so", "libc10_cuda.so", "libtorch_cuda.so", "libtorch.so",
                    "libtorch_python.so")
_preload_thread: Optional[threading.Thread] = None
#: how the last preload went: seconds spent in dlopen and in the imports, or the error that stopped it
preload_report: dict[str, Any] = {}


def _dlopen_torch_libraries() -> float:
    """Map torch's libraries with ctypes, which releases the GIL while ``dlopen`` runs (and their static
    initialisers with it); ``import torch`` then finds them loaded, where the same work would hold the GIL.
    What is left is torch._C's own initialisation (~0.8 s of C++ holding the GIL): on a loaded 2-core
    machine the largest gap of a pure-Python ticker fell from a median 1.22 s to 0.85 s (5 runs each); in
    the Qt harness (``bench responsiveness --import``) the difference was within its noise."""
    import ctypes
    import importlib.util
    import os
    import time

    start = time.perf_counter()
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return 0.0
    folder = os.path.join(os.path.dirname(spec.origin), "lib")
    for name in _TORCH_LIBRARIES:
        path = os.path.join(folder, name)
        if os.path.exists(path):
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            except OSError:  # a library this build cannot load here (a CUDA one without its runtime): import torch decides
                break
    return time.perf_counter() - start


def preload_training_engine() -> None:
    """Import torch and the trainer now (ctypes-mapped libraries first), in the calling thread."""
    import time

    with TORCH_IMPORT_LOCK:
        if "naviewer.ssl.trainer" in sys.modules:
            return
        try:
            dlopen_s = _dlopen_torch_libraries() if "torch" not in sys.modules else 0.0
            start = time.perf_counter()
            import naviewer.ssl.trainer  # noqa: F401 - the whole engine
            preload_report.update(dlopen_s=dlopen_s, import_s=time.perf_counter() - start)
        except Exception as exc:  # noqa: BLE001 - no usable torch: the job that needs it says so
            preload_report.update(error=f"{type(exc).__name__}: {exc}")


def start_engine_preload() -> threading.Thread:
    """Preload the training engine in a daemon thread, once per process (the window calls this when it
    first shows, before it shows any work, so the first job does not stall the GUI on ``import torch``)."""
    global _preload_thread
    if _preload_thread is None:
        _preload_thread = threading.Thread(target=preload_training_engine, name="naviewer-torch-preload", daemon=True)
        _preload_thread.start()
    return _preload_thread


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
        try:
            self._probed.emit()
        except RuntimeError:  # the window (and this probe) went while torch was imported: the cache still serves
            pass              # the next one ("Signal source has been deleted" at exit: a GUI sweep, session 25)

    def _finished(self) -> None:
        if _cache is not None:
            self.ready.emit(dict(_cache))

    def wait(self, timeout_s: float = 60.0) -> bool:
        if self._thread is not None:
            self._thread.join(timeout_s)
        return self._thread is None or not self._thread.is_alive()
