"""Session 22: PatchSearch on the encoder at DIFT's stop of every stored demo/matrix run (sessions 18-20), to test
a two-signal take-back: a flag the trusted anchors reach as clean AND in which PatchSearch finds no trigger.
Stores the patchsearch pass in the run's workspace (run 'ps22') and its scores in ps/<cell>.npz."""
import glob, json, sys, time
from pathlib import Path
import numpy as np
import torch
from naviewer.jobs import JobContext
from naviewer.workspace import Workspace
from naviewer.workflows.posthoc import posthoc_detect
from naviewer.workflows.demo import DemoConfig

torch.set_num_threads(2)
PATHS = sorted(glob.glob('/work/exp/s*/*/cells/*/workspace')) + sorted(glob.glob('/work/exp/s*/*/out/cells/*/workspace'))
PATHS = [p for p in PATHS if '/s2' not in p.split('/work/exp/')[1][:3] or True]
OUT = Path('/work/exp/s22/ps')
FIRST = ['s19/demo6/cells/na-paper-simclr-s0-t2', 's20/demo2/cells/na-paper-simclr-s1-t2', 's20/demo2/cells/na-paper-simclr-s2-t2', 's20/demo2/cells/na-paper-simclr-s1-t1', 's20/mx/cells/na-code-simclr-s2-t2', 's20/mx/cells/corruptencoder-simclr-s0-t2']
PATHS = sorted(PATHS, key=lambda p: next((i for i, f in enumerate(FIRST) if f in p), 99))
for path in PATHS:
    if not path.startswith(('/work/exp/s18', '/work/exp/s19', '/work/exp/s20')):
        continue
    name = path.split('/work/exp/')[1].split('/workspace')[0].replace('/cells/', '-').replace('/out', '').replace('/', '-')
    target = OUT / f"{name}.npz"
    if target.exists():
        continue
    cell_json = Path(path).parent / 'cell.json'
    rec = json.loads(cell_json.read_text())
    demo = DemoConfig.from_overrides(rec['recipe'])
    ckpts = sorted(Path(path, 'checkpoints').glob('*/at-review.pt'))
    if not ckpts:
        print(name, 'no at-review checkpoint', flush=True); continue
    t0 = time.time()
    with Workspace.open(path) as ws:
        post = posthoc_detect(ws, ckpts[0], config=demo.dift_config(), run='ps22', device=torch.device('cpu'),
                              ctx=JobContext(), detectors=('patchsearch',))
        ps = [p for p in ws.store.passes() if p['method'] == 'patchsearch' and p['run'] == 'ps22'][-1]
        sc = ws.store.pass_scores(ps['id'])
        np.savez(target, score=sc['score'], flagged=sc['flagged'], pass_id=ps['id'])
    print(name, 'done', round(time.time() - t0), 's', {k: v for k, v in post.detector_metrics.get('patchsearch', {}).items() if k != 'threshold'}, flush=True)
