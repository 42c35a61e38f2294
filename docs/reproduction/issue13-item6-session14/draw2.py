"""A second retrain draw of a finished demo run (the same kept set, seed + 1000), and every checkpoint (the demo's
own retrain, this draw, the floor) measured by one evaluator (the matrix's: clean train bank, every protocol)."""
import json, sys
from dataclasses import fields
from pathlib import Path
import numpy as np, torch
from naviewer.jobs import JobContext
from naviewer.workflows.demo import DemoConfig
from naviewer.workflows.matrix import _Evaluator, _kept_retrain
from naviewer.workspace import Workspace
from naviewer.workspace.runs import confirmed_ids

path = Path(sys.argv[1])
with Workspace.open(path) as ws:
    names = {f.name for f in fields(DemoConfig)}
    demo = DemoConfig.from_overrides({k: v for k, v in (ws.config.get("demo") or {}).items() if k in names})
    torch.set_num_threads(int(demo.threads or 1))
    ctx = JobContext()
    ev = _Evaluator(ws, ctx, torch.device("cpu"))
    removed = np.zeros(ws.store.sample_count(), bool)
    removed[confirmed_ids(ws)] = True
    out = {"removed": int(removed.sum()), "first": ev(ws.checkpoint_dir("demo") / "last.pt"),
           "floor": ev(ws.checkpoint_dir("floor") / "last.pt")}
    print(path.name, "first", out["first"]["asr"], "floor", out["floor"]["asr"], flush=True)
    out["second"] = _kept_retrain(ws, removed, demo, ev, ctx, "retrain-1", 1)
    print(path.name, "second", out["second"]["asr"], flush=True)
path.with_name(path.name + "-draws.json").write_text(json.dumps(out, indent=1, default=str))
