"""Workspace create/open, configuration, files, and refusal of corrupt or newer workspaces."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
import tomli_w
import tomllib

from naviewer.data.base import pixel_hash
from naviewer.errors import JobCancelled, NaviewerError
from naviewer.jobs import JobContext, RecordingReporter
from naviewer.workspace import WORKSPACE_SCHEMA, Workspace, dataset_hash

from workspace_kit import make_dataset


def test_create_open_round_trip(tmp_path: Path, dataset) -> None:
    reporter = RecordingReporter()
    ws = Workspace.create(tmp_path / "ws", dataset, settings={"seed": 3}, ctx=JobContext(reporter))
    ws.close()
    assert reporter.progresses and reporter.progresses[-1][0] == len(dataset)
    with Workspace.open(tmp_path / "ws") as ws:
        assert ws.config["workspace"]["schema"] == WORKSPACE_SCHEMA
        assert ws.config["settings"] == {"seed": 3}
        assert ws.config["dataset"]["kind"] == "memory"
        hashes = [pixel_hash(dataset.image(i)) for i in range(len(dataset))]
        assert ws.config["dataset"]["content_hash"] == dataset_hash(hashes)
        assert ws.class_names == ["cat", "dog", "bird"]
        samples = ws.store.samples()
        assert samples["id"].tolist() == list(range(len(dataset)))
        assert samples["source_key"] == [dataset.source_key(i) for i in range(len(dataset))]
        assert samples["hash"] == hashes
        assert np.array_equal(samples["label"], dataset.labels)
        for name in ("runs", "checkpoints", "embeddings", "exports"):
            assert (ws.path / name).is_dir()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging dir left


def test_create_refuses_non_empty_dir_but_accepts_empty(tmp_path: Path, dataset) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(NaviewerError, match="not an empty directory"):
        Workspace.create(tmp_path / "full", dataset)
    (tmp_path / "empty").mkdir()
    Workspace.create(tmp_path / "empty", dataset).close()
    Workspace.create(tmp_path / "nodata").close()


def test_cancelled_create_leaves_nothing(tmp_path: Path) -> None:
    ctx = JobContext()

    class CancelAfterFirst(RecordingReporter):
        def progress(self, done, total, message):  # noqa: ANN001
            super().progress(done, total, message)
            if done > 0:
                ctx.cancel()

    ctx.reporter = CancelAfterFirst()
    with pytest.raises(JobCancelled):
        Workspace.create(tmp_path / "ws", make_dataset(600), ctx=ctx)
    assert list(tmp_path.iterdir()) == []


def test_register_dataset_later_and_reopen_dataset_source(tmp_path: Path) -> None:
    from naviewer.data import open_dataset

    demo = open_dataset("demo")
    with Workspace.create(tmp_path / "ws") as ws:
        assert ws.store.sample_count() == 0
        ws.register_dataset(demo)
        with pytest.raises(NaviewerError, match="already has a dataset"):
            ws.register_dataset(demo)
    with Workspace.open(tmp_path / "ws") as ws:
        again = ws.dataset()
        assert len(again) == len(demo) == ws.store.sample_count()
        assert again.content_hash(5) == ws.store.samples()["hash"][5]


def test_memory_dataset_cannot_be_reopened(ws) -> None:
    with pytest.raises(NaviewerError, match="in memory"):
        ws.dataset()


def test_a_replaced_section_drops_keys_another_process_wrote_meanwhile(ws) -> None:
    """Two `naviewer anchors` at once each deleted the keys read at its start and merged into the file re-read under
    the lock: the workspace kept 200 trusted + 50 label anchors, NOT trusted (a bad-input probe, session 30).
    ``replace`` decides the whole section under the lock."""
    from naviewer.workspace.config import read_config, write_config

    ws.update_config("anchors", {"kind": "external", "trusted": True, "external": {"ids": [1, 2]}})
    other = read_config(ws.config_path)  # another process writes its own anchors meanwhile
    other["anchors"] = {"kind": "labels", "trusted": False, "indices": [3], "labels": [0]}
    write_config(ws.config_path, other)
    ws.update_config("anchors", {"kind": "ids", "trusted": True, "indices": [5], "labels": [1]}, replace=True)
    assert read_config(ws.config_path)["anchors"] == {"kind": "ids", "trusted": True, "indices": [5], "labels": [1]}


def test_update_config_merges_deletes_and_persists(ws) -> None:
    ws.update_config("attack", {"name": "na", "ratio": np.float32(0.5), "box": (1, 2), "root": Path("/x")})
    ws.update_config("attack", {"ratio": None, "target": 3})
    ws.update_config("dift", {"k": 10})
    with pytest.raises(NaviewerError):
        ws.update_config("workspace", {"schema": 9})
    path = ws.path
    ws.close()
    with Workspace.open(path) as again:
        assert again.config["attack"] == {"name": "na", "box": [1, 2], "root": "/x", "target": 3}
        assert again.config["dift"] == {"k": 10}
        assert again.config["settings"] == {"seed": 1}


def _rewrite_toml(path: Path, change) -> None:  # noqa: ANN001
    config = tomllib.loads(path.read_text())
    change(config)
    path.write_text(tomli_w.dumps(config))


def test_newer_workspace_schema_is_refused(ws) -> None:
    path = ws.path
    ws.close()
    _rewrite_toml(path / "workspace.toml", lambda c: c["workspace"].update(schema=WORKSPACE_SCHEMA + 1))
    with pytest.raises(NaviewerError, match="newer") as info:
        Workspace.open(path)
    assert info.value.path == str(path / "workspace.toml")


@pytest.mark.parametrize("text", ["[workspace\nschema = 1", "title = 'not a workspace'\n", ""])
def test_garbled_toml_is_refused(ws, text: str) -> None:
    path = ws.path
    ws.close()
    (path / "workspace.toml").write_text(text)
    with pytest.raises(NaviewerError) as info:
        Workspace.open(path)
    assert info.value.path == str(path / "workspace.toml")


def test_missing_workspace_and_missing_files(tmp_path: Path, ws) -> None:
    with pytest.raises(NaviewerError, match="no such workspace"):
        Workspace.open(tmp_path / "nope")
    path = ws.path
    ws.close()
    (path / "naviewer.sqlite").unlink()
    with pytest.raises(NaviewerError, match="missing") as info:
        Workspace.open(path)
    assert info.value.path == str(path / "naviewer.sqlite")
    (path / "workspace.toml").unlink()
    with pytest.raises(NaviewerError, match="workspace.toml is missing"):
        Workspace.open(path)


def test_sqlite_that_is_not_a_database_is_refused(ws) -> None:
    path = ws.path
    ws.close()
    (path / "naviewer.sqlite").write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(NaviewerError) as info:
        Workspace.open(path)
    assert info.value.path == str(path / "naviewer.sqlite")


def test_corrupted_sqlite_pages_are_refused(tmp_path: Path) -> None:
    with Workspace.create(tmp_path / "ws", make_dataset(3000, size=4)) as ws:
        path = ws.path
    db = path / "naviewer.sqlite"
    data = bytearray(db.read_bytes())
    assert len(data) > 8 * 4096
    rng = np.random.default_rng(1)
    data[2 * 4096 : len(data) - 4096] = rng.integers(0, 256, len(data) - 3 * 4096, dtype=np.uint8).tobytes()
    db.write_bytes(bytes(data))
    with pytest.raises(NaviewerError) as info:
        Workspace.open(path)
    assert info.value.path == str(db)


def test_newer_store_schema_is_refused(ws) -> None:
    path = ws.path
    ws.close()
    with sqlite3.connect(path / "naviewer.sqlite") as conn:
        conn.execute("UPDATE meta SET value='99' WHERE key='schema'")
    conn.close()
    with pytest.raises(NaviewerError, match="newer") as info:
        Workspace.open(path)
    assert info.value.path == str(path / "naviewer.sqlite")


def test_embeddings_are_atomic_and_memory_mapped(ws) -> None:
    array = np.random.default_rng(0).standard_normal((40, 16)).astype(np.float16)
    path = ws.save_embeddings("simclr", "epoch_0003", array)
    assert path == ws.path / "embeddings" / "simclr" / "epoch_0003.npy"
    loaded = ws.load_embeddings("simclr", "epoch_0003")
    assert isinstance(loaded, np.memmap) and loaded.dtype == np.float16
    assert np.array_equal(loaded, array)
    assert ws.embeddings() == [("simclr", "epoch_0003")]
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]
    with pytest.raises(NaviewerError):
        ws.save_embeddings("../evil", "x", array)
    with pytest.raises(NaviewerError, match="no such embeddings file; the workspace has simclr:epoch_0003"):
        ws.load_embeddings("simclr", "missing")  # the names there said: a tag's hex digits are not guessable
    (path.parent / "bad.npy").write_bytes(b"garbage")
    with pytest.raises(NaviewerError, match="corrupt"):
        ws.load_embeddings("simclr", "bad")


def test_dirs_and_ground_truth(ws) -> None:
    assert ws.run_dir("r1") == ws.path / "runs" / "r1" and (ws.path / "runs" / "r1").is_dir()
    assert ws.checkpoint_dir("r1").is_dir()
    assert ws.read_ground_truth() is None
    ws.write_ground_truth({"poison": np.array([1, 2]), "target": np.int64(3)})
    assert ws.read_ground_truth() == {"poison": [1, 2], "target": 3}
    ws.ground_truth_path.write_text("{broken")
    with pytest.raises(NaviewerError, match="garbled"):
        ws.read_ground_truth()
