"""Manifest export: content, all-or-nothing commit (cancel, error, SIGKILL), and the CLI."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from common_kit import sigkill_after_line
from naviewer.errors import JobCancelled
from naviewer.jobs import JobContext, RecordingReporter
from naviewer.workspace import Workspace
from naviewer.workspace import export as export_module
from naviewer.errors import NaviewerError
from naviewer.workspace.export import MANIFEST_NAMES, export_manifests, open_kept_dataset

MANIFESTS = {"kept.txt", "classes.txt", "samples.csv", "README.txt", "provenance.json"}


def _reviewed(ws: Workspace) -> Workspace:
    """Flags on 0..5; 0,1 confirmed by alice, 2 rejected by bob, 3 'later', 4,5 unreviewed; 6 confirmed unflagged."""
    n = ws.store.sample_count()
    density = np.linspace(1.0, 0.0, n)
    flagged = np.arange(n) < 6
    ws.store.add_detection_pass("dift", {"density": np.zeros(n)}, {"old": True})
    ws.store.add_detection_pass(
        "dift",
        {"density": density, "rank": np.arange(n), "flagged": flagged, "mindist": np.where(flagged, 0.25, np.nan)},
        {"k": 10},
        run="simclr",
        epoch=7,
    )
    ws.store.set_review([0, 1, 6], "confirmed", "alice")
    ws.store.set_review([2], "rejected", "bob")
    ws.store.set_review([3], "later", "bob")
    return ws


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_export_content(ws, tmp_path: Path) -> None:
    _reviewed(ws)
    ws.update_config("encoder", {"arch": "resnet18", "sha256": "abc"})
    result = export_manifests(ws, tmp_path / "out")
    keys = ws.store.samples()["source_key"]
    labels = ws.store.samples()["label"]
    assert set(os.listdir(tmp_path / "out")) == MANIFESTS
    kept_lines = result.kept_path.read_text().splitlines()
    expected = [f"{keys[i]} {labels[i]}" for i in range(40) if i not in (0, 1, 6)]
    assert kept_lines == expected
    assert (result.total, result.kept, result.removed, result.unreviewed_flags) == (40, 37, 3, 3)

    rows = _read_csv(result.samples_path)
    assert len(rows) == 40 and rows[0]["source_key"] == keys[0]
    assert rows[0]["review"] == "confirmed" and rows[0]["kept"] == "0" and rows[0]["flagged"] == "1"
    assert rows[3]["review"] == "later" and rows[3]["kept"] == "1"
    assert rows[10]["mindist"] == "" and rows[0]["mindist"] == "0.25" and rows[0]["density"] == "1.0"
    assert rows[5]["rank"] == "5" and rows[5]["posterior"] == "" and rows[5]["hash"] == ws.store.samples()["hash"][5]

    prov = json.loads(result.provenance_path.read_text())
    assert prov["dataset"]["content_hash"] == ws.config["dataset"]["content_hash"]
    assert prov["settings"] == {"seed": 1} and prov["config"]["encoder"]["arch"] == "resnet18"
    assert prov["detection_pass"]["settings"] == {"k": 10} and prov["detection_pass"]["epoch"] == 7
    assert prov["detection_pass"]["epoch_shown"] == 8  # as the window says it (33 read for "epoch 34"; session 30)
    assert prov["counts"] == {
        "samples": 40, "kept": 37, "removed": 3, "removed_confirmed": 3, "flagged": 6, "unreviewed_flags": 3,
        "unreviewed_flags_dropped": 0,
        "undecided_flags_other_passes": 0,
    }  # fmt: skip
    assert prov["review"]["per_reviewer"] == {"alice": {"confirmed": 3}, "bob": {"rejected": 1, "later": 1}}
    assert prov["review"]["audit_length"] == 5
    assert prov["files"]["kept.txt"]["sha256"] == hashlib.sha256(result.kept_path.read_bytes()).hexdigest()
    assert prov["files"]["samples.csv"]["sha256"] == hashlib.sha256(result.samples_path.read_bytes()).hexdigest()
    for name in ("classes.txt", "README.txt"):
        assert prov["files"][name]["sha256"] == hashlib.sha256((tmp_path / "out" / name).read_bytes()).hexdigest()

    # classes.txt: line i = name of class i; the README says the in-memory keys are not files
    assert result.classes_path.read_text().splitlines() == ["cat", "dog", "bird"]
    readme = result.readme_path.read_text()
    assert "NOT file paths" in readme and "built in memory" in readme and "37 of 40 samples kept" in readme
    assert not result.entries_are_paths and "not file paths: see README.txt" in result.summary()
    assert prov["kept_dataset"] is None
    with pytest.raises(NaviewerError, match="no re-openable dataset"):
        open_kept_dataset(tmp_path / "out")


def test_manifest_names_end_with_the_commit_marker() -> None:
    assert set(MANIFEST_NAMES) == MANIFESTS and MANIFEST_NAMES[-1] == "provenance.json"


def test_class_lines_never_shift() -> None:
    assert export_module._class_lines(["a b", "", "x\ny", "  z "]) == ["a b", "1", "x y", "z"]


def test_cifar_export_says_keys_and_rebuilds_the_cleaned_set(tmp_path: Path, cifar10_root: Path) -> None:
    """CIFAR keys are pickle rows: the README says so and open_kept_dataset rebuilds exactly the kept images."""
    from naviewer.data import open_dataset

    source = open_dataset(cifar10_root, split="test")
    removed = [0, 5, 17]
    with Workspace.create(tmp_path / "ws", source) as ws:
        ws.store.set_review(removed, "confirmed", "alice")
        result = export_manifests(ws, tmp_path / "out")
    kept_ids = [i for i in range(len(source)) if i not in removed]
    assert result.kept == len(kept_ids) and not result.entries_are_paths
    readme = result.readme_path.read_text()
    assert "NOT file paths" in readme and "row <row> of the official cifar10 pickle" in readme
    assert str(source.root) in readme and "open_kept_dataset" in readme
    assert result.classes_path.read_text().splitlines() == source.class_names
    first = result.kept_path.read_text().splitlines()[0]
    assert first == f"test_batch/1 {source.labels[1]}"

    kept = open_kept_dataset(result.out_dir)
    assert len(kept) == len(kept_ids) and kept.class_names == source.class_names
    np.testing.assert_array_equal(kept.labels, source.labels[kept_ids])
    assert [kept.source_key(k) for k in (0, 3, len(kept) - 1)] == [source.source_key(i) for i in
                                                                   (kept_ids[0], kept_ids[3], kept_ids[-1])]
    np.testing.assert_array_equal(kept.image(3), source.image(kept_ids[3]))


def test_demo_export_explains_digit_keys(tmp_path: Path) -> None:
    from naviewer.data import open_dataset

    source = open_dataset("demo", split="test")
    with Workspace.create(tmp_path / "ws", source) as ws:
        ws.store.set_review([2], "confirmed", "alice")
        result = export_manifests(ws, tmp_path / "out")
    readme = result.readme_path.read_text()
    assert "digits/<i>" in readme and "load_digits" in readme and "NOT file paths" in readme
    kept = open_kept_dataset(result.out_dir)
    assert len(kept) == len(source) - 1 and kept.source_key(2) == source.source_key(3)


def test_drop_unreviewed_flags(ws, tmp_path: Path) -> None:
    _reviewed(ws)
    result = export_manifests(ws, tmp_path / "out", drop_unreviewed_flags=True)
    assert result.kept == 40 - 3 - 3  # 3, 4, 5 are flagged and undecided
    # the counts add up everywhere: kept + removed = samples, the removed split into confirmed and dropped
    assert result.removed == 6 and result.confirmed == 3 and result.dropped == 3
    assert "6 removed: 3 confirmed as poisons + 3 undecided flags" in result.summary()
    counts = json.loads(result.provenance_path.read_text())["counts"]
    assert counts["kept"] + counts["removed"] == 40 and counts["removed_confirmed"] == 3
    assert "34 of 40 samples kept; 6 removed: 3 because a reviewer confirmed" in result.readme_path.read_text()
    keys = ws.store.samples()["source_key"]
    kept = result.kept_path.read_text()
    assert keys[2] in kept and all(keys[i] not in kept for i in (0, 1, 3, 4, 5, 6))


def test_the_export_is_of_the_pass_reviewed_not_the_latest(ws, tmp_path: Path) -> None:
    """The window exported the review of pass 2 but recorded (and dropped the undecided flags of) a later post-hoc
    pass (a newcomer): the pass is the one given; an unknown one is named."""
    _reviewed(ws)
    n = ws.store.sample_count()
    later = ws.store.add_detection_pass("kdist", {"score": np.zeros(n), "flagged": np.arange(n) >= n - 3}, {})
    assert ws.store.latest_pass_id() == later
    result = export_manifests(ws, tmp_path / "a", pass_id=2, drop_unreviewed_flags=True)
    assert result.pass_id == 2 and json.loads(result.provenance_path.read_text())["detection_pass"]["id"] == 2
    assert result.unreviewed_flags == 3 and result.kept == n - 6  # pass 2's flags 3, 4, 5 dropped; 0, 1, 6 confirmed
    assert export_manifests(ws, tmp_path / "b", drop_unreviewed_flags=True).pass_id == later  # the default
    with pytest.raises(NaviewerError, match="no detection pass 99"):
        export_manifests(ws, tmp_path / "c", pass_id=99)


def test_export_without_detection_pass_goes_to_timestamped_folder(ws) -> None:
    ws.store.set_review([0], "confirmed", "alice")
    result = export_manifests(ws)
    assert result.out_dir.parent == ws.path / "exports" and result.pass_id is None
    assert "no detection pass yet, so nothing was flagged" in result.summary()
    rows = _read_csv(result.samples_path)
    assert rows[1]["density"] == "" and rows[1]["flagged"] == "" and rows[0]["kept"] == "0"
    assert export_manifests(ws).out_dir != result.out_dir


def _cancelling_context(after: int) -> JobContext:
    ctx = JobContext()

    class CancelMidway(RecordingReporter):
        def progress(self, done, total, message):  # noqa: ANN001
            super().progress(done, total, message)
            if len(self.progresses) >= after:
                ctx.cancel()

    ctx.reporter = CancelMidway()
    return ctx


@pytest.mark.parametrize("after", [1, 3, 6])
def test_cancelled_export_leaves_no_partial_files(ws, tmp_path: Path, after: int) -> None:
    _reviewed(ws)
    out = tmp_path / "out"
    with pytest.raises(JobCancelled):
        export_manifests(ws, out, ctx=_cancelling_context(after), chunk_rows=8)
    assert not out.exists()  # the folder it made is gone too


def test_error_after_first_files_keeps_previous_export(ws, tmp_path: Path, monkeypatch) -> None:
    _reviewed(ws)
    out = tmp_path / "out"
    export_manifests(ws, out)
    before = {name: (out / name).read_bytes() for name in MANIFESTS}
    ws.store.set_review([10], "confirmed", "alice")

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003
        raise OSError("disk full")

    monkeypatch.setattr(export_module, "_provenance", broken)
    with pytest.raises(NaviewerError, match="cannot write the manifests: disk full; nothing was exported"):
        export_manifests(ws, out)
    assert set(os.listdir(out)) == MANIFESTS
    assert {name: (out / name).read_bytes() for name in MANIFESTS} == before


_CHILD = textwrap.dedent(
    """
    import sys, time
    from naviewer.jobs import JobContext
    from naviewer.workspace import Workspace
    from naviewer.workspace.export import export_manifests

    class Stall:
        def progress(self, done, total, message):
            if done > 0:
                print("midway", flush=True)
                time.sleep(120)
        def metric(self, values): pass
        def event(self, kind, data): pass

    ws = Workspace.open(sys.argv[1])
    export_manifests(ws, sys.argv[2], ctx=JobContext(Stall()), chunk_rows=4)
    """
)


def test_killed_export_leaves_no_manifest(ws, tmp_path: Path) -> None:
    _reviewed(ws)
    out = tmp_path / "out"
    sigkill_after_line(_CHILD, str(ws.path), str(out), line="midway")
    left = set(os.listdir(out))
    assert not (left & MANIFESTS)
    assert all(name.startswith(".") for name in left)  # only the dead process's hidden temp file
    export_manifests(ws, out)  # a later export cleans the stale temp up
    assert set(os.listdir(out)) == MANIFESTS


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "naviewer", "export", *args], capture_output=True, text=True, timeout=120)


def test_cli_export(ws, tmp_path: Path) -> None:
    _reviewed(ws)
    ws.close()
    done = _cli(str(ws.path), "--out", str(tmp_path / "out"), "--drop-unreviewed-flags")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == [done.stdout.strip()]
    assert "34 kept" in done.stdout and "6 removed: 3 confirmed as poisons + 3 undecided flags" in done.stdout
    assert set(os.listdir(tmp_path / "out")) == MANIFESTS


def test_cli_bad_workspace_is_one_line_error(tmp_path: Path) -> None:
    missing = _cli(str(tmp_path / "nowhere"))
    assert missing.returncode != 0
    assert missing.stderr.strip().count("\n") == 0 and "nowhere" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "workspace.toml").write_text("[workspace\n")
    garbled = _cli(str(tmp_path / "bad"))
    assert garbled.returncode != 0 and "workspace.toml" in garbled.stderr
    assert garbled.stderr.strip().count("\n") == 0


def test_source_keys_needing_quotes_round_trip(tmp_path: Path) -> None:
    from naviewer.data.base import ArrayDataset

    keys = ['a,b.png', 'say "hi".png', "plain.png"]
    images = np.zeros((3, 4, 4, 3), dtype=np.uint8)
    with Workspace.create(tmp_path / "ws", ArrayDataset(images, [0, 1, 2], ["x", "y", "z"], source_keys=keys)) as ws:
        result = export_manifests(ws, tmp_path / "out")
    assert [row["source_key"] for row in _read_csv(result.samples_path)] == keys
    assert result.kept_path.read_text().splitlines() == ['a,b.png 0', 'say "hi".png 1', "plain.png 2"]


def test_kept_list_of_file_list_workspace_reopens_the_kept_images(tmp_path: Path) -> None:
    """kept.txt of a file-list dataset lists paths that open_dataset resolves, not root-relative keys."""
    from PIL import Image

    from naviewer.data import open_dataset
    from naviewer.data.filelist import write_file_list

    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (6, 5, 5, 3), dtype=np.uint8)
    labels = [0, 1, 0, 1, 0, 1]
    data_dir = tmp_path / "data"  # a list whose keys are relative to its own folder, not to the export
    keys = []
    for i, image in enumerate(images):
        key = f"c{labels[i]}/img {i}.png"  # a space in the path: the label is the last token
        (data_dir / key).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(data_dir / key)
        keys.append(key)
    source = open_dataset(write_file_list(data_dir / "train.txt", keys, labels))
    with Workspace.create(tmp_path / "ws", source) as ws:
        ws.store.set_review([1, 4], "confirmed", "alice")
        result = export_manifests(ws)  # default: <ws>/exports/<timestamp>/
    assert result.out_dir.parent == tmp_path / "ws" / "exports"
    kept_ids = [0, 2, 3, 5]
    reopened = open_dataset(result.kept_path, root=tmp_path)
    assert len(reopened) == len(kept_ids)
    assert [reopened.source_key(k) for k in range(len(reopened))] == [f"data/{keys[i]}" for i in kept_ids]
    np.testing.assert_array_equal(reopened.labels, np.asarray(labels)[kept_ids])
    for k, i in enumerate(kept_ids):
        np.testing.assert_array_equal(reopened.image(k), images[i])
    kept_paths = json.loads(result.provenance_path.read_text())["kept_paths"]
    assert kept_paths["entries"] == "absolute_paths"
    assert Path(kept_paths["dataset_root"]) == data_dir.resolve()
    # classes.txt sits beside kept.txt, so the list reader names the classes; the README gives the root
    assert reopened.class_names == ["0", "1"] == result.classes_path.read_text().splitlines()
    assert data_dir.resolve().as_posix() in result.readme_path.read_text() and result.entries_are_paths
    assert "see README" not in result.summary()
    rebuilt = open_kept_dataset(result.out_dir)
    assert [rebuilt.source_key(k) for k in range(len(rebuilt))] == [keys[i] for i in kept_ids]
    # the source keys themselves stay in samples.csv
    assert [row["source_key"] for row in _read_csv(result.samples_path)] == keys


def test_kept_list_of_sources_without_files_keeps_source_keys(ws, tmp_path: Path) -> None:
    result = export_manifests(ws, tmp_path / "out")
    kept_paths = json.loads(result.provenance_path.read_text())["kept_paths"]
    assert kept_paths["entries"] == "source_keys" and "not file paths" in kept_paths["note"]
    assert export_module._kept_path_rule({"kind": "demo", "split": "train"})[0] is None
    assert export_module._kept_path_rule({"kind": "cifar10", "root": "/x", "split": "train"})[0] is None
    root, record = export_module._kept_path_rule({"kind": "image-folder", "root": str(tmp_path)})
    assert root == tmp_path and record["dataset_root"] == tmp_path.as_posix()


def test_export_streams_the_rows_in_chunks_with_the_same_bytes(tmp_path: Path, monkeypatch) -> None:
    """Issue 17 item 4: the rows come from the store a chunk at a time (never ``samples()``: every key as a
    Python string); any chunk size writes the same files, and provenance.json is exactly json.dumps' text
    with the kept ids written into it chunk by chunk."""
    from naviewer.data import open_dataset
    from naviewer.workspace.store import WorkspaceStore

    def no_whole_read(*args, **kwargs):  # noqa: ANN002, ANN003
        raise AssertionError("the export read every sample row at once")

    with Workspace.create(tmp_path / "ws", open_dataset("demo", split="test")) as ws:
        _reviewed(ws)
        monkeypatch.setattr(WorkspaceStore, "samples", no_whole_read)
        monkeypatch.setattr(WorkspaceStore, "review_states", no_whole_read)
        results = [export_manifests(ws, tmp_path / f"out{chunk}", chunk_rows=chunk) for chunk in (1, 7, 1_000_000)]
    n = results[0].total
    for result in results[1:]:
        for name in ("kept.txt", "samples.csv", "classes.txt"):
            assert (result.out_dir / name).read_bytes() == (results[0].out_dir / name).read_bytes()
    for result in results:
        text = result.provenance_path.read_text(encoding="utf-8")
        record = json.loads(text)
        assert text == json.dumps(record, indent=2) + "\n"
        kept_ids = [i for i in range(n) if i not in (0, 1, 6)]
        assert record["kept_dataset"]["indices"] == kept_ids and record["kept_dataset"]["size"] == len(kept_ids)
        assert record["review"]["states"] == {"confirmed": 3, "later": 1, "rejected": 1, "unreviewed": n - 5}
        assert len(_read_csv(result.samples_path)) == n
    everything_removed = tmp_path / "none"
    with Workspace.open(tmp_path / "ws") as ws:
        ws.store.set_review(list(range(n)), "confirmed", "alice")
        result = export_manifests(ws, everything_removed, chunk_rows=5)
    text = result.provenance_path.read_text(encoding="utf-8")
    assert '"indices": []' in text and text == json.dumps(json.loads(text), indent=2) + "\n"
    assert result.kept_path.read_bytes() == b"" and result.kept == 0


def test_a_key_forged_in_a_later_chunk_leaves_nothing(tmp_path: Path, dataset) -> None:
    """The rows are checked as they are written: a bad row past the first chunk stops the export and
    nothing is left, the folder it made included."""
    with Workspace.create(tmp_path / "ws", dataset) as ws:
        pass
    with sqlite3.connect(tmp_path / "ws" / "naviewer.sqlite") as conn:
        conn.execute("UPDATE samples SET source_key=? WHERE id=33", ("evil\nINJECTED_LINE 7\nx.png",))
        conn.execute("UPDATE samples SET hash=? WHERE id=37", (b"\x00\x01",))
    out = tmp_path / "out"
    with Workspace.open(tmp_path / "ws") as ws:
        with pytest.raises(NaviewerError, match=r"sample 33 cannot be exported"):
            export_manifests(ws, out, chunk_rows=4)
        with sqlite3.connect(tmp_path / "ws" / "naviewer.sqlite") as conn:
            conn.execute("UPDATE samples SET source_key='ok.png' WHERE id=33")
        with pytest.raises(NaviewerError, match=r"sample 37: its hash is not text \(bytes\)"):
            export_manifests(ws, out, chunk_rows=4)
    assert not out.exists()


def test_export_progress_only_moves_forward(ws, tmp_path: Path) -> None:
    _reviewed(ws)
    reporter = RecordingReporter()
    export_manifests(ws, tmp_path / "out", ctx=JobContext(reporter), chunk_rows=7)
    done = [p[0] for p in reporter.progresses]
    total = reporter.progresses[-1][1]
    assert done == sorted(done) and done[-1] == total == 40 + 37 and len(done) >= 2 * (40 // 7)


def test_an_export_into_the_workspace_or_its_dataset_is_refused(tmp_path: Path) -> None:
    """Into WS/dataset it replaced the dataset's classes.txt, into a class folder it added files every later open
    called "not images", into WS it mixed with the workspace's files (all rc 0; a sweep)."""
    from PIL import Image

    from naviewer.data import open_dataset

    for name in ("cat", "dog"):
        (tmp_path / "images" / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / "images" / name / f"{i}.png")
    with Workspace.create(tmp_path / "ws", open_dataset(tmp_path / "images")) as ws:
        for out in (tmp_path / "ws", tmp_path / "ws" / "runs", tmp_path / "images", tmp_path / "images" / "cat" / "x"):
            with pytest.raises(NaviewerError, match="would go into"):
                export_manifests(ws, out)
            assert not (out / "kept.txt").exists()
        assert export_manifests(ws).out_dir.parent == tmp_path / "ws" / "exports"  # the default stays
        assert export_manifests(ws, tmp_path / "out").kept == 6


def test_an_exports_kept_txt_opens_as_a_dataset_as_it_is(tmp_path: Path) -> None:
    """naviewer train --dataset EXPORT/kept.txt refused every line as "outside the dataset root": the absolute paths
    lie under the dataset root its provenance.json names, which is the list's root now (session 18)."""
    from PIL import Image

    from naviewer.data import open_dataset

    for i in range(6):
        (tmp_path / "img" / str(i % 2)).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (i * 30, 0, 0)).save(tmp_path / "img" / str(i % 2) / f"{i}.png")
    with Workspace.create(tmp_path / "ws", open_dataset(tmp_path / "img")) as ws:
        ws.store.set_review([1], "confirmed", "alice")
        result = export_manifests(ws, tmp_path / "out")
    kept = open_dataset(result.out_dir / "kept.txt")
    assert len(kept) == 5 and kept.class_names == ["0", "1"]
    (tmp_path / "elsewhere").mkdir()  # any other list keeps its own folder as its root
    (tmp_path / "elsewhere" / "kept.txt").write_text((result.out_dir / "kept.txt").read_text())
    with pytest.raises(NaviewerError, match="outside the dataset root"):
        open_dataset(tmp_path / "elsewhere" / "kept.txt")
    record = result.out_dir / "provenance.json"  # a damaged record beside the list is named with the refusal
    for damage, words in ((b"{not json", "is not valid JSON"), (b'{"kept_paths": 3}', "does not name"),
                          (b'{"naviewer_version": "x", "kept_paths": {"dataset_root": "/no/such/root"}}',
                           "not a folder here"), (b"[]", "does not name"), (b'"x"', "does not name")):
        record.write_bytes(damage)
        with pytest.raises(NaviewerError, match="outside the dataset root") as caught:
            open_dataset(result.out_dir / "kept.txt")
        assert "provenance.json" in str(caught.value) and words in str(caught.value)


def test_undecided_flags_of_other_passes_are_counted_and_said(ws, tmp_path: Path, capsys) -> None:
    """The export's "undecided flags" are the reviewed pass's: a newcomer read "0 undecided flags kept" while three
    of their poisons were undecided on other passes (session 28). Those are counted, per pass, and said."""
    from naviewer.cli import main
    from naviewer.workspace.export import undecided_in_other_passes

    _reviewed(ws)
    n = ws.store.sample_count()
    other = np.zeros(n, dtype=bool)
    other[[1, 4, 7, 8, 9]] = True  # 1 confirmed, 4 this pass's own flag: neither counts; 7, 8, 9 do
    patch = ws.store.add_detection_pass("patchsearch", {"score": np.zeros(n), "flagged": other}, {})
    ws.store.set_review([9], "rejected", "bob")
    dift = 2
    assert undecided_in_other_passes(ws.store, dift) == (2, ((patch, "patchsearch", 2),))
    result = export_manifests(ws, tmp_path / "out", pass_id=dift)
    assert (result.undecided_elsewhere, result.unreviewed_flags) == (2, 3)
    assert f"2 more samples flagged by other passes are undecided and kept (per pass, its undecided flags this pass did not flag: pass {patch} patchsearch: 2)" in result.summary()
    provenance = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert provenance["counts"]["undecided_flags_other_passes"] == 2
    ws.close()
    assert main(["export", str(tmp_path / "ws"), "--out", str(tmp_path / "out2"), "--pass", str(dift)]) == 0
    assert "2 more samples flagged by other passes" in capsys.readouterr().out


def test_a_killed_default_exports_leftovers_go_with_the_next_export(ws, tmp_path: Path) -> None:
    """SIGKILL during `export WS` left exports/<time>/ holding only hidden temporaries; the next export went to a new
    time stamp, so nothing ever removed them (a bad-input probe, session 28)."""
    import os

    from naviewer.workspace.export import default_out_dir

    _reviewed(ws)
    dead = ws.exports_dir / "20260101-000000"
    live = ws.exports_dir / "20260101-000001"
    done = ws.exports_dir / "20260101-000002"
    for folder in (dead, live, done):
        folder.mkdir(parents=True)
    (dead / ".kept.tmp-999999999-0badc0de.txt").write_text("x")
    (live / f".kept.tmp-{os.getppid()}-0badc0de.txt").write_text("x")  # an export running now
    (done / "kept.txt").write_text("a 0\\n")
    out = default_out_dir(ws)
    assert not dead.exists() and live.exists() and done.exists() and not out.exists()
    export_manifests(ws)
    assert len([f for f in ws.exports_dir.iterdir()]) == 3


def test_an_unreadable_entry_that_is_the_root_itself_is_named_by_its_name(tmp_path):
    """A file list that lists itself named the bad entry "." (a bad-input probe, session 30)."""
    from naviewer.workspace.workspace import _relative

    assert _relative(tmp_path / "list.txt", tmp_path / "list.txt") == "list.txt"
    assert _relative(tmp_path / "a" / "b.png", tmp_path) == "a/b.png"


def test_one_export_at_a_time_writes_into_a_folder(ws, tmp_path: Path) -> None:
    """Two exports into one --out at once both said "exported" (no --overwrite), one survived, and once the folder held
    one's kept.txt beside the other's provenance.json (a bad-input probe, session 30): the second is refused while the
    first writes, and without ``replace`` an earlier export is refused under the lock too."""
    import fcntl
    import os

    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another export writing here now
        with pytest.raises(NaviewerError, match="another export is writing into this folder now"):
            export_manifests(ws, out)
    finally:
        os.close(fd)
    assert list(out.iterdir()) == []
    export_manifests(ws, out)  # no lock file left among the manifests
    assert not any(p.name.startswith(".") for p in out.iterdir())
    with pytest.raises(NaviewerError, match="holds an earlier export"):
        export_manifests(ws, out, replace=False)
    export_manifests(ws, out, replace=True)


def test_an_export_through_a_link_to_the_dataset_or_workspace_is_refused(tmp_path: Path) -> None:
    """--out LINK/x, LINK to the image folder, wrote the manifests into the dataset (a new workspace on it then had a
    class "x"), while --out FOLDER/x was refused (a bad-input probe, session 30): links are followed."""
    import numpy as np
    from PIL import Image

    from naviewer.data.sources import open_dataset

    for c in ("cat", "dog"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
    (tmp_path / "link").symlink_to(tmp_path / "imgs")
    (tmp_path / "wslink").symlink_to(tmp_path / "ws")
    with Workspace.create(tmp_path / "ws", open_dataset(tmp_path / "imgs")) as ws:
        with pytest.raises(NaviewerError, match="would go into the dataset it describes"):
            export_manifests(ws, tmp_path / "link" / "x")
        with pytest.raises(NaviewerError, match="would go into the workspace itself"):
            export_manifests(ws, tmp_path / "wslink" / "x")
    assert not (tmp_path / "imgs" / "x").exists() and not (tmp_path / "ws" / "x").exists()



def test_other_passes_undecided_flags_are_counted_as_distinct_samples_where_they_overlap() -> None:
    """"56 more samples ... (pass 1 kdist: 11, pass 2 lid: 10, pass 5 dbscan: 46, pass 6 kdist: 11)" added to 78
    (a newcomer, session 32): where passes share samples the count says distinct, and how each pass's is counted."""
    from naviewer.workspace.export import elsewhere_text

    text = elsewhere_text(56, [(1, "kdist", 11), (2, "lid", 10), (5, "dbscan", 46), (6, "kdist", 11)])
    assert text.startswith("56 more distinct samples flagged by other passes are undecided")
    assert "a sample flagged by several counted in each" in text
    assert "distinct" not in elsewhere_text(4, [(3, "lid", 4)])
