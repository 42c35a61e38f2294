from __future__ import annotations

import json

from workflow_kit import PATCH
from naviewer.cli import main


def test_reproduce_cli_end_to_end_writes_its_table(tmp_path, tiny_data, capsys):
    out = tmp_path / "repro"
    settings = [f"--attack-setting={k}={v}" for k, v in PATCH.items() if k not in ("rate", "target")]
    dift = ["patience=1", "k=5", "n_min=5", "candidate_fraction=0.1", "pool_random=50", "guard_reference_size=100",
            "ft_max_steps=5", "base_lr=0.006"]
    argv = ["reproduce", "--attack", "patch", "--method", "simclr", "--dataset", str(tiny_data[0]), "--epochs", "3",
            "--out", str(out), "--arch", "resnet10", "--width", "8", "--image-size", "16", "--batch-size", "64",
            "--warmup-epochs", "0", "--rate", "0.1", "--dift-start", "0", "--threads", "1", "--no-linear",
            *settings, *[f"--dift-set={d}" for d in dift]]
    assert main(argv) == 0
    table = (out / "results.md").read_text()
    assert "| no defense |" in table and "| B1 (DBSCAN filter + retrain) |" in table and "| DIFT |" in table
    assert table.count("| B2 (B1 + CLP pruning) |") == 2  # results table and the drops table
    assert "Drops against no defense" in table and "B2: CLP (u=3) zeroed" in table
    assert "before label spreading" in table and "Time per stage" in table and "| B2: CLP pruning |" in table
    assert "torch threads 1." in table  # the --threads asked for, set before any stage
    record = json.loads((out / "results.json").read_text())
    assert set(record["results"]) == {"none", "b1", "b2", "dift", "floor"}
    assert "| no-poison floor (same recipe, clean set) |" in table and "uniform test-time protocol" in table
    assert record["test_protocol"] == "uniform" and record["anchors"]["kind"] == "clean-before-poisoning"
    b2 = record["results"]["b2"]
    assert b2["removed"] == record["results"]["b1"]["removed"] and b2["pruned_channels"] == record["b2_clp"]["pruned"]
    assert record["b2_clp"]["u"] == 3.0 and record["b2_clp"]["channels"] > 0
    assert (out / "workspace" / "checkpoints" / "b2" / "last.pt").is_file()
    for r in record["results"].values():
        assert 0.0 <= r["knn_acc"] <= 1.0 and "knn_asr_nt" in r and "knn_asr_all" in r
    assert record["dift"]["detection"]["buffer_count"] >= 5
    assert (out / "workspace" / "ground_truth.json").is_file()
    assert "| DIFT |" in capsys.readouterr().out


def test_a_reproduction_that_stops_late_says_where_in_its_folder_and_its_error(tmp_path, tiny_data, capsys,
                                                                               monkeypatch):
    """A failure after the craft left OUT/workspace half made without a word, and the next run said only 'not empty'
    (a sweep, session 17): OUT/STOPPED.txt now says where and why, and so do both errors."""
    from naviewer.errors import NaviewerError
    from naviewer.workflows import dift_training

    def no_training(*_a, **_k):
        raise NaviewerError("the disk is full", tmp_path / "disk")

    monkeypatch.setattr(dift_training, "train_with_dift", no_training)
    out = tmp_path / "repro"
    settings = [f"--attack-setting={k}={v}" for k, v in PATCH.items() if k not in ("rate", "target")]
    argv = ["reproduce", "--attack", "patch", "--method", "simclr", "--dataset", str(tiny_data[0]), "--epochs", "3",
            "--out", str(out), "--arch", "resnet10", "--width", "8", "--image-size", "16", "--rate", "0.1",
            "--dift-start", "0", *settings]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "the disk is full" in err and "reproduce stopped at 'train: no defense'" in err and "STOPPED.txt" in err
    note = (out / "STOPPED.txt").read_text()
    assert note.startswith("stopped at 'train: no defense': the disk is full") and (out / "workspace").is_dir()
    assert main(argv) == 2  # again into the same folder: refused, saying what is there
    assert "holds a reproduction that stopped before its end (stopped at 'train: no defense'" in capsys.readouterr().err
