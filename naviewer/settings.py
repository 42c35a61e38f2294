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
        raise NaviewerError(f"unknown {what} setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return cls(**values)
