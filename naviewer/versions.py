"""Versions of naviewer and of the heavy libraries, and the compute device, for --version and About."""

from __future__ import annotations

import platform

from naviewer import __version__


def _module_version(name: str) -> str:
    try:
        module = __import__(name)
    except Exception as exc:  # noqa: BLE001 - a broken install is worth reporting, not raising
        return f"not available ({type(exc).__name__})"
    return str(getattr(module, "__version__", "unknown"))


def qt_version() -> str:
    """The Qt binding's version, read from package metadata: the core never imports Qt itself."""
    from importlib import metadata

    for distribution in ("PySide6-Essentials", "PySide6"):
        try:
            return f"PySide6 {metadata.version(distribution)}"
        except metadata.PackageNotFoundError:
            continue
    return "not available"


def device_description() -> str:
    """The device training would use by default (CUDA, then Apple MPS, then CPU)."""
    try:
        import torch
    except Exception:  # noqa: BLE001
        return "cpu (torch not available)"
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads)"


def version_report() -> str:
    lines = [
        f"naviewer {__version__}",
        f"python {platform.python_version()}",
        f"torch {_module_version('torch')}",
        f"torchvision {_module_version('torchvision')}",
        f"qt {qt_version()}",
        f"device {device_description()}",
    ]
    return "\n".join(lines)
