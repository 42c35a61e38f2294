"""patchsearch's flags under other threshold rules, replayed on the stored passes' scores (the classifier's p)."""
import sys, glob, numpy as np
from naviewer.workspace import Workspace
from naviewer.defense.detectors.patchsearch import classifier_flags
from naviewer.workflows.workspace_setup import ground_truth_mask
rules = [("gmm2", {}), ("own", {}), ("robust_z", {"z": 3.5}), ("robust_z", {"z": 5.0}), ("robust_z", {"z": 7.0})]
for path in sys.argv[1:]:
    ws = Workspace.open(path, read_only=True)
    truth = ground_truth_mask(ws)
    ps = [p for p in ws.store.passes() if p.get("method") == "patchsearch"]
    for rec in ps:
        p = np.asarray(ws.store.pass_scores(int(rec["id"]))["score"], float)
        row = []
        for rule, kw in rules:
            f = classifier_flags(p, rule, 0.01, kw.get("z", 3.5), 0, max_fraction=0.2)["flags"]
            if truth is not None and truth.any():
                tp = int((f & truth).sum()); row.append(f"{rule}{kw.get('z', '')}: {f.sum()} ({100*tp/max(f.sum(),1):.0f}/{100*tp/truth.sum():.0f})")
            else:
                row.append(f"{rule}{kw.get('z', '')}: {f.sum()}")
        print(path.split('/')[-2] if 'cells' in path else path, rec["id"], " | ".join(row))
    ws.close()
