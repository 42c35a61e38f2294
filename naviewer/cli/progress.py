"""A text progress bar on stderr: how the CLI renders the job protocol."""

from __future__ import annotations

import sys
import time
from typing import Any, Optional, TextIO


def count(n: int, noun: str) -> str:
    """``count(1, "epoch")`` -> "1 epoch", ``count(3, "epoch")`` -> "3 epochs" (regular nouns only)."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def epoch_text(epoch: Any, total: Any = None) -> str:
    """"epoch N of M" for people from a 0-based ``epoch`` (as metrics.jsonl stores it)."""
    text = f"epoch {int(epoch) + 1}"
    return text + (f" of {int(total)}" if total else "")


def _fmt_seconds(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    if seconds >= 3600:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 60}:{seconds % 60:02d}"


class TextProgress:
    """Reporter that draws one updating line (throttled to ~10 Hz) and prints events and metrics.

    ``show_metrics`` prints each metric dict that carries an ``epoch`` key as a line of its own,
    so that a long training run leaves a readable log behind.
    """

    def __init__(self, stream: Optional[TextIO] = None, show_metrics: bool = True, width: int = 30) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.show_metrics = show_metrics
        self.width = width
        self._last_draw = 0.0
        self._start = time.monotonic()
        self._line_open = False
        self._task = ""

    def _clear(self) -> None:
        if self._line_open:
            self.stream.write("\r\033[K" if self.stream.isatty() else "\n")
            self._line_open = False

    def progress(self, done: float, total: Optional[float], message: str) -> None:
        now = time.monotonic()
        if message != self._task:
            self._task = message
            self._start = now
        finished = total is not None and done >= total
        if now - self._last_draw < 0.1 and not finished:
            return
        self._last_draw = now
        if total:
            frac = min(max(done / total, 0.0), 1.0)
            filled = int(frac * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            elapsed = now - self._start
            eta = elapsed / frac - elapsed if frac > 0 else 0.0
            text = f"{message} [{bar}] {done:g}/{total:g} {frac * 100:5.1f}% eta {_fmt_seconds(eta)}"
        else:
            text = f"{message} {done:g}"
        if self.stream.isatty():
            self.stream.write("\r\033[K" + text)
            self._line_open = True
            if finished:
                self.stream.write("\n")
                self._line_open = False
        elif finished:
            self.stream.write(text + "\n")
        self.stream.flush()

    def metric(self, values: dict[str, Any]) -> None:
        if not self.show_metrics or "epoch" not in values:
            return
        self.metric_line("", values)

    def metric_line(self, head: str, values: dict[str, Any], tail: str = "") -> None:
        """One line of its own: ``head`` (e.g. "epoch 3 of 50:") then ``key=value`` pairs, then ``tail`` in words."""
        if not self.show_metrics:
            return
        self._clear()
        parts = [head] if head else []
        for key, value in values.items():
            if isinstance(value, float):
                parts.append(f"{key}={value:.4g}")
            else:
                parts.append(f"{key}={value}")
        if tail:
            if len(parts) > 1:
                parts[-1] += ";"
            parts.append(tail)
        self.stream.write("  " + " ".join(parts) + "\n")
        self.stream.flush()

    def event(self, kind: str, data: dict[str, Any]) -> None:
        if kind in ("log", "warning"):
            self._clear()
            prefix = "warning: " if kind == "warning" else ""
            self.stream.write(f"{prefix}{data.get('message', data)}\n")
            self.stream.flush()
