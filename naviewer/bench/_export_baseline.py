"""Frozen copy of ``naviewer.workspace.export.export_manifests`` as it was before it streamed (issue 17 item 4):
every sample row loaded at once (``store.samples()``: N keys and hashes as Python strings, object-array
columns for samples.csv, the kept indices as one Python list in provenance.json). Kept only as the
same-run baseline of ``naviewer bench export``; nothing else uses it.
"""


from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional

import numpy as np

from naviewer.errors import NaviewerError
from naviewer.io import describe_os_error, fsync_dir, json_default, temp_path_for
from naviewer.jobs import JobContext, ensure_context
from naviewer.workspace.export import (
    CLASSES_NAME,
    CSV_COLUMNS,
    KEPT_NAME,
    MANIFEST_NAMES,
    PROVENANCE_NAME,
    README_NAME,
    SAMPLES_NAME,
    UNDECIDED_STATES,
    ExportResult,
    PathLike,
    _bool_column,
    _class_lines,
    _csv_keys,
    _float_column,
    _HashingWriter,
    _int_column,
    _kept_path_rule,
    _make_out_dir,
    _provenance,
    _readme,
    _write_text,
    default_out_dir,
)

if TYPE_CHECKING:
    from naviewer.workspace.workspace import Workspace


def export_manifests(
    ws: "Workspace",
    out_dir: Optional[PathLike] = None,
    ctx: Optional[JobContext] = None,
    drop_unreviewed_flags: bool = False,
    chunk_rows: int = 50_000,
) -> ExportResult:
    """Write the three manifests of ``ws`` into ``out_dir`` (default ``<ws>/exports/<timestamp>``).

    Uses the latest detection pass (any method) if there is one. Honours ``ctx.check()`` between
    chunks of ``chunk_rows`` rows; on cancel or error nothing is left in ``out_dir``.
    """
    ctx = ensure_context(ctx)
    out = Path(out_dir) if out_dir is not None else default_out_dir(ws)
    store = ws.store

    # everything is read (and checked) before the output folder is touched
    samples = store.samples()
    n = len(samples["id"])
    states = store.review_states()
    pass_id = store.latest_pass_id()
    scores: dict[str, np.ndarray] = store.pass_scores(pass_id) if pass_id is not None else {}
    detection = store.pass_info(pass_id) if pass_id is not None else None
    flagged = np.asarray(scores["flagged"], dtype=bool) if "flagged" in scores else np.zeros(n, dtype=bool)
    removed = states == "confirmed"
    unreviewed_flags = flagged & np.isin(states, UNDECIDED_STATES)
    kept = ~removed
    if drop_unreviewed_flags:
        kept &= ~unreviewed_flags
    kept_ids = np.flatnonzero(kept)
    keys: list[str] = samples["source_key"]
    file_root, kept_paths = _kept_path_rule(ws.config.get("dataset", {}))
    if file_root is not None:
        kept_entries = [(file_root / keys[i]).as_posix() for i in kept_ids.tolist()]
    else:
        kept_entries = [keys[i] for i in kept_ids.tolist()]
    _check_entries(ws, kept_entries, kept_ids, keys, samples["hash"])
    labels = samples["label"]
    label_list = labels.tolist()
    total_rows = len(kept_ids) + n
    chunk_rows = max(1, int(chunk_rows))

    created = _make_out_dir(out)
    staged: dict[str, Path] = {}
    committed = False
    try:
        # -- kept.txt: `path label`, the file-list convention of SSL backdoor research code
        staged[KEPT_NAME] = temp_path_for(out / KEPT_NAME)
        with open(staged[KEPT_NAME], "wb") as handle:
            kept_writer = _HashingWriter(handle)
            for start in range(0, len(kept_ids), chunk_rows):
                ctx.check()
                part = kept_ids[start : start + chunk_rows]
                entries = kept_entries[start : start + chunk_rows]
                kept_writer.write("".join(f"{e} {label_list[i]}\n" for e, i in zip(entries, part.tolist())))
                ctx.progress(start + len(part), total_rows, "exporting manifests")
            handle.flush()
            os.fsync(handle.fileno())

        # -- classes.txt: line i = name of label i (naviewer's list reader reads it beside a list)
        class_names = ws.class_names
        staged[CLASSES_NAME] = temp_path_for(out / CLASSES_NAME)
        classes_sha = _write_text(staged[CLASSES_NAME], "".join(f"{name}\n" for name in _class_lines(class_names)))

        # -- samples.csv: every sample with its scores, flags and review state
        columns = [
            np.asarray(samples["id"]).astype(str).astype(object),
            _csv_keys(keys),
            np.asarray(samples["hash"], dtype=object),
            labels.astype(str).astype(object),
            _float_column(scores.get("density"), n),
            _int_column(scores.get("rank"), n),
            _bool_column(scores.get("candidate"), n),
            _float_column(scores.get("mindist"), n),
            _float_column(scores.get("posterior"), n),
            _bool_column(scores.get("flagged"), n),
            _bool_column(scores.get("spread"), n),
            _int_column(scores.get("cluster"), n),
            states.astype(object),
            _bool_column(kept, n),
        ]
        detector_names, detector_columns = _detector_columns(store, pass_id, n)
        columns += detector_columns
        staged[SAMPLES_NAME] = temp_path_for(out / SAMPLES_NAME)
        with open(staged[SAMPLES_NAME], "wb") as handle:
            csv_writer = _HashingWriter(handle)
            csv_writer.write(",".join(CSV_COLUMNS + tuple(detector_names)) + "\n")
            for start in range(0, n, chunk_rows):
                ctx.check()
                stop = min(start + chunk_rows, n)
                rows = zip(*(column[start:stop] for column in columns))
                csv_writer.write("".join(",".join(row) + "\n" for row in rows))
                ctx.progress(len(kept_ids) + stop, total_rows, "exporting manifests")
            handle.flush()
            os.fsync(handle.fileno())

        # -- README.txt: what the entries are and how to rebuild the cleaned dataset
        ctx.check()
        dataset_record = ws.config.get("dataset", {})
        kept_dataset = _kept_dataset(dataset_record, kept_ids)
        staged[README_NAME] = temp_path_for(out / README_NAME)
        readme_sha = _write_text(staged[README_NAME], _readme(ws, out, dataset_record, file_root, kept_dataset is not None,
                                                              n, int(kept.sum()), int(removed.sum()), pass_id))

        # -- provenance.json: what was exported, from what, by whose decisions
        ctx.check()
        state_counts = {state: int(count) for state, count in zip(*np.unique(states, return_counts=True))}
        provenance = _provenance(
            ws,
            pass_id=pass_id,
            detection=detection,
            counts={
                "samples": n,
                "kept": int(kept.sum()),
                "removed": int(removed.sum()),
                "flagged": int(flagged.sum()),
                "unreviewed_flags": int(unreviewed_flags.sum()),
                "unreviewed_flags_dropped": int(unreviewed_flags.sum()) if drop_unreviewed_flags else 0,
            },
            state_counts=state_counts,
            files={
                KEPT_NAME: {"sha256": kept_writer.sha256.hexdigest(), "bytes": kept_writer.size, "lines": len(kept_ids)},
                SAMPLES_NAME: {"sha256": csv_writer.sha256.hexdigest(), "bytes": csv_writer.size, "rows": n},
                CLASSES_NAME: {**classes_sha, "lines": len(class_names)},
                README_NAME: readme_sha,
            },
            drop_unreviewed_flags=drop_unreviewed_flags,
            kept_paths=kept_paths,
        )
        provenance["kept_dataset"] = kept_dataset
        staged[PROVENANCE_NAME] = temp_path_for(out / PROVENANCE_NAME)
        with open(staged[PROVENANCE_NAME], "wb") as handle:
            handle.write((json.dumps(provenance, indent=2, default=json_default) + "\n").encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        ctx.check()

        # -- commit: the old marker goes first, the new marker last
        with contextlib.suppress(FileNotFoundError):
            (out / PROVENANCE_NAME).unlink()
        for name in MANIFEST_NAMES:
            os.replace(staged.pop(name), out / name)
        fsync_dir(out)
        committed = True
    except OSError as exc:
        where = exc.filename if isinstance(exc.filename, str) and not Path(exc.filename).name.startswith(".") else out
        raise NaviewerError(f"cannot write the manifests: {describe_os_error(exc)}; nothing was exported", where) from None
    finally:
        for tmp in staged.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        if not committed:
            for folder in created:  # folders this export made, innermost first: leave none behind
                with contextlib.suppress(OSError):
                    folder.rmdir()
    if total_rows == 0:
        ctx.progress(0, 0, "exporting manifests")
    return ExportResult(
        out_dir=out,
        kept_path=out / KEPT_NAME,
        samples_path=out / SAMPLES_NAME,
        provenance_path=out / PROVENANCE_NAME,
        total=n,
        kept=int(kept.sum()),
        removed=int(removed.sum()),
        unreviewed_flags=int(unreviewed_flags.sum()),
        dropped_unreviewed_flags=drop_unreviewed_flags,
        pass_id=pass_id,
        classes_path=out / CLASSES_NAME,
        readme_path=out / README_NAME,
        entries_are_paths=file_root is not None,
    )


def _check_entries(ws: "Workspace", entries: list[str], kept_ids: np.ndarray, keys: list[str],
                   hashes: list[str]) -> None:
    """Refuse, before anything is written, a store whose rows cannot be written as one manifest line each.

    A registered name with a control character or line separator would end its ``kept.txt`` line
    early and forge the next (``evil\\nINJECTED_LINE 7``); sources refuse such names, so only a
    store written by another tool gets here. A key or hash that is not text (a tampered row) is
    refused too, instead of failing half-way through ``samples.csv``.
    """
    from naviewer.data.names import bad_name_char, list_line_problem, name_problem
    from naviewer.errors import NaviewerError

    store_path = ws.path / "naviewer.sqlite"
    joined = "".join(entries)
    if bad_name_char(joined) is not None or any(not e or e != e.strip() or e.startswith("#") for e in entries):
        for sample_id, entry in zip(kept_ids.tolist(), entries):
            problem = list_line_problem(entry)
            if problem:
                raise NaviewerError(f"sample {sample_id} cannot be exported as one 'path label' line: {problem}",
                                    store_path)
    for column, values in (("source key", keys), ("hash", hashes)):
        if not all(isinstance(v, str) for v in values):
            index = next(i for i, v in enumerate(values) if not isinstance(v, str))
            raise NaviewerError(f"sample {index}: its {column} is not text ({type(values[index]).__name__}); the "
                                "database was changed by another tool", store_path)
        if column == "hash":
            continue
        if bad_name_char("".join(values)) is not None:
            index = next(i for i, v in enumerate(values) if bad_name_char(v) is not None)
            raise NaviewerError(f"sample {index} cannot be exported: {name_problem(values[index])}", store_path)


def _kept_dataset(description: Any, kept_ids: np.ndarray) -> Optional[dict[str, Any]]:
    """The source restricted to the kept samples, as an ``open_dataset`` description (None: not re-openable)."""
    if not isinstance(description, Mapping) or not description.get("kind") or description.get("kind") == "memory":
        return None
    base = {k: v for k, v in description.items() if k not in ("content_hash", "samples")}
    return {"kind": "subset", "size": int(len(kept_ids)), "base": base, "indices": kept_ids.tolist()}


def _detector_columns(store, pass_id: Optional[int], n: int) -> tuple[list[str], list[np.ndarray]]:
    """``<detector>_score`` and ``<detector>_flagged`` of the latest pass of every other detector
    (``naviewer detect --detector``), so samples.csv carries every score an analyst compared."""
    latest: dict[str, int] = {}
    for record in store.passes():
        if "score" in (record.get("scores") or []) and record["id"] != pass_id:
            latest[str(record["method"])] = int(record["id"])
    names: list[str] = []
    columns: list[np.ndarray] = []
    for method, pid in sorted(latest.items()):
        values = store.pass_scores(pid)
        if len(values.get("score", ())) != n:
            continue
        name = re.sub(r"[^A-Za-z0-9_]+", "_", method)
        names += [f"{name}_score", f"{name}_flagged"]
        columns += [_float_column(values["score"], n), _bool_column(values.get("flagged"), n)]
    return names, columns
