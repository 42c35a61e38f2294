"""The training engine is preloaded once, in a daemon thread, when the window first shows (issue 17)."""

from __future__ import annotations

import sys

from naviewer.gui import environment


def test_the_preload_imports_the_engine_once_in_a_daemon_thread() -> None:
    first = environment.start_engine_preload()
    assert first.daemon and first.name == "naviewer-torch-preload"
    first.join(300)
    assert not first.is_alive()
    assert "naviewer.ssl.trainer" in sys.modules and "torch" in sys.modules
    assert "error" not in environment.preload_report
    assert environment.start_engine_preload() is first  # once per process
    environment.preload_training_engine()  # already loaded: returns at once, imports nothing twice


def test_the_libraries_are_mapped_before_the_import(monkeypatch) -> None:
    loaded: list[str] = []

    class FakeCDLL:
        def __init__(self, path: str, mode: int = 0) -> None:
            loaded.append(path.rsplit("/", 1)[-1])

    import ctypes

    monkeypatch.setattr(ctypes, "CDLL", FakeCDLL)
    environment._dlopen_torch_libraries()
    present = [name for name in environment._TORCH_LIBRARIES if name in loaded]
    assert present and present == loaded  # in dependency order, only those the build ships
    assert loaded[0] == "libc10.so"
