"""Bad-input corpus, workspace files: a damaged or edited workspace.toml / naviewer.sqlite is refused by
``naviewer export`` and ``naviewer review`` with exit 2, the file named, no traceback, nothing changed (issue 15)."""

from __future__ import annotations

from pathlib import Path

try:  # Python 3.11+; 3.10 has the tomli backport
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]
from typing import Callable

import numpy as np
import pytest
import tomli_w

from naviewer.workspace.store import _encode_array

from badinput_kit import assert_refused, drop_review_check, run_cli, sql, tiny_workspace, unchanged

TOML = "workspace.toml"
DB = "naviewer.sqlite"


def _toml(change: Callable[[dict], None]) -> Callable[[Path], str]:
    def edit(ws: Path) -> str:
        config = tomllib.loads((ws / TOML).read_text())
        change(config)
        (ws / TOML).write_text(tomli_w.dumps(config))
        return TOML
    return edit


def _toml_text(text: str) -> Callable[[Path], str]:
    def edit(ws: Path) -> str:
        (ws / TOML).write_text(text)
        return TOML
    return edit


def _sql(*statements: str, params: tuple = (), old_schema: bool = False) -> Callable[[Path], str]:
    def edit(ws: Path) -> str:
        if old_schema:
            drop_review_check(ws / DB)
        sql(ws / DB, *statements, params=params)
        return DB
    return edit


def _remove(name: str) -> Callable[[Path], str]:
    def edit(ws: Path) -> str:
        (ws / name).unlink()
        return name
    return edit


def _db_bytes(data: bytes) -> Callable[[Path], str]:
    def edit(ws: Path) -> str:
        (ws / DB).write_bytes(data)
        return DB
    return edit


def _db_truncated(ws: Path) -> str:
    data = (ws / DB).read_bytes()
    (ws / DB).write_bytes(data[: len(data) // 2 + 100])
    return DB


def _foreign_sqlite(path: Path) -> str:
    import sqlite3

    path.unlink()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes(text TEXT)")
    conn.execute("INSERT INTO notes VALUES ('mine')")
    conn.commit()
    conn.close()
    return DB


#: (id, edit returning the file the message must name, words)
WORKSPACE_CASES = [
    ("toml-garbled", _toml_text("[workspace\nschema = 1\n"), ["garbled"]),
    ("toml-not-a-workspace", _toml_text("title = 'x'\n"), ["no [workspace] schema"]),
    ("toml-binary", lambda ws: ((ws / TOML).write_bytes(b"\xff\xfe\x00garbage"), TOML)[1], ["is not text"]),
    ("toml-schema-newer", _toml(lambda c: c["workspace"].update(schema=99)), ["newer"]),
    ("toml-schema-text", _toml(lambda c: c["workspace"].update(schema="1")), ["bad workspace schema"]),
    ("toml-classes-5", _toml(lambda c: c.update(classes=5)), ["[classes] must be a table"]),
    ("toml-class-names-ints", _toml(lambda c: c["classes"].update(names=[0, 1])), ["list of strings"]),
    # deleted: it opened, and export wrote an empty classes.txt with status 0 (a bad-input probe, session 27)
    ("toml-classes-deleted", _toml(lambda c: c.pop("classes")), ["[classes] is missing"]),
    # deleted: it opened, and the analyst, Train and Detect each failed with "this workspace has no dataset" (a GUI
    # probe, session 33)
    ("toml-dataset-deleted", _toml(lambda c: c.pop("dataset")), ["[dataset] is missing", "holds 8 samples"]),
    ("toml-settings-list", _toml(lambda c: c.update(settings=[1, 2])), ["[settings] must be a table"]),
    ("toml-dataset-string", _toml(lambda c: c.update(dataset="demo")), ["[dataset] must be a table"]),
    # named no file ("unknown dataset kind 'nonsense' in description"; a sweep, session 17)
    ("toml-dataset-kind", _toml(lambda c: c["dataset"].update(kind="nonsense")), ["[dataset]", "nonsense"]),
    ("toml-samples-text", _toml(lambda c: c["dataset"].update(samples="8")), ["whole number"]),
    ("toml-samples-wrong", lambda ws: (_toml(lambda c: c["dataset"].update(samples=9))(ws), DB)[1],
     ["holds 8 samples but workspace.toml records 9"]),
    ("toml-missing", _remove(TOML), ["workspace.toml is missing"]),
    ("db-missing", _remove(DB), ["missing"]),
    ("db-not-sqlite", _db_bytes(b"definitely not a database " * 200), ["not a valid naviewer database"]),
    ("db-truncated", _db_truncated, []),
    ("db-empty-sqlite", _db_bytes(b""), ["empty"]),
    ("db-schema-newer", _sql("UPDATE meta SET value='42' WHERE key='schema'"), ["newer"]),
    ("db-schema-text", _sql("UPDATE meta SET value='one' WHERE key='schema'"), ["bad schema version"]),
    ("db-no-meta", _sql("DROP TABLE meta"), ["not a naviewer database"]),
    # another program's database (rollback journal): refused, and no longer turned to WAL mode first (the file of a
    # refused command changed; a bad-input probe, session 27)
    ("db-foreign-sqlite", lambda ws: _foreign_sqlite(ws / DB), ["not a naviewer database", "meta"]),
    # a dropped table reached the first query that read it: an sqlite3 traceback (bad-input sweep, session 17)
    ("db-no-audit", _sql("DROP TABLE audit"), ["damaged", "audit missing"]),
    ("db-no-passes", _sql("DROP TABLE pass_arrays"), ["damaged", "pass_arrays missing"]),
    ("db-no-detection-passes", _sql("DROP TABLE detection_passes"), ["damaged", "detection_passes missing"]),
    ("review-CONFIRMED", _sql("UPDATE review SET state='CONFIRMED'", old_schema=True), ["unknown review state"]),
    ("review-state-number", _sql("UPDATE review SET state=3", old_schema=True), ["unknown review state"]),
    ("review-unknown-sample", _sql("INSERT INTO review VALUES(50, 'confirmed', 'eve', 0)"), ["sample 50"]),
    ("sample-row-deleted", _sql("DELETE FROM samples WHERE id=3"), ["ids 0..7"]),
    ("sample-row-added", _sql("INSERT INTO samples VALUES(8, 'z.png', 'h', 0)"), ["holds 9 samples"]),
    ("sample-label-text", _sql("UPDATE samples SET label='cat' WHERE id=1"), ["wrong type"]),
    ("sample-label-beyond", _sql("UPDATE samples SET label=5 WHERE id=1"), ["label 5"]),
    ("sample-label-negative", _sql("UPDATE samples SET label=-9 WHERE id=1"), ["label -9"]),
    ("sample-key-newline", _sql("UPDATE samples SET source_key=? WHERE id=2", params=("a/x\nINJECTED 7\ny.png",)),
     ["line feed"]),
    ("pass-settings-garbled", _sql("UPDATE detection_passes SET settings_json='{oops'"), ["garbled"]),
    ("pass-settings-list", _sql("UPDATE detection_passes SET settings_json='[1]'"), ["not a JSON object"]),
    ("pass-blob-short", _sql("UPDATE pass_arrays SET data=? WHERE name='density'", params=(_encode_array(np.zeros(3)),)),
     ["expected (8,)"]),
    ("pass-blob-garbage", _sql("UPDATE pass_arrays SET data=? WHERE name='flagged'", params=(b"\x00garbage",)),
     ["corrupted"]),
    ("pass-blob-2d", _sql("UPDATE pass_arrays SET data=? WHERE name='density'",
                          params=(_encode_array(np.zeros((8, 2))),)), ["shape (8, 2)"]),
    ("pass-blob-text", _sql("UPDATE pass_arrays SET data=? WHERE name='density'",
                            params=(_encode_array(np.array(["x"] * 8)),)), ["not numbers"]),
]


@pytest.mark.parametrize("case, edit, words", WORKSPACE_CASES, ids=[c[0] for c in WORKSPACE_CASES])
def test_export_refuses_a_damaged_workspace(tmp_path: Path, case: str, edit, words: list[str]) -> None:  # noqa: ANN001
    ws = tiny_workspace(tmp_path / "ws")
    named = ws / edit(ws)
    out = tmp_path / "out"
    with unchanged(tmp_path):
        outcome = run_cli(["export", ws, "--out", out])
    assert_refused(outcome, named, *words)
    assert not out.exists()


@pytest.mark.parametrize("case", ["toml-classes-5", "review-CONFIRMED", "sample-row-deleted", "pass-settings-garbled",
                                  "pass-blob-short", "db-not-sqlite", "db-no-passes"])
def test_review_refuses_a_damaged_workspace(tmp_path: Path, case: str) -> None:
    edit, words = {c[0]: (c[1], c[2]) for c in WORKSPACE_CASES}[case]
    ws = tiny_workspace(tmp_path / "ws")
    named = ws / edit(ws)
    with unchanged(tmp_path):
        outcome = run_cli(["review", ws])
    assert_refused(outcome, named, *words)


@pytest.mark.parametrize("key", ["root", "path"])
def test_a_dataset_path_of_the_wrong_type_names_the_file(tmp_path: Path, key: str) -> None:
    """A hand-edited ``[dataset] root = 5`` reached os.fspath: a TypeError traceback from detect and run."""
    from naviewer.errors import NaviewerError
    from naviewer.workspace import Workspace

    ws = tiny_workspace(tmp_path / "ws")
    _toml(lambda c: c["dataset"].update({key: 5}))(ws)
    with Workspace.open(ws, read_only=True) as opened, pytest.raises(NaviewerError) as caught:
        opened.dataset()
    assert TOML in str(caught.value) and f"[dataset] {key} must be a path" in str(caught.value)


@pytest.mark.parametrize("setting, words", [({"k": "abc"}, "k='abc'"), ({"bogus_key": 1}, "bogus_key")])
def test_a_bad_dift_section_names_the_file_not_an_option(tmp_path: Path, setting: dict, words: str) -> None:
    """A bad ``[dift]`` value read as "DIFT setting k='abc'" as if --dift-set had given it; the file is named, and an
    override's own mistake is still said as the override's."""
    from naviewer.defense.config import DiftConfig
    from naviewer.errors import NaviewerError
    from naviewer.workspace import Workspace

    ws = tiny_workspace(tmp_path / "ws")
    _toml(lambda c: c.setdefault("dift", {}).update(setting))(ws)
    with Workspace.open(ws, read_only=True) as opened:
        with pytest.raises(NaviewerError) as caught:
            DiftConfig.from_workspace(opened)
        assert caught.value.path and caught.value.path.endswith(TOML)
        assert caught.value.message.startswith("[dift] ") and words in caught.value.message
    ws2 = tiny_workspace(tmp_path / "ws2")
    with Workspace.open(ws2, read_only=True) as opened, pytest.raises(NaviewerError) as caught:
        DiftConfig.from_workspace(opened, {"k": "abc"})
    assert caught.value.path is None and "k='abc'" in caught.value.message


@pytest.mark.parametrize("option", [["--baselines", "bogus"], ["--detector", "bogus"], ["--detector-set", "nocolon"],
                                    ["--baselines", ""], ["--baselines", " , "],
                                    ["--baselines", "dbscan", "--detector", "dbscan"]])  # two identical passes
def test_detect_checks_its_options_before_writing_anything(tmp_path: Path, option: list) -> None:
    """``detect --baselines bogus`` saved a DIFT pass, then refused the option (exit 2 with the workspace changed)."""
    ws = tiny_workspace(tmp_path / "ws")
    with unchanged(tmp_path):
        outcome = run_cli(["detect", ws, "--checkpoint", tmp_path / "missing.pt", *option])
    assert outcome.code == 2 and "Traceback" not in outcome.err and option[0] in outcome.err and option[1] in outcome.err, outcome.err


@pytest.mark.parametrize("option, words", [
    (["--detector-set", "bogus:k=1"], "sets a detector that does not run"),  # silently ignored
    (["--detector", "lid", "--detector-set", "lid:bogus=1"], "has no setting 'bogus'"),  # "LidSettings.__init__() ..."
    (["--tag", ""], "--tag is empty"),
])
def test_detector_settings_and_tags_that_cannot_apply_are_named(tmp_path: Path, option: list, words: str) -> None:
    ws = tiny_workspace(tmp_path / "ws")
    with unchanged(tmp_path):
        outcome = run_cli(["detect", ws, "--checkpoint", tmp_path / "missing.pt", *option])
    assert outcome.code == 2 and words in outcome.err and "Traceback" not in outcome.err, outcome.err


def test_a_detection_that_fails_keeps_the_anchors_it_had(tmp_path: Path) -> None:
    """``detect --anchors labels --anchors-per-class 21`` recorded the new anchors, then failed (a bad checkpoint, too few
    samples for k + anchors): the old anchors were gone (a sweep). A failed detection leaves [anchors] as they were."""
    from naviewer.workspace import Workspace

    ws = tiny_workspace(tmp_path / "ws")
    with Workspace.open(ws, read_only=True) as opened:
        before = opened.config.get("anchors")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    outcome = run_cli(["detect", ws, "--checkpoint", bad, "--anchors", "labels", "--anchors-per-class", "2"])
    assert outcome.code == 2 and "bad.pt" in outcome.err and "Traceback" not in outcome.err, outcome.err
    with Workspace.open(ws, read_only=True) as opened:
        assert opened.config.get("anchors") == before


def test_a_failed_detection_with_its_anchors_unchanged_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    """A failed detect rewrote workspace.toml though nothing in it had changed, dropping the user's comments (a sweep,
    session 17); and a BOM (Notepad's UTF-8) read as "garbled ... column 1"."""
    ws = tiny_workspace(tmp_path / "ws")
    toml = ws / TOML
    text = "# my note\n" + toml.read_text(encoding="utf-8")
    toml.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    before = toml.read_bytes()
    outcome = run_cli(["detect", ws, "--checkpoint", bad])
    assert outcome.code == 2 and "bad.pt" in outcome.err and "garbled" not in outcome.err, outcome.err
    assert toml.read_bytes() == before


def test_a_reviewer_name_that_would_break_a_line_is_refused(tmp_path: Path) -> None:
    """``review --reviewer $'a\\nb'`` stored a name with a line feed in the audit log."""
    from naviewer.errors import NaviewerError
    from naviewer.workspace import Workspace

    ws = tiny_workspace(tmp_path / "ws")
    with Workspace.open(ws) as opened:
        with pytest.raises(NaviewerError, match="line feed"):
            opened.store.set_review([1], "confirmed", "alice\nINJECTED")


def test_crafting_into_a_taken_path_is_refused_before_the_crafting(tmp_path: Path, monkeypatch) -> None:
    """``demo --workspace FILE`` crafted 107 poisons, then refused the path."""
    import naviewer.workflows.workspace_setup as setup
    from naviewer.errors import NaviewerError

    taken = tmp_path / "taken"
    taken.write_text("mine")
    monkeypatch.setattr(setup, "_open", lambda *_a, **_k: pytest.fail("the clean set was opened before the check"))
    with pytest.raises(NaviewerError, match="not an empty directory"):
        setup.create_attacked_workspace(taken, "demo", "na")
    assert taken.read_text() == "mine"


@pytest.mark.parametrize("setting", ["seed=-1", "seed=1000000000000000000000000000000", "ls_tol=-1",
                                     "gmm_n_init=1000000000000000000000000000000", "ft_max_steps=1e30", "ls_gamma=Infinity"])
@pytest.mark.parametrize("command", ["run", "detect"])
def test_a_dift_setting_out_of_bounds_is_refused_before_anything_is_written(tmp_path: Path, setting: str,
                                                                            command: str) -> None:
    """A negative seed or tolerance crashed inside numpy/sklearn after the embeddings were made, and a failed
    ``run --dift`` had already saved the setting into workspace.toml (every later run crashed the same way); a huge
    gmm_n_init or ft_max_steps ran for hours."""
    from badinput_kit import TINY_TRAIN

    ws = tiny_workspace(tmp_path / "ws")
    argv = (["run", ws, "--dift", "--epochs", "1", *TINY_TRAIN] if command == "run"
            else ["detect", ws, "--checkpoint", tmp_path / "missing.pt"])
    with unchanged(tmp_path):
        outcome = run_cli([*argv, "--dift-set", setting])
    name = setting.split("=")[0]
    assert outcome.code == 2 and "Traceback" not in outcome.err and name in outcome.err, outcome.err


@pytest.mark.parametrize("value", ["false", 1])
def test_a_trusted_flag_that_is_not_a_boolean_is_refused(tmp_path: Path, value) -> None:  # noqa: ANN001
    """``[anchors] trusted = "false"`` was read as trusted (a non-empty string): anchors WS said "trusted" and detect
    dropped the caveat of untrusted anchors."""
    ws = tiny_workspace(tmp_path / "ws")
    assert run_cli(["anchors", ws]).code == 0  # records the anchors (drawn from the labels)
    _toml(lambda c: c["anchors"].update(trusted=value, kind="ids"))(ws)
    with unchanged(tmp_path):
        outcome = run_cli(["anchors", ws])
    assert outcome.code == 2 and "Traceback" not in outcome.err, outcome.err
    assert "workspace.toml" in outcome.err and "trusted" in outcome.err and "true or false" in outcome.err


@pytest.mark.parametrize("section", [{"train": {"kind": "folder", "root": 5}}, {"train": 5}],
                         ids=["root-int", "train-int"])
def test_a_bad_evaluation_section_names_the_file(tmp_path: Path, section) -> None:  # noqa: ANN001
    """``[evaluation.train] root = 5`` was a TypeError traceback from finetune (os.fspath of an int)."""
    from naviewer.errors import NaviewerError
    from naviewer.workflows.workspace_setup import evaluation_sets
    from naviewer.workspace import Workspace

    ws = tiny_workspace(tmp_path / "ws")
    _toml(lambda c: c.update(evaluation=section))(ws)
    with Workspace.open(ws, read_only=True) as opened, pytest.raises(NaviewerError) as caught:
        evaluation_sets(opened)
    assert "[evaluation]" in caught.value.message and Path(caught.value.path).name == TOML


@pytest.mark.parametrize("option", [["--dift-set", "bogus=1"], ["--dift-set", "seed=-1"], ["--baselines", "bogus"],
                                    ["--clp-u", "nan"], ["--baselines", ""],
                                    ["--attack-setting", "trigger=nosuch.png"], ["--anchors", "ids:@"]],
                         ids=["dift-unknown", "dift-bound", "baselines", "clp-u", "baselines-empty", "trigger-file",
                              "anchors-spec"])
def test_reproduce_checks_its_options_before_crafting(tmp_path: Path, option: list) -> None:
    """--dift-set bogus=1 was a TypeError traceback and --baselines bogus / --clp-u nan were refused only after the
    whole craft + train pipeline, each leaving OUT behind."""
    from badinput_kit import image_tree

    data = image_tree(tmp_path / "data", per_class=4)
    out = tmp_path / "out"
    with unchanged(tmp_path):
        outcome = run_cli(["reproduce", "--attack", "patch", "--dataset", data, "--out", out, *option])
    said = {"--attack-setting": "nosuch.png: trigger file not found", "--anchors": "no file name after '@'"}
    assert outcome.code == 2 and "Traceback" not in outcome.err and said.get(option[0], option[0]) in outcome.err, outcome.err
    assert not out.exists()  # (a missing trigger file left OUT holding STOPPED.txt; a probe, session 30)


def test_an_interrupted_run_is_not_sent_to_finetune(tmp_path: Path) -> None:
    """A Ctrl-C'd ``run --dift`` kept its checkpoint; running it again said "or resume it (naviewer finetune after a
    review)", and finetune then fine-tuned something else. The message now says what can be done."""
    from badinput_kit import TINY_TRAIN
    from naviewer.workspace import Workspace
    from naviewer.workspace.runs import RunStatus, write_state

    ws = tiny_workspace(tmp_path / "ws")
    with Workspace.open(ws) as opened:
        opened.checkpoint_dir("dift").mkdir(parents=True, exist_ok=True)
        (opened.checkpoint_dir("dift") / "last.pt").write_bytes(b"")
        write_state(opened, "dift", status=RunStatus.DETECTING, dift=True)
    outcome = run_cli(["run", ws, "--dift", "--epochs", "1", "--dift-start", "0", *TINY_TRAIN])
    # made by hand above, it has no run record and cannot be resumed either: --resume is not offered (a real
    # interrupted run is: test_dift_training.py::test_an_interrupted_dift_run_resumes_to_the_same_flags)
    assert outcome.code == 2 and "'detecting'" in outcome.err and "--resume" not in outcome.err, outcome.err
    assert "finetune" not in outcome.err
    outcome = run_cli(["run", ws, "--resume"])
    assert outcome.code == 2 and "Traceback" not in outcome.err and "nothing to resume" in outcome.err, outcome.err
    outcome = run_cli(["run", ws, "--resume", "--run", "dift"])
    assert outcome.code == 2 and "Traceback" not in outcome.err and "cannot be resumed" in outcome.err, outcome.err
    outcome = run_cli(["run", ws, "--resume", "--accept-all", "--epochs", "3", "--threads", "1"])
    assert outcome.code == 2 and "--accept-all, --epochs cannot change them" in outcome.err, outcome.err


def test_a_workspace_inside_its_own_dataset_folder_is_refused(tmp_path: Path) -> None:
    """``new --dataset D D/ws`` was accepted: the workspace folder became an empty class "ws" of its own dataset."""
    from badinput_kit import image_tree

    data = image_tree(tmp_path / "data")
    with unchanged(tmp_path):
        outcome = run_cli(["new", data / "ws", "--dataset", data])
    assert_refused(outcome, data / "ws", "inside its own dataset")


@pytest.mark.parametrize("argv, words", [(["review", "{ws}", "--reviewer", "", "--confirm-cluster", "1"], "--reviewer"),
                                         (["review", "{ws}", "--reviewer", "x" * 300, "--confirm-cluster", "1"],
                                          "at most 200"),
                                         (["review", "{ws}", "--reviewer", "eve\u202egnp.exe", "--confirm-cluster", "1"],
                                          "right-to-left override"),
                                         (["review", "{ws}", "--reviewer", "al\u200bice", "--confirm-cluster", "1"],
                                          "zero width space"),
                                         (["run", "{ws}", "--run", "", "--epochs", "1"], "--run"),
                                         # a bad-input probe, session 27: '' trained on the automatic device, an
                                         # empty checkpoint read as the current folder, '.' and 'ü' contradicted
                                         # the words of the refusal
                                         (["run", "{ws}", "--device", "", "--epochs", "1"], "--device is empty"),
                                         (["detect", "{ws}", "--checkpoint", ""], "--checkpoint is empty"),
                                         (["run", "{ws}", "--run", ".", "--epochs", "1"], "cannot be only dots"),
                                         (["run", "{ws}", "--run", "prüfung-1", "--epochs", "1"], "ASCII letters")],
                         ids=["reviewer-empty", "reviewer-huge", "reviewer-bidi-override", "reviewer-zero-width", "run-empty",
                              "device-empty", "checkpoint-empty", "run-dot", "run-non-ascii"])
def test_empty_or_huge_names_are_refused(tmp_path: Path, argv: list, words: str) -> None:
    """``review --reviewer ''`` became the login name, a 1 MB reviewer name was stored with every decision, and
    ``run --run ''`` became the default run name: each without a word."""
    ws = tiny_workspace(tmp_path / "ws")
    with unchanged(tmp_path):
        outcome = run_cli([a.format(ws=ws) for a in argv])
    assert outcome.code == 2 and "Traceback" not in outcome.err and words in outcome.err, outcome.err


@pytest.mark.parametrize("change, words", [
    (lambda a: a.update(indices=[99999] + a["indices"][1:]), "outside"),
    (lambda a: a.update(indices=[-1] + a["indices"][1:]), "[anchors]"),
    (lambda a: a.update(labels=[7] + a["labels"][1:]), "names no class"),
    (lambda a: a.update(labels=a["labels"][1:]), "[anchors]"),
], ids=["id-out-of-range", "id-negative", "label-no-class", "lengths-differ"])
def test_a_hand_edited_anchor_list_names_the_file(tmp_path: Path, change, words: str) -> None:  # noqa: ANN001
    """Anchor ids out of range were refused without naming workspace.toml, and a label naming no class (7 in a
    2-class workspace) was accepted."""
    ws = tiny_workspace(tmp_path / "ws")
    assert run_cli(["anchors", ws]).code == 0
    _toml(lambda c: change(c["anchors"]))(ws)
    with unchanged(tmp_path):
        outcome = run_cli(["anchors", ws])
    assert_refused(outcome, ws / TOML, words)


@pytest.mark.parametrize("change, words", [(lambda c: c["classes"].update(names=["a", "a"]), "repeats"),
                                           (lambda c: c.update(evaluation="x"), "[evaluation] must be a table"),
                                           (lambda c: c.update(anchors=[1]), "[anchors] must be a table")],
                         ids=["classes-repeated", "evaluation-text", "anchors-list"])
def test_more_hand_edited_sections_name_the_file(tmp_path: Path, change, words: str) -> None:  # noqa: ANN001
    """Accepted before: duplicate class names (export wrote classes.txt as "a\\na"), evaluation = "x", anchors = [1]."""
    ws = tiny_workspace(tmp_path / "ws")
    _toml(change)(ws)
    with unchanged(tmp_path):
        outcome = run_cli(["review", ws])
    assert_refused(outcome, ws / TOML, words)


def test_repeated_class_names_are_refused_before_the_workspace_is_made(tmp_path: Path) -> None:
    """A file list's class names ["cat", "cat"] registered every sample, then failed reading workspace.toml back,
    leaving a workspace folder that could not be opened."""
    from naviewer.data.base import ArrayDataset
    from naviewer.errors import NaviewerError
    from naviewer.workspace import Workspace

    dataset = ArrayDataset(np.zeros((4, 8, 8, 3), np.uint8), np.array([0, 1, 0, 1]), ["cat", "cat"])
    with pytest.raises(NaviewerError, match="'cat' twice"):
        Workspace.create(tmp_path / "ws", dataset)
    assert not (tmp_path / "ws").exists() and not list(tmp_path.glob(".ws.creating-*"))


def test_a_failed_train_start_leaves_no_empty_run_folder(tmp_path: Path) -> None:
    """A failed ``train`` (a bad --set, --width 3, a bad --knn-dataset) left an empty OUT/checkpoints/ behind."""
    from badinput_kit import TINY_TRAIN, image_tree

    data = image_tree(tmp_path / "data", per_class=4)
    out = tmp_path / "run"
    outcome = run_cli(["train", "--dataset", data, "--out", out, "--epochs", "1", *TINY_TRAIN, "--set", "bogus=1"])
    assert outcome.code == 2 and "bogus" in outcome.err, outcome.err
    assert not out.exists()
    # the width said by its option (the backbone's words named none; a bad-input probe, session 27)
    outcome = run_cli(["train", "--dataset", data, "--out", out, "--epochs", "1", *TINY_TRAIN, "--width", "6"])
    assert outcome.code == 2 and "--width must be a multiple of 4" in outcome.err, outcome.err
    assert not out.exists()


@pytest.mark.parametrize("change", ["deleted", "replaced", "folder-gone"])
def test_export_checks_the_images_it_lists(tmp_path: Path, change: str) -> None:
    """After an image was deleted or replaced, or the dataset folder went, `export` wrote a kept.txt of missing or
    other images with exit 0 (a sweep), while review and detect refused. It refuses now, naming what changed, and
    writes nothing; --unverified exports from the workspace alone."""
    import shutil

    from PIL import Image

    ws = tiny_workspace(tmp_path / "ws")
    data = tmp_path / "ws-data"
    images = sorted(data.rglob("*.png"))
    if change == "deleted":
        images[-1].unlink()
    elif change == "replaced":
        Image.new("RGB", (16, 16), (255, 0, 255)).save(images[0])
    else:
        shutil.rmtree(data)
    out = tmp_path / "out"
    outcome = run_cli(["export", str(ws), "--out", str(out)])
    assert outcome.code == 2 and "Traceback" not in outcome.err and "--unverified" in outcome.err, outcome.err
    assert not (out / "kept.txt").exists() and not (out / "provenance.json").exists()
    outcome = run_cli(["export", str(ws), "--out", str(out), "--unverified"])
    assert outcome.code == 0 and (out / "kept.txt").is_file(), outcome.err


def test_a_trusted_anchor_set_with_a_broken_image_changes_nothing(tmp_path: Path) -> None:
    """`naviewer anchors WS SET` with a truncated image in SET replaced [anchors] and only then read the images (exit 2,
    the old anchors lost, every later detect failing); `new --anchors SET` left the workspace behind after exit 2.
    The images are read first now: nothing is recorded, nothing is made."""
    from badinput_kit import image_tree

    ws = tiny_workspace(tmp_path / "ws")
    trusted = image_tree(tmp_path / "trusted", per_class=4)
    broken = sorted(trusted.rglob("*.png"))[1]
    broken.write_bytes(broken.read_bytes()[:30])  # the PNG header and part of IHDR: no pixels
    before = (ws / "workspace.toml").read_bytes()
    outcome = run_cli(["anchors", str(ws), str(trusted), "--per-class", "4"])
    assert outcome.code == 2 and str(broken) in outcome.err and "Traceback" not in outcome.err, outcome.err
    assert (ws / "workspace.toml").read_bytes() == before
    outcome = run_cli(["new", "--dataset", str(tmp_path / "ws-data"), "--anchors", str(trusted),
                       "--anchors-per-class", "4", str(tmp_path / "ws2")])
    assert outcome.code == 2 and str(broken) in outcome.err, outcome.err
    assert not (tmp_path / "ws2").exists()


def test_anchors_that_take_the_target_class_are_named(tmp_path: Path) -> None:
    """`new --attack` on 10 images a class said "the dataset has no images of the target class 0": the default 10
    anchors a class had taken them all."""
    from badinput_kit import image_tree

    data = image_tree(tmp_path / "data", classes=("a", "b"), per_class=4)
    outcome = run_cli(["new", "--dataset", str(data), "--attack", "patch", str(tmp_path / "ws")])
    assert outcome.code == 2 and "anchors took 4 of the 4 images of the target class 0" in outcome.err, outcome.err
    assert "--anchors-per-class" in outcome.err and not (tmp_path / "ws").exists()


def test_a_broken_or_unlabelled_test_set_is_refused_when_the_workspace_is_made(tmp_path: Path) -> None:
    """A corrupt --test-dataset was recorded as "test set for evaluation: yes" and failed only at the first ASR."""
    from badinput_kit import image_tree

    data = image_tree(tmp_path / "data", per_class=3)
    test = image_tree(tmp_path / "test", per_class=3)
    broken = sorted(test.rglob("*.png"))[2]
    broken.write_bytes(b"\\x89PNG\\r\\n\\x1a\\n")
    outcome = run_cli(["new", "--dataset", str(data), "--test-dataset", str(test), str(tmp_path / "ws")])
    assert outcome.code == 2 and str(broken) in outcome.err and not (tmp_path / "ws").exists(), outcome.err
    from naviewer.data.base import DatasetWarning

    with pytest.warns(DatasetWarning, match="the test set is the training set itself"):
        outcome = run_cli(["new", "--dataset", str(data), "--test-dataset", str(data), str(tmp_path / "ws")])
    assert outcome.code == 0, outcome.err


def test_a_dift_k_larger_than_the_workspace_is_refused_before_the_embedding(tmp_path: Path, monkeypatch) -> None:
    """`--dift-set k=100000` failed only after every image was embedded, without saying where k came from."""
    import naviewer.workflows.posthoc as posthoc

    monkeypatch.setattr(posthoc, "embed_workspace", lambda *a, **k: pytest.fail("embedded before the check"))
    ws = tiny_workspace(tmp_path / "ws")
    from badinput_kit import naviewer_checkpoint, tiny_backbone_state

    checkpoint = naviewer_checkpoint(tmp_path / "c.pt", tiny_backbone_state())
    outcome = run_cli(["detect", ws, "--checkpoint", checkpoint, "--dift-set", "k=100000"])
    assert outcome.code == 2 and "k + anchors = 100000" in outcome.err and "--dift-set k=N" in outcome.err, outcome.err


@pytest.mark.parametrize("extra, words", [(["--detector", "lid"], "detector lid: k=64 neighbours need more than 64"),
                                          (["--anchors-per-class", "3"], "--anchors-per-class changes nothing without"),
                                          (["--anchors", "ids:1_0,2,5"], "anchor id '1_0' is not a whole number"),
                                          # a bad-input probe, session 32: tracebacks, or refused after the embedding
                                          # with the embeddings and a runs row left behind
                                          (["--detector", "crop_density", "--detector-set", "crop_density:ratio=[0,0]"],
                                           "detector crop_density: ratio must be (low, high)"),
                                          (["--detector", "crop_density", "--detector-set", "crop_density:ratio=[1,1,1]"],
                                           "detector crop_density: ratio must be (low, high)"),
                                          (["--detector", "optics", "--detector-set", "optics:min_samples=1"],
                                           "detector optics: min_samples must be >= 2"),
                                          (["--detector", "patchsearch", "--detector-set", "patchsearch:batch=0"],
                                           "detector patchsearch: batch must be >= 1"),
                                          (["--detector", "crop_density", "--detector-set", "crop_density:fraction=2"],
                                           "detector crop_density: fraction must be in (0, 1)"),
                                          (["--detector", "crop_density", "--detector-set", "crop_density:backend=bogus"],
                                           "detector crop_density: backend must be one of"),
                                          (["--detector", "crop_density", "--detector-set", "crop_density:k=100000"],
                                           "neighbouring crops, but there are"),
                                          (["--detector", "kdist", "--detector-set", "kdist:direction=bogus"],
                                           "detector kdist: direction must be sparse or dense"),
                                          (["--detector", "dbscan", "--detector-set", 'dbscan:dift={"zz": 1}'],
                                           "detector dbscan: dift setting"),
                                          (["--detector", "lid", "--detector-set", "lid:seed=-1"],
                                           "detector lid: seed must be in"),
                                          (["--detector", "patchsearch", "--detector-set", "patchsearch:cam_layer=bogus",
                                            "--detector-set", "patchsearch:neighbours=2"],
                                           "the encoder has no module 'bogus' for Grad-CAM")])
def test_detect_refuses_what_it_would_ignore_or_misread_before_the_embedding(tmp_path: Path, monkeypatch, extra,
                                                                           words) -> None:
    """A bad-input sweep, session 26: lid's k=64 on 8 samples was refused after the embedding and the DIFT pass (left
    written); --anchors-per-class without --anchors was ignored; anchor id "1_0" was read as 10."""
    import naviewer.workflows.posthoc as posthoc

    monkeypatch.setattr(posthoc, "embed_workspace", lambda *a, **k: pytest.fail("embedded before the check"))
    ws = tiny_workspace(tmp_path / "ws")
    from badinput_kit import naviewer_checkpoint, tiny_backbone_state

    checkpoint = naviewer_checkpoint(tmp_path / "c.pt", tiny_backbone_state())
    with unchanged(tmp_path / "ws"):
        outcome = run_cli(["detect", ws, "--checkpoint", checkpoint, "--dift-set", "k=2", *extra])
    assert outcome.code == 2 and words in outcome.err and "Traceback" not in outcome.err, outcome.err


@pytest.mark.parametrize("extra, named", [(["--accept-all"], "--accept-all is DIFT's"),
                                          (["--dift-start", "3"], "--dift-start is DIFT's"),
                                          (["--dift-set", "k=5", "--anchors", "labels"], "--dift-set, --anchors are")])
def test_dift_options_without_dift_are_refused_not_ignored(tmp_path, extra, named) -> None:
    """run --accept-all / --dift-start / --dift-set without --dift trained plainly and said nothing (a sweep,
    session 18)."""
    ws = tiny_workspace(tmp_path / "ws")
    with unchanged(tmp_path):
        outcome = run_cli(["run", ws, "--epochs", "1", *extra])
    assert outcome.code == 2 and named in outcome.err and "add --dift" in outcome.err, outcome.err


def test_review_refuses_a_decision_and_its_undo_in_one_call_and_eval_a_target_without_an_attack(tmp_path) -> None:
    ws = tiny_workspace(tmp_path / "ws")
    with unchanged(tmp_path):
        outcome = run_cli(["review", ws, "--confirm-cluster", "1", "--undo"])
    assert outcome.code == 2 and "would undo the decision just made" in outcome.err, outcome.err
    outcome = run_cli(["eval", "--checkpoint", tmp_path / "x.pt", "--train-dataset", "demo", "--test-dataset", "demo",
                       "--target", "3"])
    assert outcome.code == 2 and "add --attack NAME" in outcome.err, outcome.err


def test_a_run_name_too_long_for_a_file_name_is_named_as_such(tmp_path) -> None:
    ws = tiny_workspace(tmp_path / "ws")
    outcome = run_cli(["run", ws, "--run", "a" * 300, "--epochs", "1"])
    assert outcome.code == 2 and "300 characters, at most 128" in outcome.err and "Traceback" not in outcome.err


def test_a_detector_setting_given_twice_with_two_values_is_refused(tmp_path) -> None:
    ws = tiny_workspace(tmp_path / "ws")
    outcome = run_cli(["detect", ws, "--checkpoint", tmp_path / "x.pt", "--detector", "lid",
                       "--detector-set", "lid:k=5", "--detector-set", "lid:k=7"])
    assert outcome.code == 2 and "given twice with different values (5, 7)" in outcome.err, outcome.err


@pytest.mark.parametrize("setting", ["guard_separation=0", "candidate_fraction=0.1", "anchors_per_class=3"])
def test_finetune_refuses_detection_settings_it_would_ignore(tmp_path: Path, setting: str) -> None:
    """``finetune --dift-set guard_separation=0`` ran and changed nothing: no detection runs after the review."""
    ws = tiny_workspace(tmp_path / "ws")
    with unchanged(tmp_path):
        outcome = run_cli(["finetune", ws, "--checkpoint", tmp_path / "missing.pt", "--dift-set", setting])
    name = setting.split("=")[0]
    assert outcome.code == 2 and f"--dift-set {name}" in outcome.err and "changes nothing" not in outcome.err
    assert "would change nothing" in outcome.err and "Traceback" not in outcome.err, outcome.err


def test_finetune_still_takes_its_own_settings_and_names_unknown_ones(tmp_path: Path) -> None:
    ws = tiny_workspace(tmp_path / "ws")
    outcome = run_cli(["finetune", ws, "--checkpoint", tmp_path / "missing.pt", "--dift-set", "ft_max_steps=2"])
    # refused later, for what the tiny workspace lacks, not for the setting
    assert outcome.code == 2 and "would change nothing" not in outcome.err and "ft_max_steps" not in outcome.err, outcome.err
    outcome = run_cli(["finetune", ws, "--checkpoint", tmp_path / "missing.pt", "--dift-set", "bogus=1"])
    assert outcome.code == 2 and "bogus" in outcome.err and "Traceback" not in outcome.err, outcome.err


def test_run_dift_on_a_workspace_too_small_for_dift_is_refused_before_training(tmp_path: Path) -> None:
    """``run --dift`` trained every epoch and failed at the first detection ("DIFT needs more than k + anchors = 22
    samples, got 8", naming neither the workspace nor k), leaving a run folder in "detecting" (a sweep, session 21);
    ``detect`` refused the same workspace at once. Now both do."""
    from badinput_kit import TINY_TRAIN

    ws = tiny_workspace(tmp_path / "ws", n=8, with_pass=False)
    outcome = run_cli(["run", ws, "--dift", "--epochs", "2", *TINY_TRAIN])
    assert_refused(outcome, ws / "workspace.toml", "DIFT needs more than k + anchors", "--dift-set k=N")
    assert not (ws / "checkpoints" / "dift" / "last.pt").exists()


def test_a_damaged_workspace_toml_is_said_in_plain_words(tmp_path: Path) -> None:
    """A binary workspace.toml said "'utf-8' codec can't decode byte 0xb7 in position 1", a link loop "[Errno 40] Too
    many levels of symbolic links", and a workspace under a file "File exists" (a GUI sweep, session 21)."""
    from naviewer.workspace.config import read_config

    binary = tmp_path / "b" / "workspace.toml"
    binary.parent.mkdir()
    binary.write_bytes(b"\xb7\x00\xff" * 20)
    outcome = run_cli(["review", binary.parent])
    assert_refused(outcome, binary, "is not text")
    loop = tmp_path / "l" / "workspace.toml"
    loop.parent.mkdir()
    loop.symlink_to(loop)
    import pytest

    from naviewer.errors import NaviewerError

    with pytest.raises(NaviewerError, match="link loop"):
        read_config(loop)
    (tmp_path / "afile").write_text("x")
    outcome = run_cli(["new", tmp_path / "afile" / "ws", "--dataset", "demo"])
    assert outcome.code == 2 and "is a file, not a folder" in outcome.err and "Traceback" not in outcome.err, outcome.err


def test_every_unreadable_image_is_named_at_once_when_the_workspace_is_made(tmp_path: Path) -> None:
    """New workspace named one broken PNG per try: a newcomer pressed Create three times for three files (session 27).
    One refusal names them all (the first few and a count), the first as the file; nothing is made."""
    from badinput_kit import image_tree

    data = image_tree(tmp_path / "data", classes=("a", "b"), per_class=5)
    broken = [data / "a" / "1.png", data / "b" / "3.png", data / "b" / "4.png"]
    for path in broken[:2]:
        path.write_bytes(path.read_bytes()[:30])  # the PNG header and part of IHDR: no pixels
    broken[2].write_text("not an image", encoding="utf-8")
    outcome = run_cli(["new", "--dataset", str(data), str(tmp_path / "ws")])
    assert outcome.code == 2 and "3 image files of the dataset cannot be read" in outcome.err, outcome.err
    assert all(name in outcome.err for name in ("a/1.png", "b/3.png", "b/4.png")), outcome.err
    assert str(broken[0]) in outcome.err and not (tmp_path / "ws").exists()


def test_a_dataset_opened_as_a_workspace_is_told_to_make_one(tmp_path: Path) -> None:
    """File ▸ Open workspace on one's image folder said only "not a naviewer workspace" (a newcomer, session 27): a
    folder of class folders with images (plain, or split into train/test) says how to make a workspace of it; an
    empty folder, or one of other folders, does not."""
    from badinput_kit import image_tree

    from naviewer.errors import NaviewerError
    from naviewer.workspace.config import read_config

    plain = image_tree(tmp_path / "plain", per_class=2)
    split = image_tree(tmp_path / "split" / "train", per_class=2).parent
    (tmp_path / "empty").mkdir()
    (tmp_path / "other" / "notes").mkdir(parents=True)
    (tmp_path / "other" / "notes" / "a.txt").write_text("x")
    cifar_pair = tmp_path / "cifar-pair"  # a CIFAR-10 and a CIFAR-100 side by side: find_cifar_dir asks which one
    (cifar_pair / "cifar-10-batches-py").mkdir(parents=True)
    (cifar_pair / "cifar-100-python").mkdir()
    import naviewer.data.cifar as cifar

    real = cifar.find_cifar_dir

    def ambiguous(folder):
        if Path(folder) == cifar_pair:
            raise NaviewerError("two CIFAR datasets here: name the one to open", folder)
        return real(folder)

    cifar.find_cifar_dir = ambiguous
    try:
        with pytest.raises(NaviewerError) as caught:
            read_config(cifar_pair / "workspace.toml")
    finally:
        cifar.find_cifar_dir = real
    assert "not a naviewer workspace" in caught.value.message and "looks like a dataset" in caught.value.message
    for folder, dataset in ((plain, True), (split, True), (tmp_path / "empty", False), (tmp_path / "other", False)):
        with pytest.raises(NaviewerError) as caught:
            read_config(folder / "workspace.toml")
        assert ("looks like a dataset" in caught.value.message) == dataset, (folder, caught.value.message)
        assert "New workspace" in caught.value.message or not dataset


def test_another_programs_database_is_refused_before_it_is_touched(tmp_path: Path) -> None:
    """Opened for writing, a foreign SQLite file was switched to WAL mode before it was refused: the file of a refused
    command changed (a bad-input probe, session 27). A read-only look refuses it first."""
    from naviewer.errors import NaviewerError
    from naviewer.workspace import Workspace

    ws = tiny_workspace(tmp_path / "ws")
    _foreign_sqlite(ws / DB)
    before = (ws / DB).read_bytes()
    with pytest.raises(NaviewerError, match="not a naviewer database"):
        Workspace.open(ws)  # for writing
    assert (ws / DB).read_bytes() == before


def test_a_full_disk_is_said_as_such_not_as_a_permissions_problem(tmp_path: Path, monkeypatch) -> None:
    """On a full disk the writable connection failed, the workspace opened read-only, and a detect or a decision
    then said "fix its permissions" (a bad-input probe, session 27): the reason is kept and said."""
    import sqlite3

    import naviewer.workspace.store as store_module
    from naviewer.errors import NaviewerError
    from naviewer.workspace import Workspace

    ws = tiny_workspace(tmp_path / "ws")
    real = sqlite3.connect

    class Full:  # the writable connection: WAL needs new files, and the disk has no room
        def __init__(self, conn):
            self.conn = conn

        def execute(self, sql, *args):
            if "journal_mode=WAL" in sql:
                raise sqlite3.OperationalError("database or disk is full")
            return self.conn.execute(sql, *args)

        def close(self):
            self.conn.close()

    def connect(path, *args, **kwargs):
        conn = real(path, *args, **kwargs)
        return conn if kwargs.get("uri") else Full(conn)

    monkeypatch.setattr(store_module.sqlite3, "connect", connect)
    with Workspace.open(ws) as opened:
        assert opened.store.read_only
        with pytest.raises(NaviewerError, match="the disk is full") as caught:
            opened.store.check_writable()
        assert "permissions" not in caught.value.message
        with pytest.raises(NaviewerError, match="cannot write the workspace database: the disk is full"):
            opened.store.set_review([0], "confirmed", "alice")


def test_finetune_checks_a_run_name_as_the_other_commands_do(tmp_path: Path) -> None:
    """`finetune --run ../x` was refused as "not waiting for a review" with the path built from it (a bad-input probe,
    session 32): the name is refused as run / detect / review refuse it."""
    ws = tiny_workspace(tmp_path / "ws")
    with unchanged(tmp_path):
        outcome = run_cli(["finetune", ws, "--run", "../x"])
    assert outcome.code == 2 and "bad run name '../x'" in outcome.err and "Traceback" not in outcome.err, outcome.err


def test_one_backbone_option_keeps_the_checkpoints_other_fields(tmp_path: Path) -> None:
    """`detect --no-cifar-stem` alone put the arch and width back to resnet18 / 64 and listed every key of another
    network (a bad-input probe, session 32): the other fields stay the checkpoint's."""
    from badinput_kit import naviewer_checkpoint, tiny_backbone_state

    from naviewer.ssl.checkpoints import load_encoder

    checkpoint = naviewer_checkpoint(tmp_path / "c.pt", tiny_backbone_state())
    encoder = load_encoder(checkpoint, {"width": 8})
    assert (encoder.config.arch, encoder.config.width, encoder.config.cifar_stem) == ("resnet10", 8, True)
    from naviewer.errors import NaviewerError

    with pytest.raises(NaviewerError, match="does not fit"):  # the stem changes conv1's shape: still refused, as itself
        load_encoder(checkpoint, {"cifar_stem": False})


def test_precomputed_embeddings_with_nan_are_said_to_hold_nan(tmp_path: Path) -> None:
    """A file with one NaN was refused as "not this checkpoint's features" (a bad-input probe, session 32)."""
    from badinput_kit import naviewer_checkpoint, tiny_backbone_state

    ws = tiny_workspace(tmp_path / "ws")
    checkpoint = naviewer_checkpoint(tmp_path / "c.pt", tiny_backbone_state())
    features = np.random.default_rng(0).normal(size=(8, 64)).astype(np.float32)
    features[3, 5] = np.nan
    np.save(tmp_path / "e.npy", features)
    with unchanged(tmp_path / "ws"):
        outcome = run_cli(["detect", ws, "--checkpoint", checkpoint, "--dift-set", "k=2", "--embeddings",
                           tmp_path / "e.npy"])
    assert_refused(outcome, tmp_path / "e.npy", "NaN or infinite")
