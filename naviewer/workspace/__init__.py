"""The on-disk workspace: ``workspace.toml``, the SQLite store, embeddings, runs, metrics and exports.

See :mod:`naviewer.workspace.workspace` for the directory layout and :mod:`.store` for the database.
"""

from naviewer.workspace.metrics import append_metrics, read_metrics
from naviewer.workspace.store import REVIEW_STATES, SCORE_KEYS, STORE_SCHEMA, WorkspaceStore
from naviewer.workspace.workspace import WORKSPACE_SCHEMA, Workspace, dataset_hash

__all__ = [
    "REVIEW_STATES",
    "SCORE_KEYS",
    "STORE_SCHEMA",
    "WORKSPACE_SCHEMA",
    "Workspace",
    "WorkspaceStore",
    "append_metrics",
    "dataset_hash",
    "read_metrics",
]
