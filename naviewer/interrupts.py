"""Ctrl-C (and SIGTERM) as a cancel request: the first asks a running job to stop cleanly, the second quits.

A job that checks ``ctx.check()`` between steps (training, embedding) then stops at a step boundary
and runs its own clean-up (the trainer writes ``last.pt``) before ``JobCancelled`` reaches the CLI,
which exits with status 130. Without this, Python raises ``KeyboardInterrupt`` wherever the
signal lands (in the middle of an optimiser step), and the job has no consistent state to save.

Only the main thread can install a signal handler, and a handler someone else installed (or a
SIGINT ignored by the shell, as for background jobs) is left alone.

SIGTERM (a batch scheduler, ``timeout``, ``kill``) killed the process where it stood: a half-written ``craft`` output
that neither a re-run nor ``--overwrite`` took, a hidden staging folder of ``new`` left for ever (a bad-input probe,
session 27). The command line now raises :class:`Terminated` on it (a KeyboardInterrupt, so every clean-up that
Ctrl-C runs runs), and inside :func:`cancel_on_sigint` the first one cancels the job as the first Ctrl-C does.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Callable, Iterator, Optional

from naviewer.jobs import JobContext


class Terminated(KeyboardInterrupt):
    """SIGTERM reached the command line: it ends as a Ctrl-C does (clean-ups run), with status 143."""


_TERMINATED = False  # a SIGTERM arrived (the status said at the end is 143, whichever way the command stopped)


_SAVED: dict[str, str] = {}  # what this command saved for good before a signal stopped it (said with the stop)


def note_saved(what: str, key: str = "") -> None:
    """Record that ``what`` is saved for good: a Ctrl-C or SIGTERM after it then says so, not just "cancelled"
    (a review whose decisions were written left the user guessing, a probe, session 28). A note with the ``key`` of an
    earlier one replaces it (a count that grows: the shards of an extraction done so far)."""
    _SAVED[key or f"#{len(_SAVED)}"] = what
    if key:  # the latest word last
        _SAVED[key] = _SAVED.pop(key)


def saved_notes() -> list[str]:
    """What :func:`note_saved` recorded, in order."""
    return list(_SAVED.values())


def clear_saved_notes() -> None:
    _SAVED.clear()


def terminated() -> bool:
    """Whether this process received SIGTERM through naviewer's handlers."""
    return _TERMINATED


def raise_on_sigterm(signum: int, frame: object) -> None:
    global _TERMINATED
    _TERMINATED = True
    raise Terminated


def install_sigterm() -> bool:
    """SIGTERM raises :class:`Terminated` from now on (the command line's main thread, where nobody set another
    handler); whether it was installed."""
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, raise_on_sigterm):
            return False
        signal.signal(signal.SIGTERM, raise_on_sigterm)
    except (ValueError, OSError, AttributeError):  # no SIGTERM to catch here
        return False
    return True


@contextlib.contextmanager
def cancel_on_sigint(ctx: JobContext, notice: Optional[Callable[[], None]] = None) -> Iterator[bool]:
    """Within the block, the first Ctrl-C calls ``ctx.cancel()`` (and ``notice()``); the second raises
    KeyboardInterrupt at once. SIGTERM the same where the command line handles it (:func:`install_sigterm`), the
    second raising :class:`Terminated`. Yields whether the Ctrl-C handler is installed."""
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    previous = signal.getsignal(signal.SIGINT)
    graceful_int = previous is signal.default_int_handler
    # SIGTERM on its own: a training started with `&` from a script has Ctrl-C ignored, and a scheduler's SIGTERM
    # then stopped it mid-step with no checkpoint (a review, session 27)
    previous_term = signal.getsignal(signal.SIGTERM)
    graceful_term = previous_term is raise_on_sigterm

    def handler(signum: int, frame: object) -> None:
        global _TERMINATED
        if signum == signal.SIGTERM:
            _TERMINATED = True
        if ctx.cancelled:
            if graceful_int:
                signal.signal(signal.SIGINT, previous)
            if graceful_term:
                signal.signal(signal.SIGTERM, previous_term)
            raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        ctx.cancel()
        if notice is not None:
            notice()

    if graceful_int:
        signal.signal(signal.SIGINT, handler)
    if graceful_term:
        signal.signal(signal.SIGTERM, handler)
    try:
        yield graceful_int
    finally:
        if graceful_int:
            signal.signal(signal.SIGINT, previous)
        if graceful_term:
            signal.signal(signal.SIGTERM, previous_term)


def print_stopping_notice(what: str = "saving a checkpoint") -> Callable[[], None]:
    """A ``notice`` for :func:`cancel_on_sigint` that tells the terminal what happens next."""

    def notice() -> None:
        print(f"\nnaviewer: stopping after this step and {what} (Ctrl-C again to quit at once)",
              file=sys.stderr, flush=True)

    return notice
