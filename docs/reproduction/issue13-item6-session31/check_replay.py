"""Session 31: run_trigger_check on the stored seed 0 / 2 threads run (its detection-epoch encoder): does the
in-product check clear what session 28's replay cleared (55 clean, no poison)?"""
import sys, time
import numpy as np, torch
torch.set_num_threads(2)
from naviewer.workspace import Workspace
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workflows.trigger_check import run_trigger_check, trigger_check_of, accept_all_words
from naviewer.workflows.dift_training import _store_of
from naviewer.ssl.checkpoints import load_encoder
from naviewer.jobs import ensure_context

ws_path, ckpt = sys.argv[1], sys.argv[2]
with Workspace.open(ws_path) as ws:
    truth = ground_truth_mask(ws)
    info = ws.store.pass_info(1)
    scores = ws.store.pass_scores(1)
    class R:  # the stored pass as the unsaved result the hook holds
        settings = dict(info["settings"])
        def scores(self): return {k: scores[k] for k in ("flagged",)}
        def extra_scores(self): return {"anchor_reach": scores["anchor_reach"]}
        def summary(self): return info["settings"]["summary"]
    r = R()
    ctx = ensure_context(None)
    store = _store_of(ws, ctx)
    enc = load_encoder(ckpt, None)
    t = time.time()
    pid = run_trigger_check(ws, r, backbone=enc.backbone, store=store, image_size=16, device=None, reach_limit=0.5,
                            run="demo", epoch=38, truth=truth, ctx=ctx)
    print("patchsearch pass", pid, "in", round(time.time() - t), "s")
    # a DIFT pass with the record, as on_stable saves it
    arrays = {k: scores[k] for k in ("flagged", "anchor_reach")}
    new = ws.store.add_detection_pass("dift", arrays, r.settings, run="demo", epoch=38)
    check = trigger_check_of(ws, new)
    print(accept_all_words(check, ws.path))
    c = check.cleared
    print("cleared", c.size, "poisons among them", int(truth[c].sum()), "share", round(check.share, 3))
    P = np.asarray(ws.store.pass_scores(pid)["flagged"], bool)
    print("patchsearch flags", P.sum(), "clean", int((P & ~truth).sum()))
