"""Item 6 follow-up: a second no-poison floor draw (seed + 1000) for a finished demo run, so the floor is a mean of
two draws like the ASR after; and, with --oracle, a retrain without exactly the poisons (seed + 2000) to tell
whether the clean flags removed cost ASR. Evaluated by the matrix's evaluator (as draw2.py)."""
import json, sys, dataclasses
from dataclasses import fields
from pathlib import Path
import numpy as np, torch
from naviewer.jobs import JobContext
from naviewer.workflows.demo import DemoConfig
from naviewer.workflows.matrix import _Evaluator, _train_kept
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.ssl.trainer import build_trainer
from naviewer.workspace import Workspace

path = Path(sys.argv[1]); oracle = "--oracle" in sys.argv
out_path = path.with_name(path.name + "-floor2.json")
out = json.loads(out_path.read_text()) if out_path.exists() else {}
with Workspace.open(path) as ws:
    names = {f.name for f in fields(DemoConfig)}
    demo = DemoConfig.from_overrides({k: v for k, v in (ws.config.get("demo") or {}).items() if k in names})
    torch.set_num_threads(int(demo.threads or 1))
    ctx = JobContext()
    ev = _Evaluator(ws, ctx, torch.device("cpu"))
    base = demo.train_config()
    if "floor2" not in out:
        config = dataclasses.replace(base, seed=int(base.seed) + 1000)
        trainer = build_trainer(config, ev.sets.train, ws.run_dir("floor-1"), checkpoint_dir=ws.checkpoint_dir("floor-1"))
        trainer.fit(ctx)
        out["floor2"] = {**ev(ws.checkpoint_dir("floor-1") / "last.pt"), "seed": int(config.seed)}
        print(path.name, "floor2", out["floor2"]["asr"], flush=True)
        out_path.write_text(json.dumps(out, indent=1, default=str))
    if oracle and "oracle" not in out:
        removed = np.asarray(ground_truth_mask(ws), bool)
        config = dataclasses.replace(base, seed=int(base.seed) + 2000)
        out["oracle"] = {**_train_kept(ws, removed, config, "oracle", ev, ctx), "seed": int(config.seed)}
        print(path.name, "oracle", out["oracle"]["asr"], flush=True)
        out_path.write_text(json.dumps(out, indent=1, default=str))
