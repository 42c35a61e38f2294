"""An HTML report of a review: flagged clusters with thumbnails, decisions, settings and plots.

One self-contained file (thumbnails and plots embedded as base64 PNG) so it can be attached to a
ticket or archived next to the exported manifests. Qt-free: thumbnails are made with Pillow; the GUI
passes its plots in as PNG bytes.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import os
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from naviewer.analysis.clusters import REACH_LEGEND
from naviewer.analysis.review import REVIEW_STATES
from naviewer.analysis.session import AnalysisSession
from naviewer.outputs import REPORT_GENERATOR
from naviewer.workspace.anchor_record import UNTRUSTED_REASON

STATE_COLOURS = {"unreviewed": "#9e9e9e", "confirmed": "#d32f2f", "rejected": "#388e3c", "later": "#f9a825"}


def png_base64(image: np.ndarray, size: int = 64) -> str:
    """A uint8 (H, W, 3) image as a base64 PNG whose longer side is ``size`` pixels."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
    scale = size / max(img.width, img.height)
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _e(value: Any) -> str:
    return html.escape(str(value))


def _fmt(value: Any) -> str:
    try:
        return "–" if value is None or not np.isfinite(float(value)) else f"{float(value):.4g}"
    except (TypeError, ValueError):
        return "–"


UNTRUSTED_ANCHORS = (f"{UNTRUSTED_REASON} Read 'nothing flagged' with care, and give a trusted clean set "
                     "(naviewer anchors WORKSPACE SPEC) before relying on this review.")


def _trust_notes(settings: Mapping[str, Any]) -> list[str]:
    """Banners for what makes the pass less trustworthy: untrusted anchors (and the ones the screen
    dropped), degenerate embeddings or anchors. Empty for a pass that recorded none of that."""
    summary = settings.get("summary") or {}
    parts: list[str] = []
    box = "<div style='border:2px solid {c};background:{b};padding:.5em 1em;margin:1em 0'>"
    if summary.get("anchors_trusted") is False:
        from naviewer.catalogue import SCREEN_DROP_WORDS

        notes = list(settings.get("anchor_notes") or [])
        parts.append(box.format(c="#d32f2f", b="#fdecea") + "<b>Anchors NOT trusted.</b> " + _e(UNTRUSTED_ANCHORS)
                     + (f"<br>The screen dropped {len(notes)} anchor(s) on suspicion ({SCREEN_DROP_WORDS}): "
                        + _e("; ".join(notes[:20])) if notes else "") + "</div>")
    elif summary.get("anchors_trusted") is True:
        parts.append(f"<p>DIFT's anchors: {int(summary.get('anchors') or 0)} trusted clean samples.</p>")
    warnings = list(settings.get("warnings") or summary.get("warnings") or [])
    if warnings:
        from naviewer.analysis.reach import crop_flags_note

        note = crop_flags_note({**summary, "warnings": warnings})
        parts.append(box.format(c="#f9a825", b="#fff8e1") + "<b>Warnings before any verdict:</b><ul>"
                     + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul>"
                     + (f"<p><i>{_e(note)}</i></p>" if note else "") + "</div>")
    return parts


def _passes_list(session: AnalysisSession) -> list[str]:
    """Every detection pass of the workspace in one line each, those that flagged nothing too: the report listed
    only passes with a score, so three DIFT passes that found nothing were absent from it (a newcomer, session 32)."""
    from naviewer.defense.dift import nothing_words

    store = getattr(session, "store", None)
    if store is None or not hasattr(store, "passes"):
        return []
    rows = []
    for r in store.passes():
        settings = r.get("settings") if isinstance(r.get("settings"), dict) else {}
        summary = settings.get("summary") if isinstance(settings.get("summary"), dict) else {}
        flagged = settings.get("flagged", summary.get("flagged"))
        threshold = summary.get("threshold") if isinstance(summary.get("threshold"), dict) else {}
        said = ("flagged nothing: " + nothing_words(summary)
                if summary.get("noop") else f"no verdict: {threshold['refused']}" if threshold.get("refused")
                else f"{int(flagged):,} flagged" if isinstance(flagged, (int, float)) and not isinstance(flagged, bool)
                else "")
        where = ", ".join(([f"run {r['run']}"] if r.get("run") else [])
                          + ([f"epoch {int(r['epoch']) + 1}"] if isinstance(r.get("epoch"), int) else [])) or "-"
        shown = " (this report's)" if getattr(session, "pass_id", None) == r.get("id") else ""
        rows.append(f"<tr><td>{int(r['id'])}{shown}</td><td>{_e(r.get('method'))}</td><td>{_e(where)}</td>"
                    f"<td>{_e(said)}</td></tr>")
    if len(rows) < 2:
        return []
    return ["<h2>Every detection pass</h2><table><tr><th>pass</th><th>method</th><th>where</th><th>verdict</th></tr>",
            *rows, "</table>"]


def _detector_table(session: AnalysisSession) -> list[str]:
    """The other detectors' passes of the workspace side by side: flags, rule, and in evaluation mode
    AUROC (both ways), precision and recall (what ``naviewer detect --detector`` recorded)."""
    store = getattr(session, "store", None)
    if store is None or not hasattr(store, "passes"):
        return []
    rows = [r for r in store.passes() if "score" in (r.get("scores") or [])]
    if not rows:
        return []
    from naviewer.defense.detectors.base import rule_words

    # the ground-truth columns only where some pass has them: a dataset of one's own has no truth, and a table of
    # dashes under "AUROC against the ground truth" read as a failure (a newcomer following the docs, session 34)
    truth = any(((r.get("settings") or {}).get("summary") or {}).get("auroc") is not None for r in rows)
    out = ["<h2>Other detectors</h2>"
           + ("<p>AUROC against the ground truth (evaluation mode): 1 = every poison ranked above every clean sample, "
              "0.5 = chance; the next column is the same read the other way (1 - AUROC), high where a detector ranks "
              "the poisons last.</p>" if truth else "")
           + "<table><tr><th>pass</th><th>detector</th><th>flagged</th><th>rule</th>"
           + ("<th>AUROC</th><th>1 - AUROC (poisons ranked last)</th><th>precision</th><th>recall</th>" if truth else "")
           + "<th>direction</th></tr>"]
    for r in rows:
        settings = r.get("settings") or {}
        summary = settings.get("summary") or {}
        rule = rule_words(settings.get("threshold"))
        measured = (f"<td>{_fmt(summary.get('auroc'))}</td><td>{_fmt(summary.get('auroc_reversed'))}</td>"
                    f"<td>{_fmt(summary.get('precision'))}</td><td>{_fmt(summary.get('recall'))}</td>") if truth else ""
        out.append(f"<tr><td>{int(r['id'])}</td><td>{_e(r['method'])}</td><td>{_e(summary.get('flagged', ''))}</td>"
                   f"<td>{_e(rule)}</td>{measured}<td>{_e(settings.get('direction_note', ''))}</td></tr>")
    out.append("</table>")
    return out


def render_report(
    session: AnalysisSession,
    *,
    title: str = "naviewer review report",
    plots: Optional[Mapping[str, bytes]] = None,
    settings: Optional[Mapping[str, Any]] = None,
    max_clusters: int = 50,
    thumbs_per_cluster: int = 12,
    audit_rows: int = 1000,
    export_summary: Optional[Mapping[str, Any]] = None,
    finetune: Optional[Mapping[str, Any]] = None,
) -> str:
    """The report as an HTML string; ``finetune``: the last fine-tune / remove-and-retrain's record (before, after,
    floor, protocol, confirmed, earlier; :func:`naviewer.workflows.posthoc.latest_finetune_result`), its section."""
    counts = session.review_counts()
    flagged = int(session.flagged_mask.sum())
    all_counts = session.review_counts(np.arange(session.n))
    parts: list[str] = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        REPORT_GENERATOR,  # lets review --report replace this file, and only a file with it
        f"<title>{_e(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:13px}th{background:#f3f3f3}"
        ".thumb{border:3px solid;margin:2px;image-rendering:pixelated}.plot{max-width:100%;margin:.5em 0}"
        ".state{display:inline-block;padding:0 6px;border-radius:3px;color:white}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p>Generated {_e(_dt.datetime.now().isoformat(timespec='seconds'))} by {_e(session.reviewer)}.</p>",
        *_trust_notes(session.settings),
        *_trigger_check_note(session),
        "<h2>Summary</h2><table>",
        f"<tr><th>samples</th><td>{session.n:,}</td></tr>",
        f"<tr><th>flagged</th><td>{flagged:,}</td></tr>",
    ]
    for state in REVIEW_STATES:
        parts.append(
            f"<tr><th><span class='state' style='background:{STATE_COLOURS[state]}'>{state}</span></th>"
            f"<td>{counts[state]:,} of the {flagged:,} flags · {all_counts[state]:,} of all {session.n:,} samples</td></tr>"
        )
    parts.append(f"<tr><th>removed (confirmed poisons)</th><td>{all_counts['confirmed']:,}</td></tr>")
    truth = session.truth_poison_mask()
    if truth is not None and truth.any():
        # the removed set said "117 poisons" of a demo with 113 (a newcomer, session 31): what the attack's own record
        # says of them, beside the analyst's word (evaluation only: no decision reads it)
        removed = session.state_codes == REVIEW_STATES.index("confirmed")
        parts.append("<tr><th>by the crafted attack's ground truth (evaluation)</th>"
                     f"<td>removed: {int((removed & truth).sum()):,} poisons and {int((removed & ~truth).sum()):,} clean "
                     f"samples · kept: {int((~removed & truth).sum()):,} of the {int(truth.sum()):,} poisons</td></tr>")
    if not any(str(key).startswith("kept") for key in (export_summary or {})):  # the export's own count follows
        parts.append(f"<tr><th>kept</th><td>{session.n - all_counts['confirmed']:,}</td></tr>")
    if export_summary:
        for key, value in export_summary.items():
            parts.append(f"<tr><th>{_e(key)}</th><td>{_e(value)}</td></tr>")
    parts.append("</table>")

    parts.extend(_finetune_section(finetune))
    if plots:
        parts.append("<h2>Plots</h2>")
        for name, png in plots.items():
            data = base64.b64encode(png).decode("ascii")
            parts.append(f"<h3>{_e(name)}</h3><img class='plot' alt='{_e(name)}' src='data:image/png;base64,{data}'>")

    parts.extend(_passes_list(session))
    parts.extend(_detector_table(session))
    clusters = session.clusters()
    parts.append(f"<h2>Flagged clusters ({len(clusters)})</h2>")
    if any(np.isfinite(cl.anchor_reach) for cl in clusters[:max_clusters]):
        parts.append(f"<p>{_e(REACH_LEGEND)}</p>")
    parts.append(
        f"<table><tr><th>#</th><th>size</th><th>mean density</th><th>mean MinDist</th><th title='{_e(REACH_LEGEND)}'>"
        "anchor reach</th><th>classes</th><th>review</th><th>members (most typical first)</th></tr>"
    )
    codes = session.state_codes
    for cl in clusters[:max_clusters]:
        comp = ", ".join(f"{_e(session.class_name(lab))} {cnt}" for lab, cnt in cl.composition[:4])
        progress = session.review_counts(cl.members)
        prog = " ".join(f"{k} {v}" for k, v in progress.items() if v)
        shown = list(cl.representatives) + [m for m in cl.members if m not in set(cl.representatives)]
        thumbs = []
        for i in shown[:thumbs_per_cluster]:
            image = session.image(int(i))
            state = REVIEW_STATES[int(codes[i])]
            tip = f"#{int(i)} {state}"
            if image is not None:
                thumbs.append(
                    f"<img class='thumb' title='{_e(tip)}' style='border-color:{STATE_COLOURS[state]}' "
                    f"src='data:image/png;base64,{png_base64(image)}'>"
                )
            else:
                thumbs.append(f"<span title='{_e(tip)}'>#{int(i)}</span>")
        parts.append(
            f"<tr><td>{cl.cluster_id + 1}</td><td>{cl.size}</td><td>{_fmt(cl.mean_density)}</td><td>{_fmt(cl.mean_mindist)}</td>"
            f"<td>{_fmt(cl.anchor_reach) if not np.isfinite(cl.anchor_reach) else f'{cl.anchor_reach:.2f}'}</td><td>{comp}</td><td>{_e(prog)}</td><td>{''.join(thumbs)}</td></tr>"
        )
    parts.append("</table>")
    if len(clusters) > max_clusters:
        parts.append(f"<p>… and {len(clusters) - max_clusters} more clusters.</p>")

    all_settings = dict(session.settings)
    if settings:
        all_settings.update(settings)
    parts.append("<h2>Settings</h2><pre>" + _e(json.dumps(all_settings, indent=2, default=str, sort_keys=True)) + "</pre>")

    log = list(reversed(session.store.audit_log(limit=audit_rows)))  # newest first
    parts.append(f"<h2>Decisions (latest {len(log)})</h2><table><tr><th>time</th><th>sample</th><th>source</th><th>old</th><th>new</th><th>reviewer</th><th>note</th></tr>")
    for row in log:
        sid = int(row.get("sample_id", -1))
        when = row.get("time")
        when_s = _dt.datetime.fromtimestamp(float(when)).isoformat(timespec="seconds") if isinstance(when, (int, float)) else str(when)
        source = session.source_keys[sid] if session.source_keys is not None and 0 <= sid < session.n else ""
        parts.append(
            f"<tr><td>{_e(when_s)}</td><td>{sid}</td><td>{_e(source)}</td><td>{_e(row.get('old', ''))}</td>"
            f"<td>{_e(row.get('new', ''))}</td><td>{_e(row.get('reviewer', ''))}</td><td>{_e(row.get('note', ''))}</td></tr>"
        )
    parts.append("</table></body></html>")
    return "\n".join(parts)


def _trigger_check_note(session: AnalysisSession) -> list[str]:
    """The pass's trigger check, as accept-all reads it: how many flags it leaves unconfirmed and which (the report
    said nothing of it, nor of the clean samples among the removed; a newcomer, session 31)."""
    from naviewer.analysis.reach import check_record, trigger_check_clears

    recorded = check_record(session.settings)
    pass_scores = getattr(session.store, "pass_scores", None)
    if recorded is None or pass_scores is None:
        return []
    patch_pass, limit, coverage = recorded
    try:
        patch = np.asarray(pass_scores(patch_pass)["flagged"], dtype=bool)
        cleared, share = trigger_check_clears(session.scores["flagged"], session.scores["anchor_reach"], patch,
                                              limit, coverage)
    except (KeyError, TypeError, ValueError):
        return []
    if share < coverage:
        return [f"<p><b>Trigger check</b> (PatchSearch pass {patch_pass} on the same encoder): it "
                f"flags {share:.0%} of the flags, fewer than {coverage:.0%}, so it clears none (finding no trigger in a "
                "flag then says nothing of it).</p>"]
    codes = session.state_codes
    confirmed = int(np.count_nonzero(codes[cleared] == REVIEW_STATES.index("confirmed"))) if cleared.size else 0
    ids = ", ".join(str(int(i)) for i in cleared[:60]) + (f", … ({cleared.size:,} in all)" if cleared.size > 60 else "")
    return [f"<p><b>Trigger check</b> (PatchSearch pass {patch_pass} on the same encoder, which "
            f"flags {share:.0%} of the flags): {cleared.size:,} flag{'' if cleared.size == 1 else 's'} the trusted anchors "
            f"reach as clean (above {limit:g}) carr{'ies' if cleared.size == 1 else 'y'} no "
            "trigger it can find; accept-all leaves them unconfirmed"
            + (f"; {confirmed:,} of them are confirmed now" if confirmed else "") + (f": {_e(ids)}" if ids else "")
            + ".</p>"]


#: the fine-tune section's rows: record key, words
FINETUNE_ROWS = (("asr", "attack success rate (lower is better)"), ("asr_all", "ASR, every test image"),
                 ("knn_acc", "kNN accuracy (higher is better)"),
                 ("confirmed_density", "the removed samples' neighbourhood density"))


def _finetune_section(record: Optional[Mapping[str, Any]]) -> list[str]:
    """Before / after of the last fine-tune or remove-and-retrain, beside the no-poison floor: the report said
    nothing of it, though the Fine-tune tab's table is what the review was for (a newcomer, session 30)."""
    if not isinstance(record, Mapping):
        return []
    before = record.get("before") if isinstance(record.get("before"), Mapping) else {}
    after = record.get("after") if isinstance(record.get("after"), Mapping) else {}
    floor = record.get("floor") if isinstance(record.get("floor"), Mapping) else {}
    rows = [(key, words) for key, words in FINETUNE_ROWS if key in before or key in after]
    if not rows:
        return []

    def cell(value: Any, key: str) -> str:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return "–"
        return f"{100 * value:.1f} %" if key != "confirmed_density" else f"{value:.4g}"

    step = "retrain" if record.get("kind") == "retrain" else "fine-tune"
    again = f" (run {_e(record['again'])}, a retrain on the decisions as they were then)" if record.get("again") else ""
    confirmed = record.get("confirmed")
    lead = (f"<p>The last {step}{again}"
            + (f", without {int(confirmed):,} confirmed samples" if isinstance(confirmed, int) and not isinstance(confirmed, bool) else "")
            + f"; ASR with the {_e(record.get('protocol') or floor.get('protocol') or 'uniform')} test-time protocol. "
            "The no-poison floor is the same recipe trained on the clean set: an ASR after near it is as low as this "
            "encoder goes.</p>")
    parts = ["<h2>Fine-tune / retrain</h2>", lead,
             "<table><tr><th>metric</th><th>before</th><th>after</th><th>no-poison floor</th></tr>"]
    for key, words in rows:
        parts.append(f"<tr><th>{_e(words)}</th><td>{cell(before.get(key), key)}</td><td>{cell(after.get(key), key)}</td>"
                     f"<td>{cell(floor.get(key), key) if floor else 'not measured'}</td></tr>")
    parts.append("</table>")
    for earlier in record.get("earlier") or []:
        if isinstance(earlier, Mapping) and isinstance(earlier.get("after"), Mapping):
            figures = ", ".join(f"{words.split(' (')[0]} {cell(earlier['after'].get(key), key)}"
                                for key, words in FINETUNE_ROWS[:3] if key in earlier["after"])
            if figures:
                which = "the first retrain" if earlier.get("first") else "a retrain again"
                parts.append(f"<p>Before it, {which} (run {_e(earlier.get('run'))}) read {figures}.</p>")
    return parts


def write_report(session: AnalysisSession, path: os.PathLike | str, **kwargs: Any) -> Path:
    """Write :func:`render_report` atomically (:func:`naviewer.io.atomic_write_text`: a failed write, a full disk,
    leaves no temporary file and names the report; it left ``REPORT.tmp`` and said "the disk is full" alone)."""
    from naviewer.io import atomic_write_text

    return atomic_write_text(Path(path), render_report(session, **kwargs))
