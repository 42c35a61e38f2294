"""Fake jobs for GUI tests: plain functions taking a JobContext, like the core's jobs."""

from __future__ import annotations

import time

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
