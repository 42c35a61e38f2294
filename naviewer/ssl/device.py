"""Pick the compute device: "auto" prefers CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import torch

from naviewer.errors import NaviewerError


def resolve_device(name: "str | torch.device | None" = "auto") -> torch.device:
    """A ``torch.device`` for "auto" | "cpu" | "cuda[:i]" | "mps"; unavailable choices are an error."""
    if isinstance(name, torch.device):
        return name
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise NaviewerError(f"unknown device {name!r} (use auto, cpu, cuda, cuda:N or mps)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NaviewerError(f"device {name!r} requested but no CUDA GPU is available (try --device auto or cpu)")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise NaviewerError("device 'mps' requested but Apple MPS is not available (try --device auto or cpu)")
    return device
