"""Export the cleaned dataset: ``kept.txt``, ``classes.txt``, ``samples.csv``, ``README.txt`` and
``provenance.json``.

The files describe one decision, so they are committed together: each is written under a hidden
temporary name, and only when all are complete are they renamed into place, with
``provenance.json`` last (it records the SHA-256 of the others, so it doubles as the commit
marker). A cancelled job, an exception or a killed process leaves no manifest behind; a previous
export in the same folder loses its ``provenance.json`` first, so old and new files are never
mistaken for one consistent export.

What is removed: samples whose review state is ``confirmed`` (a poison). Flagged samples nobody
has decided on yet (``unreviewed`` or ``later``) are kept unless ``drop_unreviewed_flags``.

What ``kept.txt`` lists (``<path> <label>`` per kept sample): when the dataset source has image
files (image folder, ``path label`` list, CSV manifest, or a subset of one), each path is the
*absolute* path of the image (source root + source key). A source key alone is relative to the
source's root (e.g. ``<ws>/dataset/``), not to the export folder, so a reader that resolves paths
from the list's folder would miss every file; and a path relative to the export folder
(``../../dataset/...``) would not work either, because ``open_dataset`` reads relative paths from
its ``root`` and refuses anything outside it. Absolute paths are read by CWD-based research
loaders as they are, and by ``open_dataset(kept_txt, root=<dataset root or any folder above it>)``.
Sources without files (CIFAR pickles ``data_batch_1/17``, the demo set ``digits/17``, in-memory
sets) keep their source keys. ``provenance.json`` says which rule applied under ``kept_paths``;
``samples.csv`` always holds the source keys.

So that the export is self-describing: ``classes.txt`` names the labels (line i = class i, the
file naviewer's list reader picks up beside a list), ``README.txt`` says in plain words what the
entries of ``kept.txt`` are and how to rebuild the cleaned set (for CIFAR / demo keys: which pickle
row or digit each key is), and ``provenance.json`` holds ``kept_dataset``, a naviewer dataset
description (the source restricted to the kept samples) that :func:`open_kept_dataset` re-opens,
for every source that can be re-opened (not in-memory sets).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Iterator, Mapping, Optional, Sequence, Union

import numpy as np

from naviewer import __version__
from naviewer.errors import NaviewerError
from naviewer.io import cleanup_stale_temps, describe_os_error, fsync_dir, json_default, json_loads, temp_path_for
from naviewer.jobs import JobContext, ensure_context
from naviewer.workspace.anchor_record import anchor_trust
from naviewer.workspace.source_root import source_root as _source_root
from naviewer.workspace.store import REVIEW_STATES

if TYPE_CHECKING:
    from naviewer.data.base import ImageDataset
    from naviewer.workspace.workspace import Workspace

PathLike = Union[str, "os.PathLike[str]"]

KEPT_NAME = "kept.txt"
CLASSES_NAME = "classes.txt"
SAMPLES_NAME = "samples.csv"
README_NAME = "README.txt"
PROVENANCE_NAME = "provenance.json"
#: written in this order; provenance.json (the commit marker) always last
MANIFEST_NAMES = (KEPT_NAME, CLASSES_NAME, SAMPLES_NAME, README_NAME, PROVENANCE_NAME)
CSV_COLUMNS = (
    "id", "source_key", "hash", "label", "density", "rank", "candidate", "mindist", "posterior",
    "flagged", "spread", "cluster", "review", "kept",
)  # fmt: skip
UNDECIDED_STATES = ("unreviewed", "later")


@dataclass
class ExportResult:
    """Where the manifests went and what they say."""

    out_dir: Path
    kept_path: Path
    samples_path: Path
    provenance_path: Path
    total: int
    kept: int
    removed: int                    # every sample left out: total - kept
    unreviewed_flags: int
    dropped_unreviewed_flags: bool
    pass_id: Optional[int]
    confirmed: int = -1             # of the removed, those confirmed as poisons (the rest: undecided flags dropped)
    classes_path: Optional[Path] = None
    readme_path: Optional[Path] = None
    #: False when kept.txt lists sample keys (CIFAR pickles, demo digits, in-memory sets), not files
    entries_are_paths: bool = True
    #: samples other passes flagged that nobody decided and this pass did not flag (kept whatever the options), and
    #: (pass id, method, count) for each pass that has some (:func:`undecided_in_other_passes`)
    undecided_elsewhere: int = 0
    undecided_elsewhere_passes: tuple = ()

    @property
    def dropped(self) -> int:
        """Undecided flags removed on request (``drop_unreviewed_flags``)."""
        return self.unreviewed_flags if self.dropped_unreviewed_flags else 0

    def removal_text(self) -> str:
        """"57 removed: 57 confirmed as poisons" or "119 removed: 57 confirmed as poisons + 62 undecided flags"."""
        confirmed = self.removed - self.dropped if self.confirmed < 0 else self.confirmed
        text = f"{self.removed:,} removed: {confirmed:,} confirmed as poisons"
        return text + (f" + {self.dropped:,} undecided flags" if self.dropped else "")

    def summary(self) -> str:
        text = f"exported {self.total} samples: {self.kept} kept, {self.removal_text()}"
        if not self.dropped_unreviewed_flags:
            text += f"; {self.unreviewed_flags} undecided flags kept"
        text += f" -> {self.out_dir}"
        if self.pass_id is None:  # "1514 kept, 0 removed" from a workspace never scanned said nothing of why
            text += " (the workspace has no detection pass yet, so nothing was flagged: naviewer detect or run first)"
        if not self.entries_are_paths:
            text += f" (kept.txt lists sample keys, not file paths: see {README_NAME})"
        if self.undecided_elsewhere:
            text += "\n" + elsewhere_text(self.undecided_elsewhere, self.undecided_elsewhere_passes)
        return text


def _sweep_dead_exports(exports: Path) -> None:
    """Export folders holding only the temporaries of killed exports: the next export goes to a new time stamp, so
    "the next export into it removes them" never came for the default folder (a bad-input probe, session 28)."""
    from naviewer.io import cleanup_stale_temps

    try:
        folders = [f for f in exports.iterdir() if f.is_dir() and not f.is_symlink()]
    except OSError:
        return
    for folder in folders:
        try:
            if not any(entry.name.startswith(".") for entry in folder.iterdir()):
                continue  # an export (or the user's own folder): nothing of a killed one in it
            cleanup_stale_temps(folder)
            folder.rmdir()  # only when that emptied it
        except OSError:
            continue


def undecided_in_other_passes(store, pass_id: Optional[int], codes: Optional[np.ndarray] = None,
                              ) -> tuple[int, tuple[tuple[int, str, int], ...]]:
    """How many samples the workspace's other passes flagged that nobody has decided on and pass ``pass_id`` did not
    flag, and (pass id, method, count) per such pass. An export's "undecided flags" are the reviewed pass's only: a
    newcomer read "0 undecided flags kept" with three poisons undecided on other passes (session 28)."""
    codes = store.review_codes() if codes is None else codes
    undecided = np.isin(codes, [REVIEW_STATES.index(s) for s in UNDECIDED_STATES])
    n = len(codes)
    this = np.zeros(n, dtype=bool)
    if pass_id is not None:
        flags = store.pass_array(pass_id, "flagged")
        if flags is not None and len(flags) == n:
            this = np.asarray(flags, dtype=bool)
    union = np.zeros(n, dtype=bool)
    per: list[tuple[int, str, int]] = []
    for info in store.passes():
        if pass_id is not None and int(info["id"]) == int(pass_id):
            continue
        flags = store.pass_array(int(info["id"]), "flagged")
        if flags is None or len(flags) != n:
            continue
        left = np.asarray(flags, dtype=bool) & undecided & ~this
        if left.any():
            per.append((int(info["id"]), str(info.get("method") or "pass"), int(left.sum())))
            union |= left
    return int(union.sum()), tuple(per)


def elsewhere_text(count: int, passes: Sequence[tuple[int, str, int]]) -> str:
    """"7 more samples flagged by other passes are undecided and kept (pass 3 patchsearch: 7); ..."."""
    shown = ", ".join(f"pass {pid} {method}: {k:,}" for pid, method, k in list(passes)[:6])
    more = f", and {len(passes) - 6} more passes" if len(passes) > 6 else ""
    # per pass: its flags undecided and not this pass's (they read as the passes' own flag counts; an outside test)
    # "56 more" beside per-pass counts adding to 78 read as a miscount (a newcomer, session 32): distinct, overlapping
    overlap = sum(k for _, _, k in passes) > count
    return (f"{count:,} more {'distinct ' if overlap else ''}sample{'s' if count != 1 else ''} flagged by other passes "
            f"{'are' if count != 1 else 'is'} undecided and kept (per pass, its undecided flags this pass did not "
            f"flag{', a sample flagged by several counted in each' if overlap else ''}: {shown}{more}): review "
            f"{'them' if count != 1 else 'it'} there (Workspace ▸ Detection passes; naviewer review WORKSPACE "
            "--pass ID) before trusting the cleaned set")


class _HashingWriter:
    """Binary file that also hashes what goes through it (for the SHA-256 in provenance.json)."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, text: str) -> None:
        data = text.encode("utf-8")
        self.sha256.update(data)
        self.size += len(data)
        self.handle.write(data)


def default_out_dir(ws: "Workspace") -> Path:
    """``<ws>/exports/<UTC timestamp>``, never an existing folder."""
    _sweep_dead_exports(ws.exports_dir)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    candidate = ws.exports_dir / stamp
    suffix = 1
    while candidate.exists():
        suffix += 1
        candidate = ws.exports_dir / f"{stamp}-{suffix}"
    return candidate


def _csv_field(text: str) -> str:
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_keys(keys: list[str]) -> np.ndarray:
    """Source keys as CSV fields; checks the joined text once, since keys rarely need quoting."""
    joined = "\0".join(keys)
    if any(c in joined for c in ',"\r\n'):
        return np.asarray([_csv_field(k) for k in keys], dtype=object)
    return np.asarray(keys, dtype=object)


def _float_column(values: Optional[np.ndarray], n: int) -> np.ndarray:
    if values is None:
        return np.full(n, "", dtype=object)
    values = np.asarray(values)
    text = values.astype(str).astype(object)
    text[~np.isfinite(values)] = ""
    return text


def _int_column(values: Optional[np.ndarray], n: int) -> np.ndarray:
    if values is None:
        return np.full(n, "", dtype=object)
    return np.asarray(values).astype(np.int64).astype(str).astype(object)


def _bool_column(values: Optional[np.ndarray], n: int) -> np.ndarray:
    if values is None:
        return np.full(n, "", dtype=object)
    return np.where(np.asarray(values, dtype=bool), "1", "0").astype(object)


def _kept_path_rule(description: Mapping[str, Any]) -> tuple[Optional[Path], dict[str, Any]]:
    """(root to prefix keys with, or None) and the ``kept_paths`` record for provenance.json."""
    root = _source_root(description)
    if root is None:
        kind = description.get("kind", "unknown") if isinstance(description, Mapping) else "unknown"
        return None, {
            "entries": "source_keys",
            "paths_relative_to": None,
            "note": f"the dataset source (kind {kind!r}) has no image files: kept.txt lists its sample keys "
                    "(e.g. data_batch_1/17, digits/17), which are not file paths",
        }
    return root, {
        "entries": "absolute_paths",
        "paths_relative_to": None,
        "dataset_root": root.as_posix(),
        "note": "kept.txt lists absolute image paths (dataset root + source key); read it with "
                "naviewer.data.open_dataset(kept.txt, root=<dataset_root or a folder above it>)",
    }


#: what an export folder may hold besides the manifests: the window's review report, temporaries of a write
EXPORT_COMPANIONS = ("review-report.html",)


def is_earlier_export(out: Path) -> bool:
    """``out`` holds a provenance.json naviewer wrote (a JSON object with its version and export time). Only a
    regular file is read: a pipe of that name blocked the export for ever, past Cancel and the window's quit."""
    path = out / PROVENANCE_NAME
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        record = json_loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(record, dict) and "naviewer_version" in record and "exported_at" in record


def check_export_folder(out: Path) -> None:
    """An export writes only into a new or empty folder, or over an earlier export: ``export --out ~/notes`` replaced
    the user's README.txt and kept.txt without a word, and ``--out /`` wrote five files into the root folder (a
    sweep, session 18). A NaviewerError naming the folder and a file of what is there otherwise."""
    if out.exists() and not out.is_dir():
        raise NaviewerError("the export folder is a file, not a folder", out)
    if not out.is_dir():
        return
    entries = sorted(out.iterdir())
    if not entries:
        return
    ours = set(MANIFEST_NAMES) | set(EXPORT_COMPANIONS)
    entries = [e for e in entries if ".tmp-" not in e.name]  # a killed export's temporaries: taken away as it writes
    other = [e.name for e in entries if e.name not in ours]
    if entries and (other or not is_earlier_export(out)):
        shown = (other or [e.name for e in entries])[:3]
        raise NaviewerError(f"the export folder already holds files that are not an earlier naviewer export "
                            f"({', '.join(shown)}{', ...' if len(entries) > len(shown) else ''}): an export writes "
                            f"{', '.join(MANIFEST_NAMES)} there and would replace such files; choose a new or empty "
                            "folder", out)


#: up to this many samples the export decodes every image and compares it with the hash it was registered with
#: (CIFAR-10's 50,000 in seconds to a minute); above it, the open's check alone (16 images' pixels, 256 keys)
EXPORT_PIXEL_CHECK_MAX = 200_000


def verify_source(ws: "Workspace", ctx: Optional[JobContext] = None) -> None:
    """Open the workspace's dataset and compare it with what was registered before a manifest lists its images:
    the count, the labels, 256 keys and, up to :data:`EXPORT_PIXEL_CHECK_MAX` samples, every image's pixels (the
    open's check reads 16 of them, so two images swapped in place passed the export; a sweep, session 18). An
    export of a dataset whose images were deleted, replaced or moved since wrote a kept.txt of missing or other
    images, exit 0. A NaviewerError naming the file says what changed; ``naviewer export --unverified`` skips this."""
    if (ws.dataset_record() or {}).get("kind") == "memory":
        return
    ctx = ensure_context(ctx)
    try:
        ws.dataset()
        n = ws.store.sample_count()
        if n <= EXPORT_PIXEL_CHECK_MAX:
            dataset = ws.checked_dataset()
            if dataset.as_array() is None:  # file sources: each image decoded and checked (an in-memory one: at once)
                step = 1024
                for start in range(0, n, step):
                    ctx.check()
                    ctx.progress(start, n, "checking that the images are the ones reviewed")
                    for i in range(start, min(n, start + step)):
                        dataset.image(i)
                ctx.progress(n, n, "checking that the images are the ones reviewed")
    except NaviewerError as exc:
        raise NaviewerError(f"{exc.message}. The export checks the dataset whose images it lists; restore it, or "
                            "export without the check (naviewer export --unverified)", exc.path) from None


def export_manifests(
    ws: "Workspace",
    out_dir: Optional[PathLike] = None,
    ctx: Optional[JobContext] = None,
    drop_unreviewed_flags: bool = False,
    chunk_rows: int = 50_000,
    verify: bool = False,
    pass_id: Optional[int] = None,
    replace: bool = True,
) -> ExportResult:
    """Write the three manifests of ``ws`` into ``out_dir`` (default ``<ws>/exports/<timestamp>``).

    ``replace`` False: an earlier export in ``out_dir`` is refused (``export`` without ``--overwrite``). One export
    at a time writes into a folder (a lock file in it while it writes): two at once both said "exported", one
    survived, and once the folder held one's kept.txt beside the other's provenance.json (a probe, session 30).

    Uses detection pass ``pass_id`` (the one reviewed; default the latest, any method) if there is one: its flags are
    the undecided flags kept or dropped, and the provenance names it. Honours ``ctx.check()`` between
    chunks of ``chunk_rows`` rows; on cancel or error nothing is left in ``out_dir``.

    Streams (issue 17 item 4): the sample rows are read from the store ``chunk_rows`` at a time and each
    chunk is checked (:func:`_check_entries`) and written to ``kept.txt`` and ``samples.csv`` before the
    next is read, so what is held per sample is numbers (review codes, scores, the kept mask), never a
    Python string; ``kept_dataset``'s indices are written into provenance.json chunk by chunk too. The
    review states, the detection pass and the counts are read and checked before the output folder is
    touched; a row that cannot be written (a key forged in the database) is found while writing, and
    the export then stops and leaves nothing, as a cancel does.
    """
    ctx = ensure_context(ctx)
    out = Path(out_dir) if out_dir is not None else default_out_dir(ws)
    store = ws.store

    n = store.sample_count()
    codes = store.review_codes()  # 1 byte a sample: REVIEW_STATES index
    if pass_id is None:
        pass_id = store.review_pass_id()
    elif not any(int(p["id"]) == int(pass_id) for p in store.passes()):
        raise NaviewerError(f"the workspace has no detection pass {pass_id}", ws.config_path.parent)
    scores: dict[str, np.ndarray] = store.pass_scores(pass_id) if pass_id is not None else {}
    detection = store.pass_info(pass_id) if pass_id is not None else None
    flagged = np.asarray(scores["flagged"], dtype=bool) if "flagged" in scores else np.zeros(n, dtype=bool)
    removed = codes == REVIEW_STATES.index("confirmed")
    unreviewed_flags = flagged & np.isin(codes, [REVIEW_STATES.index(s) for s in UNDECIDED_STATES])
    kept = ~removed
    if drop_unreviewed_flags:
        kept &= ~unreviewed_flags
    n_kept = int(kept.sum())
    file_root, kept_paths = _kept_path_rule(ws.dataset_record())
    detector_names, detector_arrays = _detector_arrays(store, pass_id, n)
    state_names = np.asarray(REVIEW_STATES, dtype=object)
    total_rows = n_kept + n
    chunk_rows = max(1, int(chunk_rows))

    check_out_dir(ws, out)
    check_export_folder(out)
    created = _make_out_dir(out)
    staged: dict[str, Path] = {}
    committed = False
    lock = contextlib.ExitStack()
    try:
        lock.enter_context(_folder_held_alone(out))
    except BaseException:
        _remove_created(created)
        raise
    try:
        check_export_folder(out)  # again, now that no other export writes here
        if not replace and is_earlier_export(out):
            raise NaviewerError("the folder holds an earlier export: choose another folder, or --overwrite to replace "
                                "it", out)
        # -- kept.txt (`path label`, the file-list convention of SSL backdoor research code) and samples.csv
        # (every sample with its scores, flags and review state), written side by side, one chunk of rows at a time
        staged[KEPT_NAME] = temp_path_for(out / KEPT_NAME)
        staged[SAMPLES_NAME] = temp_path_for(out / SAMPLES_NAME)
        with open(staged[KEPT_NAME], "wb") as kept_handle, open(staged[SAMPLES_NAME], "wb") as csv_handle:
            kept_writer = _HashingWriter(kept_handle)
            csv_writer = _HashingWriter(csv_handle)
            csv_writer.write(",".join(CSV_COLUMNS + tuple(detector_names)) + "\n")
            done = written = 0
            if n:
                ctx.check()
            for rows in store.sample_chunks(chunk_rows):
                start, stop = done, done + len(rows["id"])
                keys, hashes, labels = rows["source_key"], rows["hash"], rows["label"]
                part = kept[start:stop]
                local = np.flatnonzero(part)
                _check_text(ws, keys, hashes, offset=start)
                if file_root is not None:
                    entries = [(file_root / keys[i]).as_posix() for i in local.tolist()]
                else:
                    entries = [keys[i] for i in local.tolist()]
                _check_entries(ws, entries, local + start, keys, hashes, offset=start, texts_checked=True)
                label_list = labels.tolist()
                kept_writer.write("".join(f"{e} {label_list[i]}\n" for e, i in zip(entries, local.tolist())))
                written += len(local)
                del entries
                ctx.progress(written + start, total_rows, "exporting manifests")  # kept lines + csv rows so far

                ctx.check()
                m = stop - start
                columns = [
                    rows["id"].astype(str).astype(object),
                    _csv_keys(keys),
                    np.asarray(hashes, dtype=object),
                    labels.astype(str).astype(object),
                    _float_column(_part(scores.get("density"), start, stop), m),
                    _int_column(_part(scores.get("rank"), start, stop), m),
                    _bool_column(_part(scores.get("candidate"), start, stop), m),
                    _float_column(_part(scores.get("mindist"), start, stop), m),
                    _float_column(_part(scores.get("posterior"), start, stop), m),
                    _bool_column(_part(scores.get("flagged"), start, stop), m),
                    _bool_column(_part(scores.get("spread"), start, stop), m),
                    _int_column(_part(scores.get("cluster"), start, stop), m),
                    state_names[codes[start:stop]],
                    _bool_column(part, m),
                ]
                for score, flags in detector_arrays:
                    columns += [_float_column(score[start:stop], m), _bool_column(_part(flags, start, stop), m)]
                csv_writer.write("".join(",".join(row) + "\n" for row in zip(*columns)))
                del columns, keys, hashes, rows
                done = stop
                ctx.progress(written + done, total_rows, "exporting manifests")
                if done < n:
                    ctx.check()
            if done != n:
                raise NaviewerError(f"the samples table changed while it was exported ({done} rows read, {n} expected); "
                                    "nothing was exported", store.path)
            for handle in (kept_handle, csv_handle):
                handle.flush()
                os.fsync(handle.fileno())

        # -- classes.txt: line i = name of label i (naviewer's list reader reads it beside a list)
        class_names = ws.class_names
        staged[CLASSES_NAME] = temp_path_for(out / CLASSES_NAME)
        classes_sha = _write_text(staged[CLASSES_NAME], "".join(f"{name}\n" for name in _class_lines(class_names)))

        # -- README.txt: what the entries are and how to rebuild the cleaned dataset
        ctx.check()
        dataset_record = ws.dataset_record()
        kept_dataset = _kept_dataset(dataset_record, n_kept)
        staged[README_NAME] = temp_path_for(out / README_NAME)
        n_dropped = int(unreviewed_flags.sum()) if drop_unreviewed_flags else 0
        elsewhere, elsewhere_passes = undecided_in_other_passes(store, pass_id, codes)
        readme_sha = _write_text(staged[README_NAME], _readme(ws, out, dataset_record, file_root, kept_dataset is not None,
                                                              n, n_kept, int(removed.sum()), pass_id, n_dropped))

        # -- provenance.json: what was exported, from what, by whose decisions
        ctx.check()
        counts_by_code = np.bincount(codes, minlength=len(REVIEW_STATES))
        state_counts = {state: int(counts_by_code[REVIEW_STATES.index(state)])
                        for state in sorted(REVIEW_STATES) if counts_by_code[REVIEW_STATES.index(state)]}
        provenance = _provenance(
            ws,
            pass_id=pass_id,
            detection=detection,
            counts={
                "samples": n,
                "kept": n_kept,
                "removed": n - n_kept,  # kept + removed = samples, whatever the options
                "removed_confirmed": int(removed.sum()),
                "flagged": int(flagged.sum()),
                "unreviewed_flags": int(unreviewed_flags.sum()),
                "unreviewed_flags_dropped": int(unreviewed_flags.sum()) if drop_unreviewed_flags else 0,
                "undecided_flags_other_passes": elsewhere,
            },
            state_counts=state_counts,
            files={
                KEPT_NAME: {"sha256": kept_writer.sha256.hexdigest(), "bytes": kept_writer.size, "lines": n_kept},
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
            _write_provenance(handle, provenance, kept, chunk_rows, ctx)
            handle.flush()
            os.fsync(handle.fileno())
        ctx.check()
        if verify:  # after the workspace's own checks (a forged key names the database), before anything appears
            verify_source(ws, ctx)

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
        lock.close()
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
        kept=n_kept,
        removed=n - n_kept,
        unreviewed_flags=int(unreviewed_flags.sum()),
        dropped_unreviewed_flags=drop_unreviewed_flags,
        pass_id=pass_id,
        confirmed=int(removed.sum()),
        classes_path=out / CLASSES_NAME,
        readme_path=out / README_NAME,
        entries_are_paths=file_root is not None,
        undecided_elsewhere=elsewhere,
        undecided_elsewhere_passes=elsewhere_passes,
    )


def _part(values: Optional[np.ndarray], start: int, stop: int) -> Optional[np.ndarray]:
    return None if values is None else values[start:stop]


#: stands for ``kept_dataset["indices"]`` in the provenance text until the ids are written in its place
_INDICES_MARK = "naviewer-kept-indices-"


def _write_provenance(handle: BinaryIO, provenance: dict[str, Any], kept: np.ndarray, chunk_rows: int,
                      ctx: JobContext) -> None:
    """``json.dumps(provenance, indent=2)`` with ``kept_dataset["indices"]`` (the kept ids, one per line)
    written in chunks: the same bytes, without a list of N Python ints and its N-line JSON text in memory."""
    kept_dataset = provenance.get("kept_dataset")
    if not isinstance(kept_dataset, dict) or "indices" not in kept_dataset:
        handle.write((json.dumps(provenance, indent=2, default=json_default) + "\n").encode("utf-8"))
        return
    mark = _INDICES_MARK + secrets.token_hex(16)
    text = json.dumps({**provenance, "kept_dataset": {**kept_dataset, "indices": mark}}, indent=2,
                      default=json_default) + "\n"
    quoted = json.dumps(mark)
    at = text.find(quoted)
    if at < 0 or text.find(quoted, at + 1) >= 0:  # cannot happen (a random mark); never write a wrong file
        kept_dataset["indices"] = np.flatnonzero(kept).tolist()
        handle.write((json.dumps(provenance, indent=2, default=json_default) + "\n").encode("utf-8"))
        return
    indent = at - (text.rfind("\n", 0, at) + 1) - len('"indices": ')
    handle.write(text[:at].encode("utf-8"))
    ids = np.flatnonzero(kept)
    if len(ids) == 0:
        handle.write(b"[]")
    else:
        item = "\n" + " " * (indent + 2)
        handle.write(b"[")
        for start in range(0, len(ids), chunk_rows):
            ctx.check()
            part = ids[start : start + chunk_rows].astype(str)
            handle.write(((item if start == 0 else "," + item) + ("," + item).join(part.tolist())).encode("utf-8"))
        handle.write(("\n" + " " * indent + "]").encode("utf-8"))
    handle.write(text[at + len(quoted):].encode("utf-8"))


def _check_text(ws: "Workspace", keys: list[str], hashes: list[str], offset: int = 0) -> None:
    """A key or hash that is not text (a tampered row, samples ``offset``..) is refused before it is used."""
    for column, values in (("source key", keys), ("hash", hashes)):
        if not all(isinstance(v, str) for v in values):
            index = next(i for i, v in enumerate(values) if not isinstance(v, str))
            raise NaviewerError(f"sample {offset + index}: its {column} is not text ({type(values[index]).__name__}); "
                                "the database was changed by another tool", ws.path / "naviewer.sqlite")


def _check_entries(ws: "Workspace", entries: list[str], kept_ids: np.ndarray, keys: list[str],
                   hashes: list[str], offset: int = 0, texts_checked: bool = False) -> None:
    """Refuse a store whose rows cannot be written as one manifest line each (one chunk of rows:
    ``keys`` and ``hashes`` of samples ``offset``.., ``entries`` the kept.txt entries of ``kept_ids``).

    A registered name with a control character or line separator would end its ``kept.txt`` line
    early and forge the next (``evil\\nINJECTED_LINE 7``); sources refuse such names, so only a
    store written by another tool gets here. A key or hash that is not text (a tampered row) is
    refused too (:func:`_check_text`, unless ``texts_checked``), instead of failing half-way through
    ``samples.csv``.
    """
    from naviewer.data.names import bad_name_char, list_line_problem, name_problem

    store_path = ws.path / "naviewer.sqlite"
    if not texts_checked:
        _check_text(ws, keys, hashes, offset)
    joined = "".join(entries)
    if bad_name_char(joined) is not None or any(not e or e != e.strip() or e.startswith("#") for e in entries):
        for sample_id, entry in zip(kept_ids.tolist(), entries):
            problem = list_line_problem(entry)
            if problem:
                raise NaviewerError(f"sample {sample_id} cannot be exported as one 'path label' line: {problem}",
                                    store_path)
    if bad_name_char("".join(keys)) is not None:
        index = next(i for i, v in enumerate(keys) if bad_name_char(v) is not None)
        raise NaviewerError(f"sample {offset + index} cannot be exported: {name_problem(keys[index])}", store_path)


def check_out_dir(ws: "Workspace", out: Path) -> None:
    """The manifests never go into the workspace (but its ``exports/``) nor into the dataset they describe: into
    ``WS/dataset`` an export replaced the dataset's own classes.txt, into a class folder it added files every later
    open called "not images", into ``WS`` it mixed with the workspace's files (all rc 0; a sweep)."""
    target = Path(os.path.abspath(out))
    workspace = Path(os.path.abspath(ws.path))
    exports = Path(os.path.abspath(ws.exports_dir))

    def inside(path: Path, folder: Path) -> bool:
        # as written and with links followed: --out LINK/x, LINK to the dataset, wrote into it (a probe, session 30)
        real, real_folder = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
        return (path == folder or folder in path.parents) or real == real_folder or real_folder in real.parents

    if inside(target, workspace) and not (inside(target, exports) and target != exports):
        raise NaviewerError("the export would go into the workspace itself: choose a folder outside it, or a new "
                            "folder under WORKSPACE/exports (where an export goes when no folder is given)", out)
    from naviewer.workspace.workspace import dataset_folders

    for root in dataset_folders(ws.dataset_record() or {}):
        if inside(target, root):
            raise NaviewerError(f"the export would go into the dataset it describes ({root}): choose a folder outside "
                                "it", out)


@contextlib.contextmanager
def _folder_held_alone(out: Path) -> Iterator[None]:
    """One export at a time writes into ``out``: an exclusive ``flock`` on the folder itself (no lock file left in the
    export, none deleted from under another holder; a review, session 30), taken without waiting; another export
    holding it is a NaviewerError. Where folders cannot be locked (no ``fcntl``, a file system without locks) the
    export runs unguarded, as before. The operating system drops the lock when its holder dies."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux / macOS
        yield
        return
    try:
        fd = os.open(out, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise NaviewerError("another export is writing into this folder now: wait for it to end, or choose "
                                "another folder", out) from None
        except OSError:  # no locks here (ENOLCK on some NFS mounts): unguarded
            yield
            return
        yield
    finally:
        os.close(fd)  # (closing drops the lock)


def _remove_created(created: list[Path]) -> None:
    for folder in created:  # innermost first
        with contextlib.suppress(OSError):
            folder.rmdir()


def _make_out_dir(out: Path) -> list[Path]:
    """Create the output folder (and missing parents); returns what was created, innermost first."""
    created: list[Path] = []
    probe = out
    while not probe.exists() and probe != probe.parent:
        created.append(probe)
        probe = probe.parent
    if out.exists() and not out.is_dir():
        raise NaviewerError("the output path exists and is a file, not a folder", out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NaviewerError("a part of the output path is a file, not a folder", out) from None
    except OSError as exc:
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise NaviewerError(f"cannot create the output folder: {describe_os_error(exc)}", out) from None
    cleanup_stale_temps(out)
    return created


def _write_text(path: Path, text: str) -> dict[str, Any]:
    """Write ``text`` durably; its SHA-256 and size for provenance.json."""
    data = text.encode("utf-8")
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def _class_lines(names: list[str]) -> list[str]:
    """One line per class; a blank or multi-line name would shift every later line, so it is repaired."""
    lines = []
    for i, name in enumerate(names):
        text = " ".join(str(name).split())
        lines.append(text or str(i))
    return lines


def _kept_dataset(description: Any, n_kept: int) -> Optional[dict[str, Any]]:
    """The source restricted to the kept samples, as an ``open_dataset`` description (None: not re-openable).
    Its ``indices`` (the kept ids, in order) are written by :func:`_write_provenance`, chunk by chunk."""
    if not isinstance(description, Mapping) or not description.get("kind") or description.get("kind") == "memory":
        return None
    base = {k: v for k, v in description.items() if k not in ("content_hash", "samples")}
    return {"kind": "subset", "size": int(n_kept), "base": base, "indices": None}


def _key_meaning(description: Mapping[str, Any]) -> list[str]:
    """What a source key of a source without image files points at, per kind."""
    kind = description.get("kind")
    if kind in ("cifar10", "cifar100"):
        root = description.get("root", "<CIFAR folder>")
        labels = "'fine_labels' (or 'coarse_labels')" if kind == "cifar100" else "'labels'"
        return [f"Each entry is <batch file>/<row>: row <row> of the official {kind} pickle <batch file> in",
                f"  {root}",
                f"(its 'data' array, 3072 bytes per row: 1024 red, 1024 green, 1024 blue, row-major 32x32; its {labels}).",
                "Example: data_batch_2/17 is row 17 of data_batch_2."]
    if kind == "demo":
        return ["Each entry is digits/<i>: image <i> of scikit-learn's load_digits() as naviewer's built-in demo set",
                "renders it (upscaled to 32x32, coloured; naviewer.data.open_dataset('demo') rebuilds it exactly)."]
    if kind == "subset":
        return _key_meaning(description.get("base") or {})
    return [f"The source (kind {kind!r}) was built in memory: its images are not on disk, so this export alone",
            "cannot rebuild the cleaned set; the keys identify the samples for whoever holds that data."]


def _readme(ws: "Workspace", out: Path, description: Mapping[str, Any], file_root: Optional[Path], reopenable: bool,
            total: int, kept: int, removed: int, pass_id: Optional[int], dropped: int = 0) -> str:
    """The plain-text guide written beside the manifests."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"Cleaned-dataset export of the naviewer workspace {ws.path}",
             f"({stamp}, naviewer {__version__}; detection pass {pass_id if pass_id is not None else 'none'}).",
             f"{kept} of {total} samples kept; {total - kept} removed: {removed} because a reviewer confirmed them as "
             "poisons" + (f", {dropped} flagged by the detection and not yet decided (removed on request)." if dropped
                          else "."), "",
             "Files:",
             f"  {KEPT_NAME:<16} one kept sample per line: '<entry> <label>' (the label is the last token)",
             f"  {CLASSES_NAME:<16} class names: line i is the name of label i",
             f"  {SAMPLES_NAME:<16} every sample: id, source key, hash, label, scores, flags, review state, kept",
             f"  {'':<16} (rank counts from 0: rank 0 is the densest, the window's \"density rank 1\"; cluster is the",
             f"  {'':<16}  detection pass's own number, -1 for none: the window and naviewer review list the clusters",
             f"  {'':<16}  densest first as #1, #2, ..., so their numbers are not these)",
             f"  {README_NAME:<16} this file",
             f"  {PROVENANCE_NAME:<16} dataset, settings, detection pass, review decisions, SHA-256 of the other files",
             ""]
    if file_root is not None:
        lines += [f"The entries of {KEPT_NAME} are absolute image paths (dataset root + source key); the dataset root is",
                  f"  {file_root.as_posix()}",
                  "Any 'path label' loader reads the list as it is; in naviewer:",
                  f"  naviewer.data.open_dataset('{KEPT_NAME}', root='{file_root.as_posix()}')"]
    else:
        lines += [f"NOTE: the entries of {KEPT_NAME} are sample keys, NOT file paths: the dataset source "
                  f"(kind {description.get('kind', 'unknown')!r})", "has no image files."]
        lines += _key_meaning(description)
    if reopenable:
        lines += ["", "To rebuild the cleaned dataset (the source restricted to the kept samples, in this order) in Python:",
                  "  from naviewer.workspace.export import open_kept_dataset",
                  f"  kept = open_kept_dataset('{Path(os.path.abspath(out)).as_posix()}')",
                  "  # an ImageDataset: kept.image(i), kept.labels, kept.source_key(i)",
                  f"or open the description {PROVENANCE_NAME}['kept_dataset'] with naviewer.data.open_dataset.",
                  "To test an encoder trained on it: naviewer.evaluation.evaluate_encoder(backbone,",
                  "  ImageStore.from_dataset(kept), ImageStore.from_dataset(<clean test split>)) (naviewer.data.store)."]
    return "\n".join(lines) + "\n"


def open_kept_dataset(export_dir: PathLike) -> "ImageDataset":
    """Re-open the cleaned dataset of an export: the source restricted to the kept samples, in ``kept.txt`` order.

    Reads ``kept_dataset`` from ``provenance.json``; a NaviewerError when the export has none (an
    in-memory source, or an export older than this field) or the source changed.
    """
    from naviewer.data import open_dataset
    from naviewer.errors import NaviewerError

    path = Path(export_dir) / PROVENANCE_NAME
    try:
        record = json_loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NaviewerError("no provenance.json: not a complete naviewer export", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NaviewerError(f"unreadable provenance.json ({exc})", path) from None
    description = record.get("kept_dataset") if isinstance(record, Mapping) else None
    if not description:
        raise NaviewerError("this export records no re-openable dataset (in-memory source or an older export); "
                            f"use {KEPT_NAME} and the source itself", path)
    return open_dataset(description)


def _detector_arrays(store, pass_id: Optional[int], n: int) -> tuple[list[str], list[tuple[np.ndarray, Optional[np.ndarray]]]]:
    """``<detector>_score`` and ``<detector>_flagged`` of the latest pass of every detector with a score (the
    reviewed one for its own detector; ``naviewer detect --detector``), so samples.csv carries every score an
    analyst compared: the column
    names and, per detector, its (score, flagged) arrays (formatted chunk by chunk as they are written)."""
    latest: dict[str, int] = {}
    reviewed: Optional[tuple[str, int]] = None
    for record in store.passes():
        if "score" in (record.get("scores") or []):
            latest[str(record["method"])] = int(record["id"])
            if pass_id is not None and int(record["id"]) == int(pass_id):
                reviewed = (str(record["method"]), int(record["id"]))
    if reviewed is not None:  # a detector's own pass under review: its score, not a later pass of that detector's
        latest[reviewed[0]] = reviewed[1]  # (its score was left out of samples.csv; a newcomer, session 19)
    names: list[str] = []
    arrays: list[tuple[np.ndarray, Optional[np.ndarray]]] = []
    for method, pid in sorted(latest.items()):
        values = store.pass_scores(pid)
        if len(values.get("score", ())) != n:
            continue
        name = re.sub(r"[^A-Za-z0-9_]+", "_", method)
        names += [f"{name}_score", f"{name}_flagged"]
        arrays.append((values["score"], values.get("flagged")))
    return names, arrays


def _with_epoch_as_shown(detection: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """The pass's record with ``epoch_shown``, the epoch counted from 1 as the window and the terminal say it: the
    store's ``epoch`` counts from 0, and a newcomer read 33 in provenance.json for the window's "epoch 34" (session 30)."""
    if not isinstance(detection, dict) or not isinstance(detection.get("epoch"), int):
        return detection
    return {**detection, "epoch_shown": int(detection["epoch"]) + 1,
            "epoch_note": "epoch counts from 0 (the store's); epoch_shown from 1, as the window and the terminal say it"}


def _provenance(
    ws: "Workspace",
    pass_id: Optional[int],
    detection: Optional[dict[str, Any]],
    counts: dict[str, int],
    state_counts: dict[str, int],
    files: dict[str, Any],
    drop_unreviewed_flags: bool,
    kept_paths: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    config = ws.config
    store = ws.store
    other_sections = {k: v for k, v in config.items() if k not in ("workspace", "dataset", "classes", "settings")}
    return {
        "naviewer_version": __version__,
        "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        "exported_at_unix": time.time(),
        "workspace": {"path": str(ws.path), **config.get("workspace", {})},
        "dataset": ws.dataset_record(),
        "class_names": ws.class_names,
        "settings": config.get("settings", {}),
        "config": other_sections,
        "anchors": anchor_trust(config.get("anchors") or {}, "This export rests on a review of flags found with "
                                                                "untrusted anchors."),
        "detection_pass": _with_epoch_as_shown(detection),
        "options": {"drop_unreviewed_flags": drop_unreviewed_flags,
                    "removed_states": ["confirmed"] + ([f"{state} flags" for state in UNDECIDED_STATES]
                                                       if drop_unreviewed_flags else [])},
        "counts": counts,
        "review": {
            "states": state_counts,
            "per_reviewer": store.review_summary(),
            "audit_length": store.audit_count(),
        },
        "files": files,
        "kept_paths": kept_paths,
    }
