"""``naviewer bench startup``: time from process start to the main window on screen.

Spawns ``python -m naviewer`` (no command: the desktop app) with ``NAVIEWER_STARTUP_PROBE=1``,
which makes the app print a timestamp when its window is first exposed and quit. The floor is
``python -c "import PySide6.QtWidgets"`` (an interpreter that loads Qt and does nothing else),
timed in the same run, interleaved with the app so that load swings hit both alike. For context it
also times ``python -c "import torch"``: what the window would wait for if it imported torch.
Settings go to a temporary folder; without a display, Qt's offscreen platform is used.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Optional

PROBE_TAG = "NAVIEWER_WINDOW_EXPOSED"  # printed by naviewer.gui.app (kept in sync by a test)


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser("startup", help="main window on screen vs bare 'import PySide6.QtWidgets'", description=__doc__)
    parser.add_argument("--repeat", type=int, default=7, help="runs of each (median reported; default 7)")
    parser.add_argument("--no-torch", action="store_true", help="skip the 'import torch' reference")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a run counts as failed")
    parser.set_defaults(func=run)
    return parser


def _env(settings_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    env["NAVIEWER_STARTUP_PROBE"] = "1"
    env["NAVIEWER_SETTINGS_DIR"] = settings_dir
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    return env


def time_command(argv: list[str], env: dict[str, str], timeout: float) -> float:
    """Wall seconds from spawning ``argv`` to its exit."""
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout, check=True)
    return time.perf_counter() - start


def time_window(env: dict[str, str], timeout: float) -> tuple[float, bool]:
    """Seconds from spawning the app to its window being exposed, and whether torch was loaded then."""
    start = time.time()
    out = subprocess.run(
        [sys.executable, "-m", "naviewer"], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    for line in out.stdout.splitlines():
        if line.startswith(PROBE_TAG):
            _, stamp, torch_flag = line.split()
            return float(stamp) - start, torch_flag.endswith("1")
    raise RuntimeError(f"the app did not report its window (exit {out.returncode}):\n{out.stderr[-2000:]}")


def measure(repeat: int, with_torch: bool = True, timeout: float = 60.0) -> dict[str, object]:
    """Median/min/max seconds of floor, app (and torch import), interleaved round by round."""
    with tempfile.TemporaryDirectory(prefix="naviewer-bench-startup-") as settings_dir:
        env = _env(settings_dir)
        floor_argv = [sys.executable, "-c", "import PySide6.QtWidgets"]
        torch_argv = [sys.executable, "-c", "import torch"]
        time_window(env, timeout)  # warm-up: byte-compile caches, file system cache
        time_command(floor_argv, env, timeout)
        floors, windows, torches, torch_loaded = [], [], [], []
        for _ in range(max(1, repeat)):
            floors.append(time_command(floor_argv, env, timeout))
            seconds, loaded = time_window(env, timeout)
            windows.append(seconds)
            torch_loaded.append(loaded)
            if with_torch:
                torches.append(time_command(torch_argv, env, timeout))
    result: dict[str, object] = {
        "floor_s": statistics.median(floors),
        "window_s": statistics.median(windows),
        "floor_all": floors,
        "window_all": windows,
        "torch_loaded_at_window": any(torch_loaded),
        "platform": env.get("QT_QPA_PLATFORM", "native"),
    }
    if torches:
        result["torch_import_s"] = statistics.median(torches)
        result["torch_all"] = torches
    return result


def format_result(result: dict[str, object]) -> str:
    floor = float(result["floor_s"])  # type: ignore[arg-type]
    rows = [
        ("baseline: python -c 'import PySide6.QtWidgets'", result["floor_s"], result["floor_all"]),
        ("naviewer: process start -> main window exposed", result["window_s"], result["window_all"]),
    ]
    if "torch_import_s" in result:
        rows.append(("reference: python -c 'import torch'", result["torch_import_s"], result["torch_all"]))
    lines = [f"{'measurement':50s} {'median':>9s} {'min':>8s} {'max':>8s} {'vs baseline':>12s}"]
    for name, median, values in rows:
        values = list(values)  # type: ignore[arg-type]
        lines.append(
            f"{name:50s} {float(median):8.3f}s {min(values):7.3f}s {max(values):7.3f}s {float(median) / floor:11.2f}x"
        )
    lines.append(f"torch imported when the window appeared: {'YES (regression!)' if result['torch_loaded_at_window'] else 'no'}")
    lines.append(f"Qt platform: {result['platform']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    result = measure(args.repeat, with_torch=not args.no_torch, timeout=args.timeout)
    print(format_result(result))
    return 1 if result["torch_loaded_at_window"] else 0


def main(argv: Optional[list[str]] = None) -> int:  # pragma: no cover - convenience
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    register(sub)
    args = parser.parse_args(["startup", *(argv or [])])
    return args.func(args)
