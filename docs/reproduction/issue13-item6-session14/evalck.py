"""ASR (every protocol) and kNN accuracy of checkpoints of a matrix cell's workspace."""
import sys, torch
from pathlib import Path
torch.set_num_threads(1)
from naviewer.jobs import JobContext
from naviewer.workspace import Workspace
from naviewer.workflows.matrix import _Evaluator
ws_path = Path(sys.argv[1])
with Workspace.open(ws_path) as ws:
    ev = _Evaluator(ws, JobContext(), torch.device("cpu"))
    for name in sys.argv[2:]:
        r = ev(ws_path / "checkpoints" / name / "last.pt")
        print(name, {k: (round(v, 3) if isinstance(v, float) else {p: round(x, 3) for p, x in v.items()}) for k, v in r.items()}, flush=True)
