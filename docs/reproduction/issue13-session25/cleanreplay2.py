import sys, numpy as np
from naviewer.workspace import Workspace
from naviewer.defense.detectors.patchsearch import classifier_flags
with Workspace.open(sys.argv[1], read_only=True) as ws:
    for info in [p for p in ws.store.passes() if p["method"] == "patchsearch"]:
        sc = ws.store.pass_scores(info["id"])
        raw = np.asarray(sc["classifier_p"], float) if "classifier_p" in sc else None
        old = int(classifier_flags(raw, "gmm2", 0.01, 3.5, 0, 0.2)["flags"].sum()) if raw is not None else None
        print("pass", info["id"], "n", len(sc["score"]), "new flags (stored)", int(np.asarray(sc["flagged"]).sum()), "| old rule on classifier_p", old, info["settings"].get("neighbours"), info["settings"].get("rule"))
