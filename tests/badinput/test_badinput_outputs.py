"""Output files (``--report``, ``--json``, ``--preview``, ``--out ''``): never over a file naviewer did not write as that
output (a sweep found ``review --report WS/workspace.toml``, ``eval --json`` on a dataset image, ``craft --preview`` on
a dataset image and ``bench detect --json WS/workspace.toml`` all exiting 0 with the file destroyed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from badinput_kit import assert_refused, image_tree, run_cli, tiny_workspace, unchanged


def test_review_report_never_replaces_the_workspace_file_but_replaces_its_own_report(tmp_path: Path) -> None:
    ws = tiny_workspace(tmp_path / "ws")
    for victim in (ws / "workspace.toml", ws / "naviewer.sqlite"):
        with unchanged(tmp_path):
            outcome = run_cli(["review", ws, "--report", victim, "--no-thumbnails"])
        assert_refused(outcome, victim, "not an earlier naviewer report")
    report = tmp_path / "review.html"
    assert run_cli(["review", ws, "--report", report, "--no-thumbnails"]).code == 0
    first = report.read_text()
    assert run_cli(["review", ws, "--report", report, "--no-thumbnails"]).code == 0  # its own report: replaced
    assert report.read_text().startswith(first[:40])
    for empty in ("", " "):
        assert_refused(run_cli(["review", ws, "--report", empty]), "--report", "empty")
    assert_refused(run_cli(["review", ws, "--embeddings", ""]), "--embeddings", "empty")


def test_eval_json_refuses_someone_elses_file_before_any_work(tmp_path: Path) -> None:
    data = image_tree(tmp_path / "data")
    image = data / "a" / "0.png"
    with unchanged(tmp_path):
        outcome = run_cli(["eval", "--checkpoint", tmp_path / "missing.pt", "--train-dataset", data,
                           "--test-dataset", data, "--no-linear", "--json", image])
    assert_refused(outcome, image, "not an earlier")


def test_bench_json_refuses_a_workspace_file(tmp_path: Path) -> None:
    ws = tiny_workspace(tmp_path / "ws")
    victim = ws / "workspace.toml"
    with unchanged(tmp_path):
        outcome = run_cli(["bench", "detect", "--skip-baseline", "--n", "1000", "--dim", "8", "--classes", "2",
                           "--json", victim])
    assert_refused(outcome, victim, "not an earlier")


def test_craft_preview_replaces_only_its_own_picture(tmp_path: Path) -> None:
    data = image_tree(tmp_path / "data", per_class=6)
    image = data / "b" / "0.png"
    with unchanged(tmp_path):
        outcome = run_cli(["craft", "--attack", "patch", "--dataset", data, "--rate", "0.2", "--preview", image])
    assert_refused(outcome, image, "not an earlier")
    preview = tmp_path / "preview.png"
    argv = ["craft", "--attack", "patch", "--dataset", data, "--rate", "0.2", "--target", "0", "--trigger-size", "2",
            "--preview", preview]
    assert run_cli(argv).code == 0 and preview.is_file()
    assert run_cli(argv).code == 0  # the preview it wrote is replaced


@pytest.mark.parametrize("argv", [["export", "{ws}", "--out", ""], ["finetune", "{ws}", "--checkpoint", "x.pt", "--out", ""]],
                         ids=["export", "finetune"])
def test_an_empty_out_is_refused(tmp_path: Path, argv: list) -> None:
    ws = tiny_workspace(tmp_path / "ws")
    with unchanged(tmp_path):
        outcome = run_cli([a.format(ws=ws) for a in argv])
    assert_refused(outcome, "--out", "empty")


def test_the_rules_hold_with_resume_and_between_commands_and_accept_older_reports(tmp_path: Path) -> None:
    """A review of the first version: --resume skipped the check (workspace.toml overwritten again), any naviewer JSON
    could be replaced by any command (eval over hours of bench rows), and an upgrade refused its own older report."""
    import json

    ws = tiny_workspace(tmp_path / "ws")
    victim = ws / "workspace.toml"
    with unchanged(tmp_path):
        outcome = run_cli(["bench", "detect", "--skip-baseline", "--n", "1000", "--dim", "8", "--classes", "2",
                           "--json", victim, "--resume"])
    assert_refused(outcome, victim, "not an earlier")
    rows = tmp_path / "scale.json"
    rows.write_text(json.dumps({"written_by": "naviewer bench detect", "rows": []}))
    data = image_tree(tmp_path / "data")
    with unchanged(tmp_path):
        outcome = run_cli(["eval", "--checkpoint", tmp_path / "missing.pt", "--train-dataset", data,
                           "--test-dataset", data, "--no-linear", "--json", rows])
    assert_refused(outcome, rows, "naviewer eval JSON")
    old = tmp_path / "old.html"
    old.write_text("<!DOCTYPE html><html><head><title>naviewer review</title></head><body></body></html>")
    assert run_cli(["review", ws, "--report", old, "--no-thumbnails"]).code == 0


def test_a_matrix_setting_that_does_not_suit_a_planned_row_is_refused_before_any_cell(tmp_path: Path) -> None:
    from naviewer.errors import NaviewerError
    from naviewer.workflows.matrix import Cell, MatrixConfig, run_matrix

    config = MatrixConfig(cells=[Cell("na-paper"), Cell("patch")], recipe={"attack_extra": {"num_references": 36}})
    with pytest.raises(NaviewerError, match="matrix row patch"):
        run_matrix(config, tmp_path / "out")
    assert not list((tmp_path / "out").glob("cells/*"))


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no file can be made")
def test_an_output_in_a_folder_where_no_file_can_be_made_is_refused_before_the_work(tmp_path: Path) -> None:
    # the folder exists and root passes os.access on it; a sweep saw the hour of measuring done first
    outcome = run_cli(["bench", "detect", "--skip-baseline", "--n", "1000", "--dim", "8", "--classes", "2",
                       "--json", "/proc/naviewer-figures.json"])
    assert_refused(outcome, "/proc", "cannot be written in this folder")
    assert "speed-up" not in outcome.out  # refused before any measuring


def test_export_never_writes_into_a_folder_of_other_files_with_or_without_overwrite(tmp_path: Path) -> None:
    """export --out ~/notes replaced the user's kept.txt and README.txt (rc 0), --overwrite did so in a folder that
    never held an export, and --out / --overwrite wrote five files into the root folder (a sweep, session 18)."""
    ws = tiny_workspace(tmp_path / "ws")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "kept.txt").write_text("mine")
    (notes / "README.txt").write_text("notes")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    for out, extra in ((notes, []), (notes, ["--overwrite"]), (home, ["--overwrite"])):
        with unchanged(tmp_path):
            outcome = run_cli(["export", ws, "--out", out, *extra])
        assert_refused(outcome, out, "not an earlier naviewer export")
    assert (notes / "kept.txt").read_text() == "mine" and (notes / "README.txt").read_text() == "notes"
    done = tmp_path / "export"
    assert run_cli(["export", ws, "--out", done]).code == 0
    assert run_cli(["export", ws, "--out", done, "--overwrite"]).code == 0  # its own earlier export: replaced
    (done / "mine.txt").write_text("added by hand")
    assert_refused(run_cli(["export", ws, "--out", done, "--overwrite"]), done, "mine.txt")


@pytest.mark.parametrize("command", ["finetune", "prune", "craft"])
def test_an_output_that_cannot_be_made_is_refused_before_the_work(tmp_path: Path, command: str) -> None:
    """finetune --out /proc/x/o.pt embedded, fine-tuned and re-embedded before failing at the save; craft and prune
    likewise after their work; a file on the way said "File exists" (a sweep, session 18)."""
    from badinput_kit import naviewer_checkpoint, tiny_backbone_state

    checkpoint = naviewer_checkpoint(tmp_path / "model.pt", tiny_backbone_state())
    (tmp_path / "afile").write_text("keep me")
    for out, where, words in (("/proc/naviewer-x/o.pt", "/proc", "cannot be written in this folder"),
                              (str(tmp_path / "afile" / "o.pt"), tmp_path / "afile", "a file, not a folder")):
        argv = {"finetune": ["finetune", tiny_workspace(tmp_path / f"ws{len(out)}"), "--checkpoint", checkpoint,
                             "--out", out],
                "prune": ["prune", checkpoint, "--out", out],
                "craft": ["craft", "--attack", "patch", "--dataset", "demo", "--out", out]}[command]
        outcome = run_cli(argv)
        assert_refused(outcome, where, words)
        assert "%" not in outcome.err  # refused before any progress bar


def test_train_never_writes_into_a_dataset_or_a_workspace_folder(tmp_path: Path) -> None:
    """``train --out DATASET`` exited 0: its checkpoints/ became a class of the image folder and every workspace over
    it read shifted labels; ``--out WORKSPACE`` wrote into the workspace's root (a sweep, session 21)."""
    from badinput_kit import TINY_TRAIN

    data = image_tree(tmp_path / "imgs", per_class=8)
    ws = tiny_workspace(tmp_path / "ws")
    inside = data / "a" / "run"  # a new folder inside a class folder was accepted (a bad-input corpus, session 23)
    for out, words in ((data, "holds other files (a, b)"), (ws, "is a workspace folder"),
                       (inside, "inside the dataset's folder")):
        with unchanged(tmp_path):
            outcome = run_cli(["train", "--dataset", data, "--out", out, "--epochs", "1", *TINY_TRAIN])
        assert_refused(outcome, out, words)
    hidden = tmp_path / "fresh"
    hidden.mkdir()
    (hidden / ".DS_Store").write_bytes(b"x")  # only hidden files: an empty folder to the user
    assert run_cli(["train", "--dataset", data, "--out", hidden, "--epochs", "1", *TINY_TRAIN]).code == 0
    again = run_cli(["train", "--dataset", data, "--out", hidden, "--epochs", "1", *TINY_TRAIN])
    assert_refused(again, hidden, "already holds a checkpoint")  # an earlier run: the message it had


def test_craft_overwrite_replaces_only_an_earlier_crafted_set(tmp_path: Path) -> None:
    """``craft --out DIR --overwrite`` replaced a user's own train.txt in a folder that never held a crafted set (a
    sweep, session 21): --overwrite now replaces only an earlier craft output."""
    data = image_tree(tmp_path / "d", per_class=6)
    argv = ["craft", "--attack", "patch", "--dataset", data, "--rate", "0.2", "--target", "0", "--trigger-size", "2"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "train.txt").write_text("my/own/list.png 3\n")
    with unchanged(tmp_path):
        outcome = run_cli([*argv, "--out", mine, "--overwrite"])
    assert_refused(outcome, mine, "no crafted set")
    crafted = tmp_path / "crafted"
    assert run_cli([*argv, "--out", crafted]).code == 0
    assert run_cli([*argv, "--out", crafted, "--overwrite"]).code == 0  # its own earlier output: replaced
