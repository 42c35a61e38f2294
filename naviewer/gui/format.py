"""Small text formatting helpers shared by panels (durations, job progress)."""

from __future__ import annotations

from typing import Optional


def encoder_text(encoder: dict) -> str:
    """``resnet10 width 16, 16 px`` from a pass's ``settings["encoder"]`` record."""
    arch = f"{encoder.get('arch')}" + (f" width {encoder['width']}" if encoder.get("width") else "")
    return arch + (f", {encoder['image_size']} px" if encoder.get("image_size") else "")


def duration(seconds: Optional[float]) -> str:
    """``"1:05"``, ``"1h02m"``; empty for None (unknown)."""
    if seconds is None:
        return ""
    seconds = int(round(max(seconds, 0.0)))
    if seconds >= 3600:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 60}:{seconds % 60:02d}"


def remaining(seconds: Optional[float]) -> str:
    return f"{duration(seconds)} left" if seconds is not None else ""
