"""``workspace.toml``: what a workspace is (dataset, settings, recipes), read with tomllib, written with tomli_w.

The file is small and human-editable; it is always rewritten whole and atomically, so an editor
or a crash never sees half a file.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Union

import numpy as np
import tomli_w

from naviewer.errors import NaviewerError
from naviewer.io import atomic_write_text

PathLike = Union[str, "os.PathLike[str]"]

CONFIG_NAME = "workspace.toml"
#: version of the workspace layout this code writes; opening a newer one is refused
WORKSPACE_SCHEMA = 1


def toml_safe(value: Any) -> Any:
    """Plain TOML-able data: paths -> str, numpy -> Python, tuples -> lists, ``None`` entries dropped.

    TOML has no null, so a key whose value is ``None`` is left out (``update_config`` uses that
    to delete keys). Non-finite floats are allowed by TOML (``nan``, ``inf``) and kept.
    """
    if isinstance(value, dict):
        return {str(k): toml_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        return [toml_safe(v) for v in items if v is not None]
    if isinstance(value, np.ndarray):
        return toml_safe(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def read_config(path: PathLike) -> dict[str, Any]:
    """Parse and check ``workspace.toml``; every problem is a NaviewerError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise NaviewerError("not a naviewer workspace (workspace.toml is missing)", path) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise NaviewerError(f"cannot read the workspace configuration ({exc})", path) from exc
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise NaviewerError(f"garbled workspace configuration ({exc})", path) from exc
    header = config.get("workspace")
    if not isinstance(header, dict) or "schema" not in header:
        raise NaviewerError("not a naviewer workspace configuration (no [workspace] schema)", path)
    schema = header["schema"]
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        raise NaviewerError(f"bad workspace schema {schema!r}", path)
    if schema > WORKSPACE_SCHEMA:
        raise NaviewerError(
            f"workspace schema {schema} is newer than this naviewer supports ({WORKSPACE_SCHEMA}); upgrade naviewer",
            path,
        )
    return config


def write_config(path: PathLike, config: dict[str, Any]) -> None:
    """Atomically rewrite ``workspace.toml``."""
    try:
        text = tomli_w.dumps(toml_safe(config))
    except (TypeError, ValueError) as exc:
        raise NaviewerError(f"setting cannot be stored in TOML ({exc})", path) from exc
    atomic_write_text(path, text)
