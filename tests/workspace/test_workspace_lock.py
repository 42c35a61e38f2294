"""workspace.toml under concurrent writers: a cross-process lock around every read-modify-write (issue 15, item 2)."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

try:  # Python 3.11+; 3.10 has the tomli backport
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]

import pytest

from naviewer.errors import NaviewerError
from naviewer.workspace import Workspace
from naviewer.workspace.config import LOCK_NAME, config_lock

from workspace_kit import make_dataset

ROUNDS = 20


def _writer(path: str, name: str, barrier, rounds: int) -> None:
    """One process: each round, wait for the other, then update its own section."""
    ws = Workspace.open(path)
    try:
        for round_ in range(rounds):
            barrier.wait(timeout=120)
            ws.update_config(f"{name}_{round_:02d}", {"round": round_, "writer": name})
    finally:
        ws.close()


def test_two_processes_updating_at_once_lose_no_section(tmp_path: Path) -> None:
    """The fault test of issue 15: 20 rounds of two processes writing different sections at the same moment."""
    Workspace.create(tmp_path / "ws", make_dataset(6)).close()
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    workers = [context.Process(target=_writer, args=(str(tmp_path / "ws"), name, barrier, ROUNDS)) for name in "ab"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [worker.exitcode for worker in workers] == [0, 0]
    config = tomllib.loads((tmp_path / "ws" / "workspace.toml").read_text())
    expected = {f"{name}_{r:02d}" for name in "ab" for r in range(ROUNDS)}
    assert expected <= set(config), f"lost sections: {sorted(expected - set(config))}"
    assert config["dataset"]["samples"] == 6 and config["classes"]["names"] == ["cat", "dog", "bird"]


def test_threads_and_two_workspace_objects_lose_no_update(tmp_path: Path) -> None:
    Workspace.create(tmp_path / "ws", make_dataset(6)).close()
    first, second = Workspace.open(tmp_path / "ws"), Workspace.open(tmp_path / "ws")
    try:
        def work(ws: Workspace, name: str) -> None:
            for i in range(15):
                ws.update_config(f"{name}{i}", {"i": i})

        threads = [threading.Thread(target=work, args=(ws, name)) for ws, name in ((first, "x"), (second, "y"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        second.update_config("last", {"ok": True})
        assert {f"{n}{i}" for n in "xy" for i in range(15)} | {"last"} <= set(second.config)
    finally:
        first.close()
        second.close()


def test_lock_is_released_when_its_holder_is_killed(tmp_path: Path) -> None:
    """An fcntl lock dies with its process: a SIGKILLed writer never blocks the next one."""
    Workspace.create(tmp_path / "ws", make_dataset(4)).close()
    config = tmp_path / "ws" / "workspace.toml"
    ready = tmp_path / "ready"
    code = (
        "import time, pathlib\n"
        "from naviewer.workspace.config import config_lock\n"
        f"with config_lock({str(config)!r}):\n"
        f"    pathlib.Path({str(ready)!r}).touch()\n"
        "    time.sleep(300)\n"
    )
    import subprocess
    import sys
    import time

    holder = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        from naviewer.workspace.config import WorkspaceLockWait

        # the wait is said first (a command hung 43 s without a word), then the refusal
        with pytest.warns(WorkspaceLockWait, match="another process is changing this workspace; waiting"):
            with pytest.raises(NaviewerError, match="another process has held the workspace lock"):
                with config_lock(config, timeout_s=0.2):
                    pass
    finally:
        holder.kill()
        holder.wait()
    with Workspace.open(tmp_path / "ws") as ws:
        ws.update_config("after", {"ok": True})
        assert ws.config["after"] == {"ok": True}
    assert (tmp_path / "ws" / LOCK_NAME).exists()
