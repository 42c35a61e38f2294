"""Ctrl-C as a cancel request: the first SIGINT asks a running job to stop cleanly, the second quits.

A job that checks ``ctx.check()`` between steps (training, embedding) then stops at a step boundary
and runs its own clean-up (the trainer writes ``last.pt``) before ``JobCancelled`` reaches the CLI,
which exits with status 130. Without this, Python raises ``KeyboardInterrupt`` wherever the
signal lands (in the middle of an optimiser step), and the job has no consistent state to save.

Only the main thread can install a signal handler, and a handler someone else installed (or a
SIGINT ignored by the shell, as for background jobs) is left alone.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Callable, Iterator, Optional

from naviewer.jobs import JobContext


@contextlib.contextmanager
def cancel_on_sigint(ctx: JobContext, notice: Optional[Callable[[], None]] = None) -> Iterator[bool]:
    """Within the block, the first Ctrl-C calls ``ctx.cancel()`` (and ``notice()``); the second raises
    KeyboardInterrupt at once. Yields whether the handler is installed."""
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield False
        return

    def handler(signum: int, frame: object) -> None:
        if ctx.cancelled:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        ctx.cancel()
        if notice is not None:
            notice()

    signal.signal(signal.SIGINT, handler)
    try:
        yield True
    finally:
        signal.signal(signal.SIGINT, previous)


def print_stopping_notice(what: str = "saving a checkpoint") -> Callable[[], None]:
    """A ``notice`` for :func:`cancel_on_sigint` that tells the terminal what happens next."""

    def notice() -> None:
        print(f"\nnaviewer: stopping after this step and {what} (Ctrl-C again to quit at once)",
              file=sys.stderr, flush=True)

    return notice
