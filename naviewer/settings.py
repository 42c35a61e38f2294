"""One strict loader for the settings dataclasses (``TrainConfig``, ``DiftConfig``, ``AugmentSettings``, ...).

Settings arrive as plain dictionaries: ``workspace.toml`` sections, ``--set``/``--dift-set`` on the
command line, the Train dialog, the ``config`` table of a checkpoint. :func:`settings_from_dict`
builds the dataclass from one and refuses keys it does not know with a :class:`NaviewerError` that
names them, so a typo (``ft_lr_facter``) is an error, not a setting silently left at its default.

Keys that an older naviewer wrote and this one no longer has are listed per class in ``legacy``
(old name -> new name, or None to drop it) so that old checkpoints and workspaces keep loading;
each class documents its list where it calls the loader.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Optional, TypeVar

from naviewer.errors import NaviewerError

T = TypeVar("T")


def setting_names(cls: type) -> set[str]:
    """The keys a settings dataclass accepts (its ``__init__`` fields)."""
    return {f.name for f in dataclasses.fields(cls) if f.init}


def settings_from_dict(cls: type[T], values: Optional[Mapping[str, Any]], what: str,
                       legacy: Optional[Mapping[str, Optional[str]]] = None) -> T:
    """``cls(**values)``, strictly: unknown keys raise a NaviewerError naming them.

    ``what`` names the settings in the message ("DIFT", "training"). ``legacy`` maps keys an older
    version stored to their current name (the current key wins when both are present) or to None
    (accepted and ignored)."""
    values = dict(values or {})
    for old, new in (legacy or {}).items():
        if old in values:
            value = values.pop(old)
            if new is not None:
                values.setdefault(new, value)
    known = setting_names(cls)
    unknown = sorted(set(values) - known)
    if unknown:
        import difflib

        # the nearest names, not every known one (a 1,500-character list buried the mistake)
        near = sorted({m for name in unknown for m in difflib.get_close_matches(name, known, n=3, cutoff=0.6)})
        if len(known) <= 12:
            hint = f"; known: {', '.join(sorted(known))}"
        else:
            hint = f"; did you mean {', '.join(near)}?" if near else f" (none of the {len(known)} known settings is close)"
        raise NaviewerError(f"unknown {what} setting(s): {', '.join(unknown)}{hint}")
    hints = _field_types(cls)
    for key in list(values):
        values[key] = _checked(values[key], hints.get(key), key, what)
    return cls(**values)


_SCALARS = {"int": int, "float": float, "bool": bool, "str": str}


def _field_types(cls: type) -> dict[str, tuple[Optional[type], bool]]:
    """field -> (scalar type or None for anything richer, None allowed), read from the annotation text
    (the settings modules use ``from __future__ import annotations``, so annotations are strings)."""
    out: dict[str, tuple[Optional[type], bool]] = {}
    for f in dataclasses.fields(cls):
        text = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        text = text.replace(" ", "")
        optional = False
        for wrapper in ("Optional[", "typing.Optional["):
            if text.startswith(wrapper) and text.endswith("]"):
                text, optional = text[len(wrapper):-1], True
        if text.endswith("|None"):
            text, optional = text[:-5], True
        out[f.name] = (_SCALARS.get(text), optional)
    return out


def _checked(value: Any, hint: Optional[tuple[Optional[type], bool]], key: str, what: str) -> Any:
    """The value if it fits a scalar field's type (an integral float for an int field becomes that int);
    else a NaviewerError naming the setting, instead of a ValueError deep inside a run."""
    kind, optional = hint or (None, True)
    if kind is None or (value is None and optional):
        return value
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):  # a NaN rate or inf size only fails deep inside a run
            raise NaviewerError(f"{what} setting {key}={value!r}: expected a finite number")
        return float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if ok:
        return value
    expected = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}[kind]
    raise NaviewerError(f"{what} setting {key}={value!r}: expected {expected}"
                        + (" (or unset)" if optional else ""))
