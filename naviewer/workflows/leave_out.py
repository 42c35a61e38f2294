"""A training without the confirmed poisons, read beside the encoder the review was made on.

``naviewer run WORKSPACE --leave-out-confirmed`` and the window's Train ▸ Leave out train a fresh encoder on the
samples a post-hoc review keeps. Their end said only "finished": whether the retrain removed the backdoor needs the
run's last kNN accuracy and ASR next to the reviewed encoder's and the no-poison floor (a newcomer, session 27).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from naviewer.errors import NaviewerError
from naviewer.workflows.finetune_record import last_metrics


def reviewed_run(ws) -> Optional[str]:
    """The workspace run whose checkpoint the reviewed post-hoc detection embedded with (None when that encoder
    came from outside the workspace, or nothing was detected post hoc)."""
    from naviewer.workflows.posthoc import posthoc_checkpoint

    try:
        checkpoint, _run, _tag = posthoc_checkpoint(ws)
    except NaviewerError:
        return None
    try:  # another workspace's checkpoints/train/last.pt is not this workspace's run "train" (a review, session 28)
        if not Path(checkpoint).resolve().is_relative_to(Path(ws.path).resolve()):
            return None
    except OSError:
        return None
    parts = Path(checkpoint).parts
    if "checkpoints" not in parts[:-1]:
        return None
    index = len(parts) - 1 - parts[::-1].index("checkpoints")
    return parts[index + 1] if index + 2 < len(parts) else None


def _written_at(ws) -> Optional[float]:
    """When the reviewed post-hoc detection's checkpoint was written, for one that is not its run's last.pt
    (at-review.pt, an epoch checkpoint): that encoder's figures are the run's records up to then. The comparison
    quoted the run's last epoch, the encoder retrained since (ASR 27.8 % after epoch 84 for a detection made at
    epoch 34, at 100 %; a newcomer, session 29). None: the run's last records are the checkpoint's."""
    from naviewer.workflows.posthoc import posthoc_checkpoint

    try:
        checkpoint, _run, _tag = posthoc_checkpoint(ws)
        path = Path(checkpoint)
        return None if path.name == "last.pt" else path.stat().st_mtime
    except (NaviewerError, OSError):
        return None


def samples_left_out(ws, run: str, plain_only: bool = False) -> int:
    """How many samples ``run`` was trained without (0: every sample). ``plain_only``: only a training without DIFT
    (``run --leave-out-confirmed``, the window's Leave out), not a retrain after a review, which records its removed
    samples the same way."""
    record = next((r for r in ws.store.runs() if r["name"] == run), None) or {}
    config = record.get("config") or {}
    if plain_only and (record.get("kind") != "train" or config.get("dift")):
        return 0
    left = config.get("exclude")
    return len(left) if isinstance(left, list) else 0


def recipe_differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """"32 px against 16 px", "ResNet-10 width 16 against width 8", "80 epochs against 60": what makes two runs'
    figures not the same recipe's (a newcomer read a 16 px retrain beside a 32 px encoder unwarned, session 28)."""
    out = []
    if before.get("image_size") and after.get("image_size") and before["image_size"] != after["image_size"]:
        out.append(f"{after['image_size']} px against {before['image_size']} px")
    b, a = before.get("backbone") or {}, after.get("backbone") or {}
    if (isinstance(a, dict) and isinstance(b, dict) and a and b
            and (a.get("arch"), a.get("width")) != (b.get("arch"), b.get("width"))):
        out.append(f"{a.get('arch')} width {a.get('width')} against {b.get('arch')} width {b.get('width')}")
    if before.get("epochs") and after.get("epochs") and before["epochs"] != after["epochs"]:
        out.append(f"{after['epochs']} epochs against {before['epochs']}")
    if before.get("method") and after.get("method") and before["method"] != after["method"]:
        out.append(f"{after['method']} against {before['method']}")
    return out


def _epochs(metrics: Path, upto: Optional[float] = None) -> Optional[int]:
    """The last epoch the run's records reached (before ``upto`` unix time when given)."""
    from naviewer.io import json_loads

    last = None
    if metrics.is_file():
        for line in metrics.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json_loads(line)
            except ValueError:
                continue
            if upto is not None and isinstance(record.get("time"), (int, float)) and float(record["time"]) > upto:
                continue
            if record.get("kind") == "epoch" and isinstance(record.get("epoch"), int):
                last = record["epoch"] + 1  # the trainer counts from 0: "after epoch 2" closed a 3-epoch run
    return last


def leave_out_comparison(ws, run: str, left_out: int) -> dict[str, Any]:
    """``run``'s last kNN accuracy / ASR, the reviewed encoder's (``before``), and the workspace's floor."""
    from naviewer.workflows.floor import read_floor
    from naviewer.workspace.runs import first_start_config

    folder = ws.path / "runs"
    before_run = reviewed_run(ws)
    if before_run == run:
        before_run = None
    upto = _written_at(ws) if before_run else None
    return {"run": run, "left_out": int(left_out), "checkpoint": str(ws.checkpoint_dir(run, create=False) / "last.pt"),
            "after": last_metrics(folder / run / "metrics.jsonl"),
            "after_epochs": _epochs(folder / run / "metrics.jsonl"), "before_run": before_run,
            "before": last_metrics(folder / before_run / "metrics.jsonl", upto) if before_run else {},
            "before_epochs": _epochs(folder / before_run / "metrics.jsonl", upto) if before_run else None,
            "floor": read_floor(ws), "crafted": bool(ws.config.get("attack")),
            "differences": recipe_differences(first_start_config(folder / before_run / "metrics.jsonl"),
                                              first_start_config(folder / run / "metrics.jsonl")) if before_run else [],
            "before_left_out": samples_left_out(ws, before_run) if before_run else 0}


def _figures(metrics: dict[str, float], epochs: Optional[int]) -> str:
    parts = []
    if "knn_acc" in metrics:
        parts.append(f"kNN accuracy {100 * metrics['knn_acc']:.1f} %")
    if "asr" in metrics:
        parts.append(f"ASR {100 * metrics['asr']:.1f} %")
    at = f" after epoch {epochs}" if epochs is not None else ""
    return (", ".join(parts) + at) if parts else f"no evaluation recorded{at}"


def leave_out_lines(comparison: dict[str, Any]) -> list[str]:
    """The comparison as lines for the terminal and the window's box."""
    c = comparison
    lines = [f"Trained without the {c['left_out']:,} confirmed poisons (run {c['run']}): "
             f"{_figures(c['after'], c['after_epochs'])}."]
    if c["before_run"]:
        # the newest post-hoc detection's encoder: decisions made on other passes are not tied to one encoder
        itself = (f", itself trained without {c['before_left_out']:,} samples"
                  if c.get("before_left_out") else "")  # a leave-out run read as the encoder before (session 28)
        lines.append(f"The encoder of the newest post-hoc detection (run {c['before_run']}{itself}): "
                     f"{_figures(c['before'], c['before_epochs'])}.")
        if c.get("differences"):
            lines.append("Not the same recipe (" + "; ".join(c["differences"]) + "): read the two side by side "
                         "with that in mind.")
    floor = c.get("floor")
    if floor and "asr" in c["after"]:
        lines.append(f"No-poison floor: ASR {100 * float(floor['asr']):.1f} % ({floor.get('protocol') or 'uniform'}): "
                     "an ASR within about 10 points of it is what a clean training gives (retrains of one kept set "
                     "differ by 10-20 points on the digits; results.md).")
    elif "asr" in c["after"]:
        lines.append("Read the ASR against the no-poison floor: naviewer run WORKSPACE --floor (Run ▸ Measure the "
                     "no-poison floor).")
    elif c.get("crafted"):
        lines.append("This run recorded no ASR: it trained without the monitor's evaluation (--no-monitor).")
    else:
        # the run's own checkpoint path: "checkpoints/RUN/last.pt" was relative to the workspace, not to where the
        # command ran (a newcomer following the docs, session 34)
        checkpoint = c.get("checkpoint") or f"WORKSPACE/checkpoints/{c['run']}/last.pt"
        lines.append("No ASR: the monitor measures a backdoor only with the trigger of an attack naviewer crafted. "
                     f"With a trigger image of your own: naviewer eval --checkpoint {checkpoint} "
                     "--train-dataset DATA --test-dataset TEST --attack patch --attack-setting trigger=TRIGGER.png "
                     "--target N. Run ▸ "
                     f"Detect… (naviewer detect WORKSPACE --checkpoint {checkpoint}) on the new encoder "
                     "shows whether the flagged group is gone.")
    return lines
