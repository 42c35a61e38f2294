"""Session 35: the Fine-tune tab's check after the retrain, as a newcomer meets it (real window under Xvfb)."""
import sys, time
from pathlib import Path
import numpy as np
from naviewer.gui.screenshots import _shot_app, _shot_window, _settle, _grab_screen

WS = Path(sys.argv[1]).absolute()
W, H = int(sys.argv[2]), int(sys.argv[3])
tag = f"{W}x{H}"
app = _shot_app()
w = _shot_window(app, "light", (W, H))

def wait(job, limit=900):
    t = time.time()
    while job is not None and job.running and time.time() - t < limit:
        _settle(app, 0.5)
    _settle(app, 2)

wait(w.open_workspace(WS))
_settle(app, 3)
dock = w.analyst_dock
panel = dock.panel
panel.tabs.setCurrentWidget(panel.finetune_gate); _settle(app, 2)
gate = panel.finetune_gate
print("check button:", gate.check_button.isVisible(), gate.check_button.text())
_grab_screen(app, Path(f"1_tab_{tag}.png"))
started = []
w.jobs.job_started.connect(started.append)
gate.check_button.click(); _settle(app, 3)
_grab_screen(app, Path(f"2_running_{tag}.png"))
job = next(j for j in started if j.name.startswith("Look for triggers"))
t0 = time.time(); wait(job); print("check", job.state, f"{time.time() - t0:.0f} s", {k: v for k, v in (job.result or {}).items() if k != 'words'})
print("line:", gate.check_line.text())
_grab_screen(app, Path(f"3_found_{tag}.png"))
if gate.confirm_check_button.isVisible():
    gate.confirm_check_button.click(); _settle(app, 2)
    print("again:", gate.again_button.isVisible(), gate.again_button.isEnabled(), gate.again_button.text())
    _grab_screen(app, Path(f"4_confirmed_{tag}.png"))
    if len(sys.argv) > 4:
        gate.again_button.click(); _settle(app, 2)
        again = next((j for j in started if j.name.startswith("Retrain again")), None)
        t0 = time.time(); wait(again); print("again", again and again.state, f"{time.time() - t0:.0f} s")
        _settle(app, 3)
        print("reason:", gate.reason.text()[:300])
        _grab_screen(app, Path(f"5_again_{tag}.png"))
