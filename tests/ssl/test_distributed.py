import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.slow
def test_torchrun_two_process_gloo(tmp_path):
    methods = ["simclr", "mocov2"]  # SimCLR gathers negatives with autograd; MoCo gathers keys into its queue
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(HERE / "ddp_worker.py"), str(tmp_path), *methods]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    for method in methods:
        try:
            _check_run(tmp_path / method)
        except AssertionError as exc:  # say what the run left behind
            listing = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
            raise AssertionError(f"{method}: {exc}\nfiles: {listing}\nstderr: {proc.stderr[-3000:]}") from None


def _check_run(run: Path) -> None:
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "metrics.jsonl"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert sum(r["kind"] == "run_start" for r in records) == 1  # only rank 0 writes
    assert records[0]["world_size"] == 2
    assert [r["step"] for r in records if r["kind"] == "step"] == [1, 2, 3, 4]
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [0, 1]
