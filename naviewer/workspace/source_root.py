"""Which folder a dataset's source keys are relative to (export and registration both need it).

Its own module so that ``workspace.workspace`` (registration) and ``workspace.export`` (kept.txt)
share it without importing each other.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Optional

_FILE_LIST_KINDS = ("filelist", "csv-manifest")


def source_root(description: Any) -> Optional[Path]:
    """Folder the source keys of a dataset description are relative to, or None (no files)."""
    if not isinstance(description, Mapping):
        return None
    kind = description.get("kind")
    if kind == "image-folder" and description.get("root"):
        return Path(os.path.abspath(str(description["root"])))
    if kind in _FILE_LIST_KINDS and (description.get("root") or description.get("path")):
        # FileListDataset: keys are relative to `root`, by default the (resolved) list file's folder
        if description.get("root"):
            return Path(os.path.abspath(str(description["root"])))
        return Path(str(description["path"])).resolve().parent
    if kind == "subset":  # keys are the base dataset's keys
        return source_root(description.get("base"))
    return None
