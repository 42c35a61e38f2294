"""Workspaces changed by another tool: refused on open with the file and the problem (issue 15, items 8-10)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

try:  # Python 3.11+; 3.10 has the tomli backport
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]

import numpy as np
import pytest
import tomli_w

from naviewer.errors import NaviewerError
from naviewer.workspace import Workspace
from naviewer.workspace.export import export_manifests
from naviewer.workspace.store import _encode_array

from common_kit import drop_review_check, sql
from workspace_kit import make_dataset


@pytest.fixture
def path(tmp_path: Path) -> Path:
    with Workspace.create(tmp_path / "ws", make_dataset(12)) as ws:
        n = ws.store.sample_count()
        ws.store.add_detection_pass("dift", {"density": np.linspace(0, 1, n), "flagged": np.arange(n) < 3}, {"k": 5})
        ws.store.set_review([0], "confirmed", "alice")
        ws.store.add_run("r1", "train", {"epochs": 1})
    return tmp_path / "ws"


def _sql(path: Path, *statements: str, params: tuple = ()) -> None:
    sql(path / "naviewer.sqlite", *statements, params=params)


def _without_check(path: Path) -> None:
    """Make the review table what a schema-1 store created before the CHECK was added looks like."""
    drop_review_check(path / "naviewer.sqlite")


def test_new_store_refuses_an_unknown_state_at_the_database_level(path: Path) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        _sql(path, "UPDATE review SET state='CONFIRMED' WHERE sample_id=0")


def test_unknown_review_state_written_by_another_tool_is_refused_on_open(path: Path) -> None:
    """'CONFIRMED' used to be silently ignored by export (only 'confirmed' is removed)."""
    _without_check(path)
    _sql(path, "UPDATE review SET state='CONFIRMED' WHERE sample_id=0")
    with pytest.raises(NaviewerError, match="unknown review state \\(sample 0: 'CONFIRMED'\\)") as info:
        Workspace.open(path)
    assert info.value.path == str(path / "naviewer.sqlite")


@pytest.mark.parametrize(
    "statement, message",
    [
        ("DELETE FROM samples WHERE id=4", "samples table is damaged: 11 rows with ids 0..11"),
        ("UPDATE samples SET label='x' WHERE id=2", "sample 2 has a value of the wrong type"),
        ("UPDATE samples SET label=7 WHERE id=2", "a sample has label 7, but workspace.toml names 3 classes"),
        ("INSERT INTO review VALUES(99, 'confirmed', 'mallory', 0)", "names sample 99, which does not exist"),
    ],
)
def test_damaged_tables_are_refused_on_open(path: Path, statement: str, message: str) -> None:
    _sql(path, statement)
    with pytest.raises(NaviewerError, match=message) as info:
        Workspace.open(path)
    assert info.value.path == str(path / "naviewer.sqlite")


def test_added_sample_rows_disagree_with_the_config(path: Path) -> None:
    _sql(path, "INSERT INTO samples VALUES(12, 'x.png', 'abc', 0)")
    with pytest.raises(NaviewerError, match="holds 13 samples but workspace.toml records 12"):
        Workspace.open(path)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.update(classes=5), r"\[classes\] must be a table, found classes = 5"),
        (lambda c: c["classes"].update(names=[1, 2, 3]), r"names must be a list of strings"),
        (lambda c: c["classes"].update(names="cat"), r"names must be a list of strings"),
        (lambda c: c.update(settings=[1]), r"\[settings\] must be a table"),
        (lambda c: c["dataset"].update(samples="12"), r"samples must be a whole number"),
        (lambda c: c.update(dataset="demo"), r"\[dataset\] must be a table"),
        (lambda c: c["dataset"].update(size=-1), r"\[dataset\] size must be a whole number, found -1"),
        (lambda c: c["dataset"].update(size="abc"), r"\[dataset\] size must be a whole number"),
        (lambda c: c.update(anchors={"kind": "bogus"}), r"\[anchors\] kind = 'bogus' is not one naviewer writes"),
        (lambda c: c.update(anchors={"per_class": -3}), r"\[anchors\] per_class must be a whole number >= 1"),
        (lambda c: c.update(anchors={"seed": "x"}), r"\[anchors\] seed must be a whole number"),
        (lambda c: c["classes"].update(names=[]), r"\[classes\] names is empty, but the samples are labelled"),
        (lambda c: c.update(floor={"asr": "high"}), r"\[floor\] asr must be a fraction between 0 and 1, found 'high'"),
        (lambda c: c.update(floor={"asr": 0.2, "knn_acc": 7.5}), r"\[floor\] knn_acc must be a fraction"),
        # [attack]'s keys of the wrong type opened, and detect and finetune ran on them (a fuzz, session 34)
        (lambda c: c.update(attack={"name": "patch", "target_class": "zero"}),
         r"\[attack\] target_class must be a whole number, found 'zero'"),
        (lambda c: c.update(attack={"name": "patch", "target_class": 99}),
         r"\[attack\] target_class is 99, but \[classes\] names \d+ classes"),
        (lambda c: c.update(attack={"name": "patch", "num_poisons": {"a": 1}}), r"\[attack\] num_poisons must be a whole"),
        (lambda c: c.update(attack={"name": 5}), r"\[attack\] name must be an attack's name in quotes"),
        (lambda c: c.update(attack={"name": "patch", "settings": "x"}), r"\[attack\] settings must be a table"),
        (lambda c: c.update(attack={"name": "patch", "poison_rate": 8}), r"\[attack\] poison_rate must be a fraction"),
    ],
)
def test_mistyped_sections_are_refused_on_open(path: Path, change, message: str) -> None:  # noqa: ANN001
    config = tomllib.loads((path / "workspace.toml").read_text())
    change(config)
    (path / "workspace.toml").write_text(tomli_w.dumps(config))
    with pytest.raises(NaviewerError, match=message) as info:
        Workspace.open(path)
    assert info.value.path == str(path / "workspace.toml")


def test_update_of_a_section_that_is_not_a_table_is_refused(path: Path) -> None:
    config = tomllib.loads((path / "workspace.toml").read_text())
    config["dift"] = 3
    with Workspace.open(path) as ws:  # edited while open (opening such a file is refused: [dift] must be a table)
        (path / "workspace.toml").write_text(tomli_w.dumps(config))
        with pytest.raises(NaviewerError, match="dift = 3"):  # read back under the lock: refused, named
            ws.update_config("dift", {"k": 1})
    with pytest.raises(NaviewerError, match=r"\[dift\] must be a table"):
        Workspace.open(path)


def test_garbled_pass_settings_and_run_config_name_the_row(path: Path) -> None:
    _sql(path, "UPDATE detection_passes SET settings_json='{not json'", "UPDATE runs SET config_json='[1, 2'")
    with Workspace.open(path) as ws:
        with pytest.raises(NaviewerError, match="the settings of detection pass 1 are garbled"):
            ws.store.passes()
        with pytest.raises(NaviewerError, match="the settings of run 'r1' are garbled"):
            ws.store.runs()
        with pytest.raises(NaviewerError, match="detection pass 1 are garbled"):
            export_manifests(ws, path.parent / "out")
    assert not (path.parent / "out").exists()


@pytest.mark.parametrize(
    "blob, message",
    [
        (_encode_array(np.zeros(5)), r"score 'density' has shape \(5,\), expected \(12,\)"),
        (_encode_array(np.zeros((12, 2))), r"has shape \(12, 2\)"),
        (b"garbage", "score 'density' is corrupted"),
        (_encode_array(np.array(["a"] * 12)), "not numbers"),
    ],
    ids=["short", "2d", "garbage", "strings"],
)
def test_score_blobs_of_the_wrong_shape_or_kind_are_refused(path: Path, blob: bytes, message: str) -> None:
    _sql(path, "UPDATE pass_arrays SET data=? WHERE name='density'", params=(blob,))
    with Workspace.open(path) as ws:
        with pytest.raises(NaviewerError, match=message) as info:
            export_manifests(ws, path.parent / "out")
    assert info.value.path == str(path / "naviewer.sqlite")
    assert not (path.parent / "out").exists()


def test_undo_refuses_an_audit_row_with_an_unknown_state(path: Path) -> None:
    _sql(path, "DROP TRIGGER audit_no_update")
    _sql(path, "CREATE TABLE a2 AS SELECT * FROM audit", "DROP TABLE audit", "ALTER TABLE a2 RENAME TO audit",
         "UPDATE audit SET old='BOGUS'")
    with Workspace.open(path) as ws:
        with pytest.raises(NaviewerError, match="cannot undo batch 1: .*'BOGUS'"):
            ws.store.undo_last()
        assert ws.store.review_states()[0] == "confirmed"


def test_opened_read_only_lists_and_refuses_writes(path: Path) -> None:
    with Workspace.open(path, read_only=True) as ws:
        assert ws.read_only and ws.store.review_states()[0] == "confirmed" and ws.store.passes()
        with pytest.raises(NaviewerError, match="open read-only"):
            ws.store.set_review([1], "rejected", "bob")
        result = export_manifests(ws, path.parent / "out")
    assert result.removed == 1
    with Workspace.open(path) as ws:
        assert not ws.read_only and ws.store.audit_count() == 1


def _listed_images(folder: Path, n: int, shade: int) -> tuple[Path, list[str]]:
    """``n`` 8 px PNGs of two classes under ``folder/img`` and their ``folder/train.txt`` (the lines returned)."""
    from PIL import Image

    (folder / "img").mkdir()
    lines = []
    for i in range(n):
        Image.new("RGB", (8, 8), (i * shade, 0, 0)).save(folder / "img" / f"{i}.png")
        lines.append(f"img/{i}.png {i % 2}")
    listing = folder / "train.txt"
    listing.write_text("\n".join(lines) + "\n")
    return listing, lines


def test_a_reordered_or_changed_source_is_refused_not_misbound(tmp_path):
    """Shuffling the file list behind a workspace (same length) used to pass: every id then pointed at another
    image. Now re-opening the dataset names the first sample that moved, and a replaced image too."""
    from PIL import Image

    from naviewer.data.sources import open_dataset
    from naviewer.errors import NaviewerError
    from naviewer.workspace import Workspace

    listing, lines = _listed_images(tmp_path, 12, 20)
    with Workspace.create(tmp_path / "ws", open_dataset(listing)) as ws:
        assert len(ws.dataset()) == 12
    swapped = lines[2:4][::-1] + lines[:2] + lines[4:]  # labels kept in place: only the keys move
    listing.write_text("\n".join(f"{a.split()[0]} {b.split()[1]}" for a, b in zip(swapped, lines)) + "\n")
    with Workspace.open(tmp_path / "ws") as ws, pytest.raises(NaviewerError, match="sample 0 was 'img/0.png'"):
        ws.dataset()
    listing.write_text("\n".join(lines) + "\n")
    Image.new("RGB", (8, 8), (0, 255, 0)).save(tmp_path / "img" / "5.png")  # same path, other pixels
    with Workspace.open(tmp_path / "ws") as ws:
        Workspace.IDENTITY_PIXELS = 12  # every sample of this small set
        try:
            with pytest.raises(NaviewerError, match=r"sample 5 \(img/5.png\) has other pixels"):
                ws.dataset()
        finally:
            Workspace.IDENTITY_PIXELS = 16


def test_a_pass_whose_arrays_were_deleted_is_named_not_read_as_no_flags(path: Path) -> None:
    """`DELETE FROM pass_arrays`: review read "0 flagged in 0 clusters" (the pass had flags) and export kept all (a sweep)."""
    _sql(path, "DELETE FROM pass_arrays")
    with Workspace.open(path) as ws, pytest.raises(NaviewerError, match="detection pass 1 has no score arrays"):
        ws.store.pass_scores(1)


@pytest.mark.parametrize("lazy", [True, False])
def test_two_images_swapped_in_place_are_named_by_a_pass_that_reads_every_image(tmp_path, monkeypatch, lazy):
    """Two files of one class swapped in place (same keys, same labels, same count) passed the open's sampled check
    and a detection pass scored each image under the other's id (a sweep, session 17). The passes that decode every
    image (training, embedding for detection) read it through checked_dataset, which names the first one."""
    from naviewer.data.sources import open_dataset
    from naviewer.data.store import ImageStore, streaming_store

    listing, _lines = _listed_images(tmp_path, 40, 6)
    with Workspace.create(tmp_path / "ws", open_dataset(listing)) as ws:
        pass
    a, b = tmp_path / "img" / "21.png", tmp_path / "img" / "23.png"  # both of class 1
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    monkeypatch.setattr(Workspace, "IDENTITY_PIXELS", 0)  # as when the open's sample misses them
    with Workspace.open(tmp_path / "ws") as ws:
        assert len(ws.dataset()) == 40  # the cheap check passes
        with pytest.raises(NaviewerError, match=r"sample 21 \(img/21.png\) has other pixels .* swapped") as info:
            if lazy:
                for _offset, _chunk in streaming_store(ws.checked_dataset(), decode_mb=0.001).chunks():
                    pass
            else:
                ImageStore.from_dataset(ws.checked_dataset())
        assert info.value.path == str(listing)
    a.write_bytes(data_a)
    b.write_bytes(data_b)
    with Workspace.open(tmp_path / "ws") as ws:  # restored: every image passes
        assert len(ImageStore.from_dataset(ws.checked_dataset())) == 40


def test_an_export_names_two_images_swapped_in_place(tmp_path, monkeypatch):
    """The export's check opened the dataset (16 images' pixels) and passed a swapped pair: its kept.txt then listed
    each image under the other's decision (session 18). Up to EXPORT_PIXEL_CHECK_MAX it now decodes every image."""
    from naviewer.data.sources import open_dataset
    from naviewer.workspace import export as export_module

    (tmp_path / "data").mkdir()
    listing, _lines = _listed_images(tmp_path / "data", 40, 6)
    with Workspace.create(tmp_path / "ws", open_dataset(listing)) as ws:
        pass
    a, b = tmp_path / "data" / "img" / "21.png", tmp_path / "data" / "img" / "23.png"
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    monkeypatch.setattr(Workspace, "IDENTITY_PIXELS", 0)  # as when the open's sample misses them
    with Workspace.open(tmp_path / "ws") as ws:
        with pytest.raises(NaviewerError, match=r"sample 21 \(img/21.png\) has other pixels.*--unverified"):
            export_manifests(ws, tmp_path / "out", verify=True)
        assert not (tmp_path / "out").exists()
        export_manifests(ws, tmp_path / "unchecked", verify=False)  # the analyst's explicit choice
        monkeypatch.setattr(export_module, "EXPORT_PIXEL_CHECK_MAX", 39)  # above the limit: the open's check alone
        export_manifests(ws, tmp_path / "large", verify=True)
    a.write_bytes(data_a)
    b.write_bytes(data_b)
    with Workspace.open(tmp_path / "ws") as ws:
        assert export_manifests(ws, tmp_path / "out", verify=True).kept == 40


def test_an_in_memory_source_is_checked_row_by_row_when_its_array_is_taken() -> None:
    from naviewer.data.base import pixel_hash
    from naviewer.data.store import streaming_store
    from naviewer.workspace.verified import VerifiedDataset

    data = make_dataset(30)
    hashes = [pixel_hash(data.image(i)) for i in range(30)]
    assert len(streaming_store(VerifiedDataset(data, hashes, "cifar"))) == 30
    hashes[7], hashes[9] = hashes[9], hashes[7]
    with pytest.raises(NaviewerError, match=r"sample 7 \(class\d/img_00007.png\) has other pixels"):
        streaming_store(VerifiedDataset(data, hashes, "cifar"))
    assert VerifiedDataset(data, [""] * 30, "old store").image(7).shape == (8, 8, 3)  # no hash registered: no check


def test_a_folder_inside_a_workspace_names_the_workspace_to_open(path: Path) -> None:
    """Opening WS/dataset by mistake said only "not a naviewer workspace" (newcomer session 18)."""
    (path / "dataset" / "images").mkdir(parents=True)
    with pytest.raises(NaviewerError, match=f"it lies inside the workspace {path}: open that folder"):
        Workspace.open(path / "dataset" / "images")
    with pytest.raises(NaviewerError) as info:
        Workspace.open(path.parent / "elsewhere")
    assert "lies inside" not in str(info.value)


def test_an_image_deleted_from_the_folder_is_named(tmp_path):
    """"the dataset changed: it was recorded with 48 samples but now has 47" named the folder and the count, and with
    50,000 images nobody can tell which went (a bad-input probe, session 26): the message names it."""
    from PIL import Image

    from naviewer.data.sources import open_dataset

    for label in ("cat", "dog"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(6):
            Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(tmp_path / "imgs" / label / f"{i}.png")
    with Workspace.create(tmp_path / "ws", open_dataset(tmp_path / "imgs")) as ws:
        assert len(ws.dataset()) == 12
    (tmp_path / "imgs" / "dog" / "4.png").unlink()
    from naviewer.workspace.store import WorkspaceStore

    def one_query_of_every_id(*_a, **_k):  # past SQLite's parameter limit on a large set (a review, session 27)
        raise AssertionError("the registered keys are read in windows, not one IN (...) of every id")

    with Workspace.open(tmp_path / "ws") as ws, pytest.raises(NaviewerError) as caught:
        original, WorkspaceStore.sample_values = WorkspaceStore.sample_values, one_query_of_every_id
        try:
            ws._samples_checked = True
            ws.dataset()
        finally:
            WorkspaceStore.sample_values = original
    assert "now has 11" in caught.value.message and "missing: dog/4.png" in caught.value.message
    (tmp_path / "imgs" / "dog" / "4.png").mkdir()  # replaced by a folder
    Image.new("RGB", (8, 8)).save(tmp_path / "imgs" / "dog" / "9.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "imgs" / "cat" / "7.png")
    with Workspace.open(tmp_path / "ws") as ws, pytest.raises(NaviewerError) as caught:
        ws.dataset()
    assert "missing: dog/4.png; new: cat/7.png, dog/9.png" in caught.value.message, caught.value.message


def test_a_workspace_is_finished_before_it_appears_and_dead_staging_folders_go(tmp_path):
    """`naviewer new` killed after the staging folder was renamed left a workspace without [anchors], [evaluation]
    and [dift] that opened without a word; killed before, its hidden staging folder stayed for ever (a bad-input
    probe, session 27). The sections are written in the staging folder, and the next creation sweeps the staging
    folders of processes that are gone (a live one's stays)."""
    import os

    from naviewer.workflows.workspace_setup import create_workspace

    seen = {}

    def finish(staged):
        seen["inside"] = staged.path.name
        assert not (tmp_path / "ws").exists()  # nothing at the final path yet
        raise NaviewerError("the anchors cannot be drawn")

    with pytest.raises(NaviewerError, match="the anchors cannot be drawn"):
        Workspace.create(tmp_path / "ws", make_dataset(12), finish=finish)
    assert seen["inside"].startswith(".ws.creating-") and not (tmp_path / "ws").exists()
    assert not list(tmp_path.glob(".ws.creating-*"))

    import socket

    dead = tmp_path / ".ws.creating-999999999-0badc0de"
    live = tmp_path / f".ws.creating-{os.getppid()}-0badc0de"
    elsewhere = tmp_path / ".ws.creating-999999998-0badc0de"  # another machine's on a shared disk: its PID means nothing
    for folder, host in ((dead, socket.gethostname()), (live, socket.gethostname()), (elsewhere, "another-host")):
        (folder / "embeddings").mkdir(parents=True)
        (folder / ".creating-host").write_text(host)
    listing, _lines = _listed_images(tmp_path, 12, 20)
    with create_workspace(tmp_path / "ws", str(listing)) as ws:
        sections = ws.config
    assert {"anchors", "evaluation", "dift"} <= set(sections), sorted(sections)
    assert not dead.exists() and live.exists() and elsewhere.exists()
    assert not (tmp_path / "ws" / ".creating-host").exists()
    other = tmp_path / ".wn.creating-999999997-0badc0de"  # another name's, killed: `new ws2` sweeps it too (session 28)
    (other / "embeddings").mkdir(parents=True)
    (other / ".creating-host").write_text(socket.gethostname())
    with create_workspace(tmp_path / "ws2", str(listing)):
        pass
    assert not other.exists() and live.exists() and elsewhere.exists()
