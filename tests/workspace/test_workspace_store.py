"""The SQLite store: review decisions (durable, batched, undoable, audited), detection passes, runs, threads."""

from __future__ import annotations

import signal
import sqlite3
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from common_kit import sigkill_after_line
from naviewer.errors import NaviewerError
from naviewer.workspace import Workspace, WorkspaceStore


def test_review_states_and_audit(ws) -> None:
    store = ws.store
    store.set_review([1, 2, 2, 3], "confirmed", "alice", note="dense cluster")
    store.set_review(np.array([3, 4]), "rejected", "bob")
    store.set_review(5, "later", "bob")
    states = store.review_states()
    assert states.shape == (40,)
    assert states[:7].tolist() == ["unreviewed", "confirmed", "confirmed", "rejected", "rejected", "later", "unreviewed"]
    log = store.audit_log()
    assert [(r["sample_id"], r["old"], r["new"], r["reviewer"]) for r in log] == [
        (1, "unreviewed", "confirmed", "alice"),
        (2, "unreviewed", "confirmed", "alice"),
        (3, "unreviewed", "confirmed", "alice"),
        (3, "confirmed", "rejected", "bob"),
        (4, "unreviewed", "rejected", "bob"),
        (5, "unreviewed", "later", "bob"),
    ]
    assert log[0]["note"] == "dense cluster" and log[0]["batch"] == log[2]["batch"] != log[3]["batch"]
    assert [r["sample_id"] for r in store.audit_log(limit=2)] == [4, 5]
    assert store.review_summary() == {"alice": {"confirmed": 2}, "bob": {"rejected": 2, "later": 1}}


@pytest.mark.parametrize(
    "ids, state, reviewer",
    [([0], "poison", "alice"), ([40], "confirmed", "alice"), ([-1], "confirmed", "alice"), ([0], "confirmed", " ")],
)
def test_bad_review_input(ws, ids, state, reviewer) -> None:  # noqa: ANN001
    with pytest.raises(NaviewerError):
        ws.store.set_review(ids, state, reviewer)
    assert ws.store.audit_count() == 0


def test_undo_last_batch_per_reviewer_and_logged(ws) -> None:
    store = ws.store
    assert store.undo_last() == [] and not store.has_undoable()
    store.set_review([1, 2], "confirmed", "alice")
    assert store.has_undoable("alice") and not store.has_undoable("bob")
    store.set_review([3], "rejected", "bob")
    store.set_review([2], "rejected", "bob")  # bob overrides one of alice's decisions
    assert store.undo_last("alice") == [1]  # sample 2 keeps bob's later decision
    assert store.review_states()[:4].tolist() == ["unreviewed", "unreviewed", "rejected", "rejected"]
    assert sorted(store.undo_last()) == [2]  # bob's latest batch
    assert store.review_states()[2] == "confirmed"  # back to what alice had set before
    assert store.undo_last() == [3]
    assert store.undo_last("alice") == []  # alice's only batch is already undone
    assert not store.has_undoable("alice") and not store.has_undoable()
    log = store.audit_log()
    assert len(log) == 4 + 3
    assert log[4]["note"].startswith("undo of batch") and (log[4]["old"], log[4]["new"]) == ("confirmed", "unreviewed")


@pytest.mark.parametrize("kind", ["workspace", "memory"])
def test_writes_read_the_stores_own_states_and_undo_keeps_to_its_own_batches(ws, kind) -> None:
    """A window's copy of the states is up to a poll old, so what a write skips is read by the store inside the
    write (skip_unchanged, only_from); U takes only the window's own batches (and its reviewer's from before it
    opened), never one another process wrote meanwhile under the same name; an undo says what it left."""
    from naviewer.analysis.review import MemoryReviewStore
    from naviewer.workspace.store import OwnBatches

    store = ws.store if kind == "workspace" else MemoryReviewStore(ws.store.sample_count())
    batch, written = store.set_review([1, 2], "confirmed", "alice")
    assert batch is not None and written.tolist() == [1, 2]
    mine = OwnBatches(store.last_batch_id())  # a window opens: alice's earlier batch is hers to undo
    store.set_review([2], "rejected", "bob")
    batch, written = store.set_review([1, 2, 3], "confirmed", "alice", skip_unchanged=True)
    mine.add(batch)
    assert written.tolist() == [2, 3]  # 1 already confirmed in the store
    batch, written = store.set_review([1, 2], "confirmed", "alice", skip_unchanged=True)
    assert batch is None and len(written) == 0  # nothing to write: no empty batch for Undo to take
    store.set_review([4], "rejected", "alice")  # the command line, same name: not the window's
    batch, written = store.set_review([3, 4], "unreviewed", "alice", only_from="confirmed")
    mine.add(batch)
    assert written.tolist() == [3] and store.review_states()[4] == "rejected"
    assert store.undo_last("alice", mine) == [3]  # the window's latest: the revert of 3
    store.set_review([2], "later", "carol")
    result = store.undo_last_detail("alice", mine)  # 2 and 3: 2 decided again by carol since
    assert result.reverted == [3] and result.skipped == [2]
    result = store.undo_last_detail("alice", mine)  # the batch from before the window opened
    assert sorted(result.reverted) == [1] and result.skipped == [2]
    assert store.undo_last_detail("alice", mine).batch is None and not store.has_undoable("alice", mine)
    assert store.review_states()[4] == "rejected" and store.has_undoable("alice")  # the command line's stays
    # a revert of an undo: each sample only when it is still in the state that undo set (a mapping)
    states = store.review_states()
    batch, written = store.set_review([2, 4, 5], "confirmed", "alice",
                                      only_from={2: str(states[2]), 4: "later", 5: str(states[5])})
    assert written.tolist() == [2, 5] and store.review_states()[4] == "rejected"


def test_audit_log_is_append_only(ws) -> None:
    ws.store.set_review([1], "confirmed", "alice")
    conn = sqlite3.connect(ws.path / "naviewer.sqlite")
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE audit SET new='rejected'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM audit")
    finally:
        conn.close()
    ws.store.set_review([1], "rejected", "alice")
    assert [r["new"] for r in ws.store.audit_log()] == ["confirmed", "rejected"]


_CHILD = textwrap.dedent(
    """
    import sys, time
    from naviewer.workspace import Workspace
    ws = Workspace.open(sys.argv[1])
    ws.store.set_review([7, 8, 9], "confirmed", "killed-reviewer", note="before SIGKILL")
    print("done", flush=True)
    time.sleep(120)
    """
)


def test_decisions_reach_the_database_file_while_the_workspace_is_open(ws, tmp_path: Path) -> None:
    """A copy of naviewer.sqlite alone (no -wal beside it), taken while the window is open, keeps the
    decisions and their undo: they are checkpointed into the file, not left in the WAL."""
    ws.store.set_review([1, 2], "confirmed", "alice")
    ws.store.set_review([3], "rejected", "alice")
    ws.store.undo_last("alice")
    copy = tmp_path / "copy.sqlite"
    copy.write_bytes(ws.store.path.read_bytes())
    conn = sqlite3.connect(copy)
    try:
        rows = dict(conn.execute("SELECT sample_id, state FROM review").fetchall())
        undone = conn.execute("SELECT COUNT(*) FROM review_batches WHERE undo_of IS NOT NULL").fetchone()[0]
    finally:
        conn.close()
    assert rows.get(1) == rows.get(2) == "confirmed" and rows.get(3, "unreviewed") == "unreviewed"
    assert undone == 1


def test_review_survives_sigkill_right_after_set_review(ws) -> None:
    path = ws.path
    ws.close()
    assert sigkill_after_line(_CHILD, str(path), line="done") == -signal.SIGKILL
    with Workspace.open(path) as again:
        assert again.store.review_states()[7:10].tolist() == ["confirmed"] * 3
        assert [r["note"] for r in again.store.audit_log()] == ["before SIGKILL"] * 3


def test_detection_pass_round_trip_100k(tmp_path: Path) -> None:
    n = 100_000
    rng = np.random.default_rng(0)
    with WorkspaceStore(tmp_path / "s.sqlite", create=True) as store:
        store.add_samples([f"k/{i}" for i in range(n)], [f"{i:032x}" for i in range(n)], rng.integers(0, 10, n))
        density = rng.random(n).astype(np.float32)
        scores = {
            "density": density,
            "rank": np.argsort(np.argsort(-density)),
            "candidate": density > 0.9,
            "mindist": np.where(density > 0.9, rng.random(n), np.nan),
            "posterior": np.where(density > 0.9, rng.random(n), np.nan),
            "flagged": density > 0.99,
            "spread": density > 0.98,
            "cluster": np.where(density > 0.99, 0, -1),
        }
        first = store.add_detection_pass("dift", scores, {"k": 10, "anchors": [1, 2]}, run="simclr", epoch=np.int64(4))
        second = store.add_detection_pass("dbscan", {"cluster": np.zeros(n, dtype=np.int32)}, {})
        assert store.latest_pass_id() == second and store.latest_pass_id("dift") == first
        assert store.latest_pass_id("nope") is None
        back = store.pass_scores(first)
        assert set(back) == set(scores)
        for key, values in scores.items():
            np.testing.assert_array_equal(back[key], values)
        assert back["density"].dtype == np.float32 and back["flagged"].dtype == bool and back["rank"].dtype == np.int64
        info = store.passes()[0]
        assert info["method"] == "dift" and info["run"] == "simclr" and info["epoch"] == 4 and info["n"] == n
        assert info["settings"] == {"k": 10, "anchors": [1, 2]} and "flagged" in info["scores"]
        assert len(store.samples()["source_key"]) == n
        with pytest.raises(NaviewerError, match="shape"):
            store.add_detection_pass("dift", {"density": np.zeros(n - 1)}, {})
        with pytest.raises(NaviewerError, match="no detection pass"):
            store.pass_scores(999)


def test_concurrent_threads_write_and_read(ws) -> None:
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for i in range(offset, 40, 4):
                ws.store.set_review([i], "confirmed", f"t{offset}")
                ws.store.review_states()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert (ws.store.review_states() == "confirmed").all()
    assert ws.store.audit_count() == 40


def test_runs(ws) -> None:
    ws.store.add_run("simclr-1", "train", {"epochs": 10})
    ws.store.add_run("simclr-1", "train", {"epochs": 20})
    ws.store.add_run("dift-1", "detect", {})
    runs = {r["name"]: r for r in ws.store.runs()}
    assert runs["simclr-1"]["config"] == {"epochs": 20} and runs["dift-1"]["kind"] == "detect"


def test_one_score_array_of_a_pass(tmp_path: Path) -> None:
    """``pass_array`` decodes one array of a pass: the same as ``pass_scores``'s, checked the same way."""
    n = 1_000
    rng = np.random.default_rng(1)
    with WorkspaceStore(tmp_path / "s.sqlite", create=True) as store:
        store.add_samples([f"k/{i}" for i in range(n)], [f"{i:032x}" for i in range(n)], rng.integers(0, 10, n))
        density = rng.random(n).astype(np.float32)
        first = store.add_detection_pass("dift", {"density": density, "flagged": density > 0.9}, {})
        whole = store.pass_scores(first)
        for name in ("density", "flagged"):
            one = store.pass_array(first, name)
            assert one.dtype == whole[name].dtype and np.array_equal(one, whole[name])
        assert store.pass_array(first, "mindist") is None
        with pytest.raises(NaviewerError, match="no detection pass"):
            store.pass_array(999, "flagged")
        conn = sqlite3.connect(tmp_path / "s.sqlite")
        conn.execute("UPDATE pass_arrays SET data=? WHERE name='density'", (b"not zlib",))
        conn.commit()
        conn.close()
        with pytest.raises(NaviewerError, match="corrupted"):
            store.pass_array(first, "density")
        assert store.pass_array(first, "flagged").sum() == whole["flagged"].sum()  # the others still read


def test_a_second_store_on_an_open_database_does_not_open_the_file_behind_sqlite(tmp_path, monkeypatch):
    """Closing any descriptor of a file drops every POSIX lock this process holds on it, the live SQLite
    connection's included; the header check read the file with ``open`` while the GUI's connection was live
    (a job re-opening the workspace), and a database was once found corrupted after that."""
    import builtins

    import naviewer.workspace.store as store_module
    from naviewer.workspace.store import WorkspaceStore

    path = tmp_path / "naviewer.sqlite"
    first = WorkspaceStore(path, create=True)
    opened = []
    real_open = builtins.open

    def watching(file, *args, **kwargs):
        if str(file) == str(path):
            opened.append(file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(store_module, "open", watching, raising=False)
    second = WorkspaceStore(path)
    second.close()
    assert opened == []                       # the live connection's locks were left alone
    first.close()
    third = WorkspaceStore(path)              # no connection left: the header is checked again
    third.close()
    assert opened == [path]


def test_a_review_decision_waits_only_review_wait_s_for_another_process_lock(tmp_path):
    """The window's decisions waited the store's 30 s busy timeout while another process held the write lock (a
    frozen window per key press, a GUI sweep); with review_wait_s they are refused after that long, nothing changed,
    and the lock gone they go through, the store's own timeout back for other writes."""
    store = WorkspaceStore(tmp_path / "s.sqlite", create=True)
    store.add_samples(["a", "b", "c"], ["h1", "h2", "h3"], [0, 1, 0])
    store.review_wait_s = 0.2
    statements: list[str] = []
    store._conn().set_trace_callback(statements.append)  # what the write asked SQLite, not how long it took
    other = sqlite3.connect(tmp_path / "s.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(NaviewerError, match="locked"):
            store.set_review([0], "confirmed", "me")
        assert "PRAGMA busy_timeout = 200" in statements and statements[-1] == "PRAGMA busy_timeout = 30000"
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert (store.review_states() == "unreviewed").all()
    store.set_review([0], "confirmed", "me")
    assert store.review_states()[0] == "confirmed"
    conn = store._conn()
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000  # set back for the other writes


def test_a_database_replaced_or_deleted_while_open_refuses_the_next_write(tmp_path):
    """A GUI sweep replaced naviewer.sqlite under an open window: the next decisions were "recorded" into the
    unlinked file and lost without a word. The store now refuses, naming the file, and changes nothing."""
    import os
    import shutil

    path = tmp_path / "s.sqlite"
    store = WorkspaceStore(path, create=True)
    store.add_samples(["a", "b", "c"], ["h1", "h2", "h3"], [0, 1, 0])
    store.set_review([0], "confirmed", "me")
    shutil.copy(path, tmp_path / "copy.sqlite")
    os.replace(tmp_path / "copy.sqlite", path)  # another file now at the path
    with pytest.raises(NaviewerError, match="replaced by another file while it was open"):
        store.set_review([1], "rejected", "me")
    os.unlink(path)
    with pytest.raises(NaviewerError, match="moved or deleted while it was open"):
        store.set_review([1], "rejected", "me")
    store.close()


def test_passes_of_one_detection_share_its_finetune(ws, monkeypatch) -> None:
    """A post-hoc fine-tune is recorded with the DIFT pass; the window reopened on the PatchSearch pass of the same
    detection offered the fine-tune again and showed nothing of it (a newcomer, session 25). Passes of one run saved
    together are one detection; a later detection under the same run name is not."""
    import naviewer.workspace.store as store_module
    from naviewer.workflows.posthoc import FINETUNE_RUN_KIND, latest_finetune_result, same_detection

    n = ws.store.sample_count()
    clock = {"now": 1000.0}
    monkeypatch.setattr(store_module.time, "time", lambda: clock["now"])
    dift = ws.store.add_detection_pass("dift", {"flagged": np.zeros(n, bool)}, {}, run="posthoc")
    patch = ws.store.add_detection_pass("patchsearch", {"flagged": np.zeros(n, bool)}, {}, run="posthoc")
    clock["now"] += 40  # another detect under the default run name, 40 s on (of another checkpoint, maybe)
    later = ws.store.add_detection_pass("patchsearch", {"flagged": np.zeros(n, bool)}, {}, run="posthoc")
    other = ws.store.add_detection_pass("kdist", {"flagged": np.zeros(n, bool)}, {}, run="elsewhere")
    assert same_detection(ws, dift, patch) and not same_detection(ws, dift, later)
    assert not same_detection(ws, later, other) and not same_detection(ws, None, dift)
    ws.store.add_run("posthoc-finetune", FINETUNE_RUN_KIND, {"pass_id": dift, "confirmed": 3, "checkpoint": "x.pt"})
    assert latest_finetune_result(ws, "posthoc", patch)["confirmed"] == 3
    assert latest_finetune_result(ws, "posthoc", later) is None


def test_a_floor_measured_after_the_retrain_shows_beside_its_result(ws) -> None:
    """Run ▸ Measure the no-poison floor after Remove and retrain: the monitor showed the floor, the Fine-tune tab's
    table still read "not measured", reopened too (a newcomer, session 26). The workspace's [floor] fills a result
    measured without one, of the same test-time protocol only."""
    from naviewer.workflows.posthoc import FINETUNE_RUN_KIND, latest_finetune_result

    n = ws.store.sample_count()
    dift = ws.store.add_detection_pass("dift", {"flagged": np.zeros(n, bool)}, {}, run="posthoc")
    before, after = {"asr": 1.0, "knn_acc": 0.9}, {"asr": 0.28, "knn_acc": 0.9}
    ws.store.add_run("posthoc-finetune", FINETUNE_RUN_KIND, {"pass_id": dift, "confirmed": 3, "checkpoint": "x.pt",
                                                             "before": before, "after": after, "protocol": "uniform"})
    assert latest_finetune_result(ws, "posthoc", dift)["floor"] is None
    ws.update_config("floor", {"asr": 0.096, "asr_all": 0.1, "knn_acc": 0.93, "protocol": "uniform", "run": "floor"})
    assert latest_finetune_result(ws, "posthoc", dift)["floor"]["asr"] == 0.096
    ws.update_config("floor", {"asr": 0.2, "asr_all": 0.2, "knn_acc": 0.93, "protocol": "paper", "run": "floor"})
    assert latest_finetune_result(ws, "posthoc", dift)["floor"] is None  # another protocol's floor is not this one's
