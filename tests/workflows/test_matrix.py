"""The detection matrix on a recipe shrunk to seconds: cells, resume, tables, the CLI's checks."""

from __future__ import annotations

import json

import pytest

from naviewer.errors import NaviewerError
from naviewer.workflows.matrix import ATTACK_ROWS, Cell, MatrixConfig, default_plan, read_cells, run_matrix

#: tests/workflows/test_demo.py's tiny demo: a pass with flags always comes out after 2 epochs
TINY = {"data_size": 16, "image_size": 16, "arch": "resnet10", "width": 8, "batch_size": 128, "dift_start": 0,
        "patience": 1, "k": 5, "knn_every": 0, "trigger_size": 6, "max_steps_per_epoch": 2, "epochs": 4,
        "dift_settings": {"n_min": 2, "guard_separation": 1e-6, "guard_check_split": False, "max_detection_epochs": 1}}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def matrix_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("matrix")
    config = MatrixConfig(cells=[Cell("na-code", threads=1)], recipe=TINY, detectors=("kdist", "lid"),
                          restarts=("retrain", "continue", "oracle"), retrains=2)
    run_matrix(config, out)
    return out


def test_a_cell_records_before_detectors_after_and_floor(matrix_dir):
    (record,) = read_cells(matrix_dir)
    assert record["key"] == "na-code-simclr-s0-t1" and record["status"] == "done"
    protocols = set(record["before"]["asr"])
    assert {"uniform", "code", "paper"} <= protocols
    assert record["dift"]["pass_id"] is not None and record["dift"]["flagged"] > 0
    after = record["after"]
    # the demo's recipe checks the retrained encoder (accept-all's second round): its additions drawn as the first
    check = after["check"]
    second = {"second", "second_repeats"} if check["added"] else set()
    assert set(after) == {"retrain", "continue", "oracle", "retrain_repeats", "oracle_repeats", "check", *second}
    if check["added"]:
        assert after["second"]["removed"] == after["retrain"]["removed"] + len(check["added"])
        assert [r["seed"] for r in after["second_repeats"]] == [1000]
    # --retrains 2: one more fresh training of each kept set, its own seed, the same removal
    (again,) = record["after"]["retrain_repeats"]
    (oracle_again,) = record["after"]["oracle_repeats"]
    assert again["seed"] == oracle_again["seed"] == 1000 and set(again["asr"]) == protocols
    assert again["removed"] == record["dift"]["flagged"]
    assert oracle_again["removed"] == record["after"]["oracle"]["removed"]
    for name in ("retrain", "continue"):
        after = record["after"][name]
        assert set(after["asr"]) == protocols and after["removed"] == record["dift"]["flagged"]
    oracle = record["after"]["oracle"]  # every poison out, and DIFT's clean flags too
    assert set(oracle["asr"]) == protocols and oracle["removed"] >= record["poisons"]
    assert set(record["floor"]["asr"]) == protocols
    assert (matrix_dir / record["floor"]["checkpoint"]).is_file()
    for name in ("kdist", "lid", "dift-posthoc"):
        assert 0.0 <= record["detectors"][name]["auroc"] <= 1.0
    # the recipe's DIFT settings add to the demo's: the retrain restart stays
    assert record["recipe"]["dift_settings"]["restart_mode"] == "retrain"


def test_tables_name_every_cell_and_detector(matrix_dir):
    text = (matrix_dir / "matrix.md").read_text()
    assert "na-code (code)" in text and "kdist" in text and "dift-posthoc" in text
    assert "(mean " in text  # the repeats' draws and their mean
    assert json.loads((matrix_dir / "matrix.json").read_text())["missing"] == []


def test_done_cells_are_skipped_and_unfinished_ones_restart(matrix_dir):
    path = matrix_dir / "cells" / "na-code-simclr-s0-t1" / "cell.json"
    before = path.read_text()
    unfinished = matrix_dir / "cells" / "patch-simclr-s0-t1"
    (unfinished / "workspace").mkdir(parents=True)  # left by an interrupted run: no cell.json
    config = MatrixConfig(cells=[Cell("na-code", threads=1), Cell("patch", threads=1)], recipe=TINY,
                          detectors=("kdist",), restarts=("retrain",))
    run_matrix(config, matrix_dir)
    assert path.read_text() == before  # not run again
    keys = {r["key"] for r in read_cells(matrix_dir)}
    assert keys == {"na-code-simclr-s0-t1", "patch-simclr-s0-t1"}


def test_cell_parse():
    assert Cell.parse("na-code:byol:2:1") == Cell("na-code", "byol", 2, 1)
    assert Cell.parse("ctrl") == Cell("ctrl", "simclr", 0, 2)
    for bad in ("nope", "na-code:sgd", "patch:simclr:x", "patch:simclr:0:0"):
        with pytest.raises(NaviewerError):
            Cell.parse(bad)


def test_the_plan_covers_the_issue():
    plan = default_plan()
    keys = {c.key for c in plan}
    assert len(keys) == len(plan)
    for row in ATTACK_ROWS:
        for method in ("simclr", "mocov2", "byol", "simsiam"):
            assert f"{row}-{method}-s0-t2" in keys
    for row in ("na-code", "na-paper"):
        assert {f"{row}-simclr-s{s}-t2" for s in (1, 2)} <= keys
    assert plan[0].row == "na-code"  # the independent-code case first


def test_cli_refuses_bad_cells_and_settings(tmp_path, capsys):
    from naviewer.cli import main

    assert main(["reproduce", "--matrix", str(tmp_path / "m"), "--cells", "nope"]) == 2
    assert "unknown matrix row" in capsys.readouterr().err
    assert main(["reproduce", "--matrix", str(tmp_path / "m"), "--set", "epochz=3"]) == 2
    assert "epochz" in capsys.readouterr().err
    assert main(["reproduce", "--matrix", str(tmp_path / "m"), "--restarts", "sometimes"]) == 2
    assert main(["reproduce", "--matrix", str(tmp_path / "m"), "--retrains", "0"]) == 2
    assert "--retrains" in capsys.readouterr().err
    assert main(["reproduce", "--out", str(tmp_path / "r")]) == 2
    assert "--attack" in capsys.readouterr().err


def test_a_cell_that_failed_after_training_resumes_without_training_again(tmp_path, monkeypatch):
    import naviewer.workflows.demo as demo
    import naviewer.workflows.matrix as matrix

    config = MatrixConfig(cells=[Cell("patch", threads=1)], recipe=TINY, detectors=("kdist",), restarts=("retrain",),
                          floor=False)
    real = matrix.score_detectors

    def broken(*args, **kwargs):
        raise RuntimeError("killed after training")

    monkeypatch.setattr(matrix, "score_detectors", broken)
    with pytest.raises(RuntimeError):
        run_matrix(config, tmp_path)
    assert read_cells(tmp_path) == []
    monkeypatch.setattr(matrix, "score_detectors", real)
    monkeypatch.setattr(demo, "train_until_flags", lambda *a, **k: pytest.fail("trained again"))
    (record,) = run_matrix(config, tmp_path)
    assert record["resumed"] and record["dift"]["pass_id"] is not None and "retrain" in record["after"]


def test_more_floor_draws_are_added_to_done_cells_without_training_them_again(matrix_dir, tmp_path):
    import shutil

    out = tmp_path / "m"
    shutil.copytree(matrix_dir, out)
    before = json.loads((out / "cells" / "na-code-simclr-s0-t1" / "cell.json").read_text())
    config = MatrixConfig(cells=[Cell("na-code", threads=1)], recipe=TINY, detectors=("kdist",),
                          restarts=("retrain",), floors=3)
    run_matrix(config, out)
    record = {r["key"]: r for r in read_cells(out)}["na-code-simclr-s0-t1"]
    assert record["after"] == before["after"] and record["floor"] == before["floor"]  # nothing else trained again
    draws = record["floor_repeats"]
    assert [d["seed"] for d in draws] == [1000, 2000]
    assert all((out / d["checkpoint"]).is_file() and set(d["asr"]) == set(before["floor"]["asr"]) for d in draws)
    assert "(mean " in (out / "matrix.md").read_text()
    run_matrix(config, out)  # all drawn: nothing more
    assert len({r["key"]: r for r in read_cells(out)}["na-code-simclr-s0-t1"]["floor_repeats"]) == 2


def test_more_retrain_draws_are_added_to_done_cells_with_the_recorded_removal(matrix_dir, tmp_path):
    """Two retrains cannot tell a 10-point gap (session 31): --retrains N on a finished matrix draws the same kept
    sets again (the retrain's and the oracle's), fresh seeds, and touches nothing else."""
    import shutil

    out = tmp_path / "m"
    shutil.copytree(matrix_dir, out)
    key = "na-code-simclr-s0-t1"
    before = json.loads((out / "cells" / key / "cell.json").read_text())
    config = MatrixConfig(cells=[Cell("na-code", threads=1)], recipe=TINY, detectors=("kdist",),
                          restarts=("retrain", "oracle"), retrains=3)
    run_matrix(config, out)
    after = {r["key"]: r for r in read_cells(out)}[key]["after"]
    assert after["retrain"] == before["after"]["retrain"] and after["oracle"] == before["after"]["oracle"]
    for kind in ("retrain", "oracle"):
        old, *new = after[f"{kind}_repeats"]
        assert old == before["after"][f"{kind}_repeats"][0] and [d["seed"] for d in new] == [old["seed"] + 1000]
        assert new[0]["removed"] == before["after"][kind]["removed"]  # the same kept set
    run_matrix(config, out)  # all drawn: nothing more
    assert len({r["key"]: r for r in read_cells(out)}[key]["after"]["retrain_repeats"]) == 2


def test_a_cell_whose_removal_changed_is_named_and_the_rest_still_drawn(matrix_dir, tmp_path):
    """A top-up stopped at the first cell whose recorded removal no longer matched, and the other cells waited (a
    review, session 33): that cell's retrains are passed over and named at the end, its floors and the others' drawn."""
    import shutil

    out = tmp_path / "m"
    shutil.copytree(matrix_dir, out)
    key, other = "na-code-simclr-s0-t1", "na-code-simclr-s1-t1"
    shutil.copytree(out / "cells" / key, out / "cells" / other)  # a second done cell, healthy
    record = json.loads((out / "cells" / other / "cell.json").read_text())
    record["key"] = other
    (out / "cells" / other / "cell.json").write_text(json.dumps(record))
    path = out / "cells" / key / "cell.json"
    record = json.loads(path.read_text())
    record["after"]["retrain"]["removed"] += 5  # as if the pass had been reviewed again since
    path.write_text(json.dumps(record))
    config = MatrixConfig(cells=[Cell("na-code", seed=0, threads=1), Cell("na-code", seed=1, threads=1)], recipe=TINY,
                          detectors=("kdist",), restarts=("retrain",), retrains=3, floors=2)
    with pytest.raises(NaviewerError, match=f"not these: matrix cell {key}: its pass now flags") as err:
        run_matrix(config, out)
    assert other not in str(err.value)
    done = {r["key"]: r for r in read_cells(out)}
    assert len(done[key]["after"]["retrain_repeats"]) == 1  # none added to a removal that moved
    assert len(done[key]["floor_repeats"]) == 1  # its floor drawn all the same
    assert len(done[other]["after"]["retrain_repeats"]) == 2  # the cell after it: drawn (it waited before)


def test_cli_refuses_floors_below_one_and_with_no_floor(tmp_path, capsys):
    from naviewer.cli import main

    assert main(["reproduce", "--matrix", str(tmp_path / "m"), "--floors", "0"]) == 2
    assert "--floors" in capsys.readouterr().err
    assert main(["reproduce", "--matrix", str(tmp_path / "m"), "--floors", "2", "--no-floor"]) == 2
    assert "contradict" in capsys.readouterr().err
    assert main(["reproduce", "--out", str(tmp_path / "r"), "--floors", "2"]) == 2
    assert "--floors" in capsys.readouterr().err


def test_the_check_after_the_retrain_is_drawn_as_the_first_removal_and_topped_up(tmp_path, monkeypatch):
    """A check that adds samples (kdist stands in for PatchSearch: it always flags): the second removal is the first
    and what it added, trained with the first's seeds; --retrains on the done cell adds its missing draws too."""
    import naviewer.workflows.check_after_retrain as module

    monkeypatch.setattr(module, "CHECK_DETECTOR", "kdist")
    cell = Cell("na-code", threads=1)
    run_matrix(MatrixConfig(cells=[cell], recipe=TINY, detectors=("kdist",), retrains=2, floor=False), tmp_path)
    (record,) = read_cells(tmp_path)
    after = record["after"]
    added = after["check"]["added"]
    assert added and after["second"]["removed"] == after["retrain"]["removed"] + len(added)
    assert after["second"]["seed"] == 0 and [r["seed"] for r in after["second_repeats"]] == [1000]
    run_matrix(MatrixConfig(cells=[cell], recipe=TINY, detectors=("kdist",), retrains=3, floor=False), tmp_path)
    (record,) = read_cells(tmp_path)
    assert [r["seed"] for r in record["after"]["second_repeats"]] == [1000, 2000]
    assert [r["removed"] for r in record["after"]["second_repeats"]] == [after["second"]["removed"]] * 2
