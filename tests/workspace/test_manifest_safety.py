"""No forged manifest line: registration and export refuse names that would break a `path label` line (issue 15)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from naviewer.data.base import ArrayDataset
from naviewer.errors import NaviewerError
from naviewer.workspace import Workspace
from naviewer.workspace.export import export_manifests

EVIL = "evil\nINJECTED_LINE 7\nx.png"


def _dataset(keys: list[str]) -> ArrayDataset:
    images = np.arange(len(keys) * 48, dtype=np.uint8).reshape(len(keys), 4, 4, 3)
    return ArrayDataset(images, list(range(len(keys))), [f"c{i}" for i in range(len(keys))], source_keys=keys)


@pytest.mark.parametrize("key", [EVIL, "a\u2028b", "a\x85b", "a\rb", "bad\udcff.png", "#x.png", " x.png"])
def test_registration_refuses_a_key_that_would_forge_a_line(tmp_path: Path, key: str) -> None:
    with pytest.raises(NaviewerError, match="sample 1 cannot be registered: the (name|path)"):
        Workspace.create(tmp_path / "ws", _dataset(["ok.png", key, "z.png"]))
    assert not (tmp_path / "ws").exists()
    assert not [p for p in tmp_path.iterdir()]  # no staging folder left


def test_export_refuses_a_key_forged_in_the_database(tmp_path: Path) -> None:
    """A store written by another tool: export names the sample and writes nothing."""
    with Workspace.create(tmp_path / "ws", _dataset(["a.png", "b.png", "c.png"])) as ws:
        pass
    with sqlite3.connect(tmp_path / "ws" / "naviewer.sqlite") as conn:
        conn.execute("UPDATE samples SET source_key=? WHERE id=1", (EVIL,))
    out = tmp_path / "out"
    with Workspace.open(tmp_path / "ws") as ws:
        with pytest.raises(NaviewerError, match=r"sample 1 cannot be exported.*'evil\\nINJECTED_LINE 7\\nx.png'") as info:
            export_manifests(ws, out)
    assert info.value.path.endswith("naviewer.sqlite")
    assert not out.exists() or not list(out.iterdir())


def test_every_registered_sample_is_exactly_one_kept_line(tmp_path: Path) -> None:
    keys = ["a b.png", "ünï/ção.png", "not#a-comment/x.png", "say \"hi\", ok.png"]
    with Workspace.create(tmp_path / "ws", _dataset(keys)) as ws:
        result = export_manifests(ws, tmp_path / "out")
    lines = result.kept_path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines) - 1 == len(keys)
    assert [line.rsplit(" ", 1)[0] for line in lines[:-1]] == keys
