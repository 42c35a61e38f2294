"""DIFT in training under torchrun (2 gloo processes): detection once on rank 0, the same flags,
fine-tuned weights and reduced training set on every rank, and no rank left waiting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workflow_kit import attacked_workspace

HERE = Path(__file__).parent


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_dift_accept_all_is_rank_synchronised(tmp_path, tiny_data):
    setup = attacked_workspace(tmp_path / "ws", tiny_data)
    setup.workspace.close()
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NAVIEWER_DIST_TIMEOUT": "120"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(HERE / "dift_ddp_worker.py"), str(setup.workspace.path), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world_size"] == 2 for r in ranks)
    keys = ("status", "flagged", "pass_id", "weights", "n_train", "source_indices", "data_version", "global_step",
            "steps_per_epoch", "epochs")
    for phase in ("accept", "stopped", "resumed"):  # every rank ends each phase in the same state
        for key in keys:
            assert ranks[0][phase][key] == ranks[1][phase][key], (phase, key)
    accept, stopped, resumed = (ranks[0][phase] for phase in ("accept", "stopped", "resumed"))
    # accept-all: DIFT found the planted cluster, fine-tuned it away and restarted on the rest
    assert accept["status"] == "finished" and len(accept["flagged"]) >= 5 and accept["finetune_steps"] >= 1
    assert accept["removed"] == len(accept["flagged"]) and accept["n_train"] == 240 - accept["removed"]
    assert accept["data_version"] == 1 and accept["epochs"] == 4
    assert not np.isin(accept["flagged"], accept["source_indices"]).any()
    # the gate: both ranks stopped for the review, then `finetune` fine-tuned and restarted on both
    assert stopped["status"] == "awaiting_review" and stopped["epochs"] < 4 and stopped["data_version"] == 0
    assert resumed["status"] == "finished" and resumed["epochs"] == 4 and resumed["data_version"] == 1
    assert resumed["n_train"] == 240 - resumed["removed"] and resumed["finetune_steps"] >= 1
    # only rank 0 wrote the workspace: one record of each run, one detection pass each, one restart each
    from naviewer.workspace import Workspace

    with Workspace.open(setup.workspace.path) as ws:
        assert sorted(r["name"] for r in ws.store.runs()) == ["dift", "gated"]
        assert ws.store.latest_pass_id("dift") == stopped["pass_id"] == accept["pass_id"] + 1
        for run in ("dift", "gated"):
            lines = (ws.path / "runs" / run / "metrics.jsonl").read_text().splitlines()
            records = [json.loads(line) for line in lines]
            events = [r["event"] for r in records if r["kind"] == "event"]
            assert events.count("dift_stop") == 1 and events.count("finetune") == 1, run
            assert events.count("restart") == 1, run
