"""Item 6: one demo run as a newcomer would: `naviewer demo --no-gui`, then `naviewer finetune WS --accept-all`
(every flag confirmed, the demo's retrain), then the no-poison floor of the same recipe, seed and threads on the
workspace's clean digits. argv: seed threads refs ('default' or a reference count)."""
import json, subprocess, sys, time
from pathlib import Path

seed, threads, refs = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
NV = "/work/main/.venv/bin/naviewer"
path = Path(f"/work/exp/s14/demo6/ws-{refs}-s{seed}-t{threads}")
extra = [] if refs == "default" else ["--set", 'attack_extra={"num_references": %d}' % int(refs)]
t0 = time.time()
demo = subprocess.run([NV, "demo", "--no-gui", "--workspace", str(path), "--threads", str(threads), "--set", f"seed={seed}",
                       "--json", *extra], capture_output=True, text=True)
rec = {"seed": seed, "threads": threads, "refs": refs, "demo_rc": demo.returncode}
try:
    rec["demo"] = json.loads(demo.stdout[demo.stdout.index("{"):])
except ValueError:
    rec["demo_out"] = demo.stdout[-2000:] + demo.stderr[-2000:]
print({k: rec["demo"].get(k) for k in ("flagged", "poisons", "precision", "recall", "detection_epoch")} if "demo" in rec else rec, flush=True)
ft = subprocess.run([NV, "finetune", str(path), "--accept-all"], capture_output=True, text=True)
rec["finetune_rc"], rec["finetune_out"] = ft.returncode, ft.stdout[-3000:] + ft.stderr[-1500:]
result = path / "runs" / "demo" / "finetune_result.json"
metrics = [json.loads(l) for l in (path / "runs" / "demo" / "metrics.jsonl").read_text().splitlines() if l.strip()]
asr = [m for m in metrics if m.get("kind") == "epoch" and m.get("asr") is not None]
rec["asr_by_epoch"] = [(m["epoch"], m["asr"], m.get("knn_acc")) for m in asr]
print("finetune rc", ft.returncode, ft.stdout[-800:], flush=True)

import torch
from naviewer.workflows.demo import DemoConfig
from naviewer.workflows.floor import train_floor
from naviewer.workspace import Workspace
from dataclasses import fields
with Workspace.open(path) as ws:
    names = {f.name for f in fields(DemoConfig)}
    cfg = DemoConfig.from_overrides({k: v for k, v in (ws.config.get("demo") or {}).items() if k in names})
    floor = train_floor(ws, cfg.train_config())
rec["floor"] = floor
rec["seconds"] = time.time() - t0
path.with_suffix(".json").write_text(json.dumps(rec, indent=1, default=str))
print("floor", floor["asr"], "knn", floor["knn_acc"], "total s", rec["seconds"], flush=True)
