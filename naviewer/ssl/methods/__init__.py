"""The SSL methods by name: ``build_method("simclr", backbone=..., **settings)``."""

from __future__ import annotations

from typing import Any, Mapping

from naviewer.errors import NaviewerError
from naviewer.ssl.backbones import BackboneConfig
from naviewer.ssl.methods.base import SSLMethod
from naviewer.ssl.methods.byol import BYOL, BYOLSettings
from naviewer.ssl.methods.mocov2 import MoCoV2, MoCoV2Settings
from naviewer.ssl.methods.simclr import SimCLR, SimCLRSettings, nt_xent
from naviewer.ssl.methods.simsiam import SimSiam, SimSiamSettings

METHODS: dict[str, type[SSLMethod]] = {cls.name: cls for cls in (SimCLR, MoCoV2, BYOL, SimSiam)}
_ALIASES = {"moco": "mocov2", "moco_v2": "mocov2", "moco-v2": "mocov2"}


def method_class(name: str) -> type[SSLMethod]:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in METHODS:
        raise NaviewerError(f"unknown SSL method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[key]


def build_method(
    name: str, backbone: "BackboneConfig | Mapping[str, Any] | str | None" = None, **settings: Any
) -> SSLMethod:
    """A fresh method with its backbone; ``settings`` are the method's Settings fields."""
    cls = method_class(name)
    try:
        return cls(backbone, settings or None)
    except MemoryError as exc:
        raise NaviewerError(f"{cls.name} settings {_said(settings)}: the model does not fit in this machine's memory "
                            f"({exc or 'an allocation failed'}); lower the sizes") from None
    except (TypeError, ValueError, RuntimeError) as exc:  # RuntimeError: torch refusing a negative dimension
        if "allocate" in str(exc) and "memory" in str(exc):  # torch's own allocator words, raw (a bad-input probe,
            raise NaviewerError(f"{cls.name} settings {_said(settings)}: the model does not fit in this machine's "
                                "memory; lower the sizes") from None  # session 27)
        raise NaviewerError(f"bad {cls.name} settings: {exc}") from exc


def _said(settings: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items()) or "(the defaults)"


__all__ = [
    "METHODS", "SSLMethod", "build_method", "method_class", "nt_xent",
    "SimCLR", "SimCLRSettings", "MoCoV2", "MoCoV2Settings", "BYOL", "BYOLSettings", "SimSiam", "SimSiamSettings",
]
