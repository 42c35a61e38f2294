"""Issue 17 item 4: samples registered from a generator in chunks, a sample summary that lets an open skip
scanning the samples table, and lazy source keys. Behaviour only (what is read, how much), never time."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from naviewer.errors import NaviewerError
from naviewer.workspace import Workspace
from naviewer.workspace import store as store_module
from naviewer.workspace.store import SampleColumn


def _rows(n: int, pulled: list):
    for i in range(n):
        pulled[0] += 1
        yield f"train/{i % 7}/img_{i:07d}.png", f"{i:032x}", i % 5


def test_a_generator_is_consumed_in_chunks_not_all_at_once(tmp_path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    pulled = [0]
    seen: list[tuple[int, int]] = []
    added = ws.store.add_sample_rows(_rows(2_500, pulled), chunk=1_000,
                                     on_chunk=lambda total: seen.append((total, pulled[0])))
    assert added == 2_500
    # each chunk went to SQLite before the next was drawn: never more pulled than one chunk ahead
    assert seen == [(1_000, 1_000), (2_000, 2_000), (2_500, 2_500)]
    store = ws.store
    assert store.sample_count() == 2_500
    assert store.labels().tolist() == [i % 5 for i in range(2_500)]
    assert store.label_range == (0, 4)
    samples = store.samples()
    assert samples["id"].tolist() == list(range(2_500))
    assert samples["source_key"][1234] == "train/2/img_0001234.png" and samples["hash"][7] == f"{7:032x}"
    # a second call continues the ids (and the summary / label blob cover both)
    store.add_sample_rows(iter([("more/a.png", "f" * 32, 9)]))
    assert store.sample_count() == 2_501 and store.labels()[-1] == 9 and store.label_range == (0, 9)
    ws.close()


def test_a_failing_generator_leaves_nothing_registered(tmp_path) -> None:
    ws = Workspace.create(tmp_path / "ws")

    def rows():
        yield from _rows(1_500, [0])
        raise NaviewerError("sample 1500 cannot be registered")

    with pytest.raises(NaviewerError, match="1500"):
        ws.store.add_sample_rows(rows(), chunk=500)
    assert ws.store.sample_count() == 0
    ws.close()


def test_register_dataset_streams_and_keeps_the_dataset_hash(tmp_path) -> None:
    from naviewer.data.base import ArrayDataset
    from naviewer.workspace.workspace import dataset_hash

    rng = np.random.default_rng(0)
    data = ArrayDataset(rng.integers(0, 255, (300, 8, 8, 3), dtype=np.uint8), rng.integers(0, 3, 300), ["a", "b", "c"])
    ws = Workspace.create(tmp_path / "ws", data)
    expected = dataset_hash([data.content_hash(i) for i in range(300)])
    assert ws.config["dataset"]["content_hash"] == expected and ws.config["dataset"]["samples"] == 300
    assert ws.store.labels().tolist() == data.labels.tolist()
    ws.close()


def _big_workspace(tmp_path, n: int = 200_000):
    ws = Workspace.create(tmp_path / "ws")
    ws.store.add_sample_rows(((f"k/{i}.png", f"{i:032x}", i % 10) for i in range(n)))
    ws.close()
    return tmp_path / "ws"


class _Counting:
    """Counts SQLite VM steps (in thousands) and statements of every connection the store opens."""

    def __init__(self, monkeypatch) -> None:
        self.steps = 0
        self.statements: list[str] = []
        real = sqlite3.connect

        def connect(*args, **kwargs):
            conn = real(*args, **kwargs)
            conn.set_progress_handler(self._step, 1000)
            conn.set_trace_callback(self.statements.append)
            return conn

        monkeypatch.setattr(store_module.sqlite3, "connect", connect)

    def _step(self) -> int:
        self.steps += 1
        return 0


def test_opening_a_large_workspace_reads_no_sample_rows(tmp_path, monkeypatch) -> None:
    n = 200_000
    path = _big_workspace(tmp_path, n)
    monkeypatch.setattr(store_module, "FULL_CHECK_BYTES", 0)  # as for a database past 64 MiB
    counting = _Counting(monkeypatch)
    ws = Workspace.open(path)
    assert ws.store.sample_count() == n and ws.store.label_range == (0, 9)
    opened_steps = counting.steps
    statements = "\n".join(counting.statements)
    assert "COUNT(*) FROM samples" not in statements and "MIN(label)" not in statements
    assert "PRAGMA quick_check\n" not in statements + "\n" and 'quick_check("samples")' not in statements
    assert 'quick_check("review")' in statements  # the other tables are still checked
    # the labels come back from one blob, not a scan
    counting.steps = 0
    assert ws.store.labels()[:12].tolist() == [i % 10 for i in range(12)]
    assert counting.steps < n // 1000 // 20
    ws.close()
    # the old open (no summary: a database from older naviewer) walks every row; this one did not
    conn = sqlite3.connect(path / "naviewer.sqlite")
    conn.execute("DELETE FROM meta WHERE key='samples_summary'")
    conn.commit()
    conn.close()
    counting.steps = 0
    Workspace.open(path).close()
    assert counting.steps > n // 1000  # at least one VM step per row
    assert opened_steps * 20 < counting.steps


@pytest.mark.parametrize("edit, message", [
    ("DELETE FROM samples WHERE id = 5", "samples table is damaged"),
    ("UPDATE samples SET label = 99 WHERE id = 3", "label 99"),
])
def test_an_edit_behind_naviewers_back_drops_the_summary_and_is_caught(tmp_path, monkeypatch, edit, message) -> None:
    from naviewer.workspace.workspace import Workspace as W

    ws = W.create(tmp_path / "ws")
    ws.store.add_sample_rows(((f"k/{i}.png", f"{i:032x}", i % 3) for i in range(50)))
    ws.update_config("settings", {"x": 1})
    ws.close()
    # the workspace names 3 classes, so a label 99 is out of range
    import tomllib

    text = (tmp_path / "ws" / "workspace.toml").read_text()
    assert tomllib.loads(text)
    (tmp_path / "ws" / "workspace.toml").write_text(text + '\n[classes]\nnames = ["a", "b", "c"]\n')
    monkeypatch.setattr(store_module, "FULL_CHECK_BYTES", 0)
    conn = sqlite3.connect(tmp_path / "ws" / "naviewer.sqlite")
    conn.execute(edit)
    conn.commit()
    assert conn.execute("SELECT COUNT(*) FROM meta WHERE key='samples_summary'").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM sample_arrays").fetchone()[0] == 0
    conn.close()
    with pytest.raises(NaviewerError, match=message):
        Workspace.open(tmp_path / "ws")


def test_a_store_without_the_new_table_still_opens_and_registers(tmp_path) -> None:
    """A database laid out by older naviewer: no sample_arrays table, no triggers, no summary."""
    ws = Workspace.create(tmp_path / "ws")
    ws.close()
    conn = sqlite3.connect(tmp_path / "ws" / "naviewer.sqlite")
    for name in ("insert", "update", "delete"):
        conn.execute(f"DROP TRIGGER samples_summary_{name}")
    conn.execute("DROP TABLE sample_arrays")
    conn.executemany("INSERT INTO samples VALUES(?, ?, ?, ?)", [(i, f"k/{i}", f"{i:032x}", i % 2) for i in range(10)])
    conn.commit()
    conn.close()
    ws = Workspace.open(tmp_path / "ws")
    assert ws.store.sample_count() == 10 and ws.store.labels().tolist() == [i % 2 for i in range(10)]
    ws.store.add_sample_rows(iter([("k/10", "0" * 32, 1)]))
    assert ws.store.sample_count() == 11 and ws.store.labels().tolist() == [i % 2 for i in range(10)] + [1]
    ws.close()
    assert Workspace.open(tmp_path / "ws").store.sample_count() == 11


def test_source_keys_are_read_in_windows(tmp_path) -> None:
    path = _big_workspace(tmp_path, 20_000)
    ws = Workspace.open(path)
    keys = ws.store.source_keys()
    assert isinstance(keys, SampleColumn) and len(keys) == 20_000 and keys.queries == 0
    assert keys[0] == "k/0.png" and keys[4095] == "k/4095.png" and keys.queries == 1  # one window
    assert keys[-1] == "k/19999.png" and keys[4096:4099] == ["k/4096.png", "k/4097.png", "k/4098.png"]
    assert keys.queries == 3
    assert sum(1 for _ in keys) == 20_000
    with pytest.raises(IndexError):
        keys[20_000]
    ws.close()


def test_a_session_opens_with_lazy_keys(tmp_path) -> None:
    from naviewer.analysis.session import AnalysisSession

    path = _big_workspace(tmp_path, 30_000)
    ws = Workspace.open(path)
    rank = np.random.default_rng(0).permutation(30_000)
    ws.store.add_detection_pass("dift", {"rank": rank, "flagged": rank < 300, "candidate": rank < 600}, {})
    session = AnalysisSession.from_workspace(ws)
    assert isinstance(session.source_keys, SampleColumn) and session.source_keys.queries == 0
    assert session.labels[:4].tolist() == [0, 1, 2, 3]
    order = session.suspicion_order()
    assert np.array_equal(np.sort(order[:300]), np.sort(np.flatnonzero(rank < 300)))
    assert session.sample_scores(int(order[0]))["source"] == f"k/{int(order[0])}.png"
    assert session.source_keys.queries == 1
    ws.close()


def test_review_codes_match_review_states(tmp_path) -> None:
    from naviewer.analysis.review import state_codes

    ws = Workspace.create(tmp_path / "ws")
    ws.store.add_sample_rows(((f"k/{i}", f"{i:032x}", 0) for i in range(20)))
    ws.store.set_review([1, 2], "confirmed", "a")
    ws.store.set_review([2, 5], "later", "a")
    ws.store.set_review([7], "rejected", "b")
    codes = ws.store.review_codes()
    assert codes.dtype == np.uint8 and np.array_equal(codes, state_codes(ws.store.review_states()))
    ws.close()
