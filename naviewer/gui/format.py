"""Small text formatting helpers shared by panels (durations, job progress)."""

from __future__ import annotations

from typing import Optional


def encoder_text(encoder: dict) -> str:
    """``resnet10 width 16, 16 px`` from a pass's ``settings["encoder"]`` record."""
    arch = f"{encoder.get('arch')}" + (f" width {encoder['width']}" if encoder.get("width") else "")
    return arch + (f", {encoder['image_size']} px" if encoder.get("image_size") else "")


def duration(seconds: Optional[float]) -> str:
    """``"1:05"``, ``"1h02m"``; empty for None (unknown)."""
    if seconds is None:
        return ""
    seconds = int(round(max(seconds, 0.0)))
    if seconds >= 3600:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 60}:{seconds % 60:02d}"


def remaining(seconds: Optional[float]) -> str:
    return f"{duration(seconds)} left" if seconds is not None else ""


def event_text(kind: str, data: object) -> str:
    """One Log line for a job's event, in words: the Log showed the trainer's record names ("dift_review",
    "epoch_end_resumed", "finetune") to an analyst who never reads metrics.jsonl (a newcomer, session 17)."""
    d = data if isinstance(data, dict) else {}
    message = d.get("message")
    if kind == "log":
        return str(message or "")
    if kind == "warning":
        return f"warning — {message}" if message else "warning"

    def n(key: str) -> str:
        value = d.get(key)
        return f"{int(value):,}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "?"

    epoch = f" at epoch {d['epoch']}" if isinstance(d.get("epoch"), int) else ""
    epoch_1 = f" at epoch {d['epoch'] + 1}" if isinstance(d.get("epoch"), int) else ""
    texts = {
        "paused": "paused",
        "resumed": "resumed",
        # an epoch tag is the 0-based file name: "epoch 30 (epoch_0029)" read as one off (a newcomer, session 19)
        "checkpoint": f"checkpoint saved{epoch}" + (f" ({d['tag']})" if d.get("tag")
                                                    and not str(d["tag"]).startswith("epoch_") else ""),
        "finished": f"training finished after {n('epochs')} epochs"
                    + (f" ({str(d['reason']).replace('_', ' ')})" if d.get("reason") else ""),
        "cancelled": f"cancelled{epoch}; the last checkpoint is kept",
        "restart": f"training goes on with {n('n_samples')} samples for {n('remaining_epochs')} more epochs",
        "epoch_end_resumed": f"epoch {d.get('epoch', '?')} finished after the resume",
        # DIFT's events carry the 0-based epoch index: "at epoch 33" stood beside the demo's "at epoch 34 (detection
        # pass 1)" and the panel's title for the same flags (a newcomer, session 25)
        "dift_stop": f"DIFT's flags settled{epoch_1}: {n('flagged')} flagged",
        "dift_review": f"DIFT flagged {n('flagged')} samples{epoch_1}: the review is waiting for you",
        "dift_decision": f"review: {d.get('decision', '?')}, {n('accepted')} of {n('flagged')} flags accepted",
        # not "fine-tuning": a retrain's next line said "fine-tuning skipped" (a newcomer, session 29)
        "review_done": "review done: the confirmed flags leave the training, then the restart",
    }
    if kind == "finetune":
        text = (str(d["reason"]) if d.get("fallback") and d.get("reason")  # the paper's restart retrained instead
                else f"fine-tuning skipped: {d['reason']}" if d.get("skipped") and d.get("reason")
                else "fine-tuning skipped" if d.get("skipped") else f"fine-tuned on {n('n')} confirmed samples")
    else:
        text = texts.get(kind, kind.replace("_", " "))
    return text + (f" — {message}" if message and kind in texts else "")


def before_after_text(before: object, after: object) -> str:
    """"kNN accuracy 92.1 → 91.8 %, ASR 80.4 → 21.0 %" for the Log (it printed the two dicts as Python does)."""
    b = before if isinstance(before, dict) else {}
    a = after if isinstance(after, dict) else {}
    parts = []
    for key, name, percent in (("knn_acc", "kNN accuracy", True), ("asr", "ASR", True),
                               ("confirmed_density", "density of the confirmed", False)):
        x, y = b.get(key), a.get(key)
        if isinstance(x, (int, float)) and isinstance(y, (int, float)):
            parts.append(f"{name} {100 * x:.1f} → {100 * y:.1f} %" if percent else f"{name} {x:.3g} → {y:.3g}")
    return ", ".join(parts) or "nothing measured before and after"


def short_path(text: str, base: Optional[str] = None, limit: int = 32) -> str:
    """A path for a narrow column: relative to ``base`` (the workspace) when inside it, else the last folders
    after "…/" when longer than ``limit``; a trailing " (note)" is kept. At 1280 px the Overview wrapped a full
    path one folder a line and cut its note off (a newcomer, session 18); the full text goes in a tooltip."""
    from pathlib import PurePath

    path, sep, note = text.partition(" (")
    shown = path
    if base:
        try:
            relative = PurePath(path).relative_to(PurePath(base))
            shown = str(relative) if str(relative) != "." else PurePath(path).name
        except ValueError:
            pass
    if shown == path and len(path) > limit:
        parts = PurePath(path).parts
        tail = ""
        for part in reversed(parts[1:]):
            candidate = part if not tail else f"{part}/{tail}"
            if tail and len(candidate) + 2 > limit:
                break
            tail = candidate
        shown = f"…/{tail}" if tail and tail != path.lstrip("/") else path
    return shown + (sep + note if sep else "")
