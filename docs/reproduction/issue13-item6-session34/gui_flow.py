"""Session 34: the second round through the window on seed 1 / 2 threads' workspace (session 33's demo6 cell):
Detect with patchsearch on the retrained encoder, confirm its new flags, then the DIFT pass's Retrain again."""
import time
from pathlib import Path
import numpy as np
from naviewer.gui.screenshots import _shot_app, _shot_window, _settle, _grab_screen
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace

WS = Path("/work/exp/s34/gui2/ws").absolute()
app = _shot_app()
w = _shot_window(app, "light", (1280, 720))

def wait(job, limit=1800):
    t = time.time()
    while job is not None and job.running and time.time() - t < limit:
        _settle(app, 0.5)
    _settle(app, 2)

wait(w.open_workspace(WS))
w.show_analyst(WS, 1); _settle(app, 3)
print("opened pass", w.analyst_dock.pass_id)
gate = w.analyst_dock.panel.finetune_gate
print("gate done:", bool(gate.done_text), "|", gate.reason.text()[:160])
w.setFocus()
job = w.detect(WS / "checkpoints" / "demo" / "last.pt", detectors=("patchsearch",), run="after-retrain")
t0 = time.time(); wait(job); print("detect", job.state, f"{time.time() - t0:.0f} s", job.result and job.result.get("detector_passes"))
ps = int(job.result["detector_passes"]["patchsearch"])
w.show_analyst(WS, ps); _settle(app, 3)
session = w.analyst_dock.panel.session
flagged = np.flatnonzero(session.flagged_mask)
states = session.state_codes
with Workspace.open(WS, read_only=True) as ws:
    truth = ground_truth_mask(ws)
from naviewer.analysis.review import STATE_CODE
new = flagged[states[flagged] != STATE_CODE["confirmed"]]
print("patchsearch flags", flagged.size, "not yet confirmed", new.size, "poisons among them", int(truth[new].sum()))
_grab_screen(app, Path("1_patchsearch.png"))
session.confirm(new); _settle(app, 2)
w.show_analyst(WS, 1); _settle(app, 3)
panel = w.analyst_dock.panel
panel.tabs.setCurrentWidget(panel.finetune_gate); _settle(app, 1)
gate = panel.finetune_gate
print("again offered:", gate.again_button.isVisible(), gate.again_button.text(), "enabled:", gate.again_button.isEnabled())
if not gate.again_button.isEnabled() and gate.override.isVisible():
    gate.override.setChecked(True); gate.update_gate(); _settle(app, 1)
    print("override ticked; enabled:", gate.again_button.isEnabled())
_grab_screen(app, Path("2_finetune_tab.png"))
started = []
w.jobs.job_started.connect(started.append)
gate.again_button.click(); _settle(app, 2)
job = next((j for j in started if j.name.startswith("Retrain again")), None)
print("job:", job and job.name)
t0 = time.time(); wait(job); print("retrain again", job and job.state, f"{time.time() - t0:.0f} s")
print("result:", {k: v for k, v in (job.result or {}).items() if k in ("again", "confirmed", "after", "before")})
_settle(app, 3)
_grab_screen(app, Path("3_after_again.png"))
