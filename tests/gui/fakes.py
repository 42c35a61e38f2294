"""Fake jobs and small fixtures for GUI tests: plain functions taking a JobContext, like the core's
jobs, a tiny class-folder dataset, and waiting for a job to finish."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

def counting_job(steps: int = 20, delay_s: float = 0.01, metric_every: int = 1):
    """A fake job: reports progress and a loss metric every step, honours cancel/pause."""

    def job(ctx):
        for step in range(steps):
            ctx.check()
            time.sleep(delay_s)
            ctx.progress(step + 1, steps, "counting")
            if step % metric_every == 0:
                ctx.metric(kind="step", epoch=0, step=step, loss=1.0 / (step + 1), lr=0.1, images_per_s=100.0)
        return steps

    return job


def endless_job(ctx):
    """Runs until cancelled, checking often (as a training loop checks every batch)."""
    step = 0
    while True:
        ctx.check()
        time.sleep(0.005)
        step += 1
        ctx.progress(step % 100, 100, "spinning")


def image_folder(root: Path, per_class: int = 8, size: int = 32, seed: int = 0) -> Path:
    """Two class folders of noise tinted by class (red, green): a dataset any source reads."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in range(2):
        folder = root / f"class{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 120, (size, size, 3), dtype=np.uint8)
            pixels[..., c] += 120
            Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def finish(qtbot, job, timeout: int = 60000):
    """Wait for ``job`` and check it finished (its error details otherwise)."""
    from naviewer.gui.jobs import JobState

    assert job is not None
    qtbot.waitSignal(job.finished, timeout=timeout).wait()
    assert job.state is JobState.FINISHED, job.error_details
    return job
