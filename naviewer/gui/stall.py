"""How late the GUI thread gets while a real (tiny) SSL training runs in the background.

``python -m naviewer.gui.stall [--seconds S] [--no-monitor]`` opens the main window, starts a tiny
SimCLR training (ResNet-10 width 8, 16 px random images, batch 16, one torch thread, kNN monitor
every epoch) through the window's normal training path, waits until steps arrive, then records the
gaps of a 10 ms QTimer for S seconds and prints one JSON line. ``--no-monitor`` detaches the
monitor (the baseline: same training, no plotting). torch is imported before measuring: its one-off
import is measured separately (``import_gaps``). ``--preload`` first does what the application does when
its window shows (``environment.start_engine_preload``) and records the gaps during it (``preload``);
``--import-only`` stops after the import. Used by ``naviewer bench responsiveness``.

Developer tool: the benchmark's measuring process, not part of the application (docs/developing.md, Developer tools).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


def tiny_training_factory(run_dir: Path):
    """A training-job factory (see MainWindow.training_job_factory) for a tiny generated set."""

    def factory(settings: dict[str, Any], window: Any):
        def job(ctx):
            import numpy as np

            from naviewer.data.store import ImageStore
            from naviewer.ssl.trainer import TrainConfig, build_trainer

            rng = np.random.default_rng(0)
            labels = rng.integers(0, 3, 96)
            images = rng.integers(0, 120, (96, 16, 16, 3))
            images[np.arange(96), :, :, labels] += 120
            store = ImageStore.from_images(list(images.astype(np.uint8)), labels, ["a", "b", "c"])
            config = TrainConfig(
                method=settings["method"], backbone={"arch": "resnet10", "cifar_stem": True, "width": 8},
                epochs=settings["epochs"], batch_size=settings["batch_size"], image_size=16, log_every=1,
                warmup_epochs=0.5, num_threads=1, knn_every=1, checkpoint_every=1000,
            )
            return build_trainer(config, store, run_dir, eval_store=store).fit(ctx)

        return job, run_dir

    return factory


def _gaps_ms(ticks: list[float]) -> dict[str, float]:
    import numpy as np

    gaps = np.diff(np.asarray(ticks)) * 1000.0
    if gaps.size == 0:
        return {"max_ms": float("nan"), "p99_ms": float("nan"), "over_100ms": 0}
    return {"max_ms": float(gaps.max()), "p99_ms": float(np.percentile(gaps, 99)), "over_100ms": int((gaps > 100).sum())}


def measure(seconds: float = 3.0, monitor: bool = True, preload_engine: bool = False,
            import_only: bool = False) -> dict[str, Any]:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from naviewer.gui.main_window import MainWindow

    def pump(until) -> None:
        while not until():
            app.processEvents()
            time.sleep(0.002)

    window = MainWindow()
    window.show()
    pump(lambda: window.monitor is not None)

    # The one-off torch import in a worker thread, with the timer running.
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    done: list[float] = []
    preload: dict[str, Any] = {}
    if preload_engine:  # what run_app does when the window first shows: the import happens here, before any work
        from naviewer.gui.environment import preload_report, start_engine_preload

        start = time.perf_counter()
        thread = start_engine_preload()
        pump(lambda: not thread.is_alive())
        preload = {"seconds": time.perf_counter() - start, **preload_report, "gaps": _gaps_ms(ticks)}
        ticks.clear()

    def importer() -> None:
        start = time.perf_counter()
        import naviewer.ssl.trainer  # noqa: F401 - pulls in torch

        done.append(time.perf_counter() - start)

    started = time.perf_counter()
    threading.Thread(target=importer, daemon=True).start()
    pump(lambda: bool(done) and time.perf_counter() - started > 0.25)  # a few ticks even when it was loaded
    import_gaps = _gaps_ms(ticks)
    if import_only:
        timer.stop()
        window.close()
        return {"preload": preload, "torch_import_s": done[0], "torch_import_gaps": import_gaps}

    window.training_job_factory = tiny_training_factory(Path(tempfile.mkdtemp(prefix="naviewer-stall-")) / "run")
    job = window.start_training({"method": "simclr", "epochs": 1000, "batch_size": 16, "lr": None, "device": "cpu"})
    pump(lambda: len(window.monitor.data.get(("loss", "step"), ([], []))[0]) >= 3 or not job.running)
    if not monitor:
        window.monitor.detach()
    steps: list[int] = []
    job.metrics.connect(lambda records: steps.extend(1 for r in records if r.get("kind") == "step"))
    ticks.clear()
    end = time.perf_counter() + seconds
    pump(lambda: time.perf_counter() >= end)
    timer.stop()
    job.cancel()
    window.jobs.wait_all(30)
    window.close()
    return {"monitor": monitor, "seconds": seconds, "steps": len(steps), **_gaps_ms(ticks),
            "torch_import_s": done[0], "torch_import_gaps": import_gaps}


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--no-monitor", action="store_true")
    parser.add_argument("--preload", action="store_true",
                        help="preload the training engine when the window shows (what the app does), then import")
    parser.add_argument("--import-only", action="store_true", help="measure the torch import only, no training")
    args = parser.parse_args(argv)
    os.environ.setdefault("NAVIEWER_SETTINGS_DIR", tempfile.mkdtemp(prefix="naviewer-stall-settings-"))
    print(json.dumps(measure(args.seconds, monitor=not args.no_monitor, preload_engine=args.preload,
                             import_only=args.import_only)), flush=True)
    os._exit(0)  # skip interpreter teardown (torch/triton extension noise at exit)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
