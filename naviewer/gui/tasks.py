"""The job functions the window starts: thin calls into the core, run in worker threads.

Each function takes a :class:`~naviewer.jobs.JobContext` and returns a small summary the window
keeps (paths and counts, never a live workspace: its SQLite connection belongs to the thread that
opened it). Core modules are imported inside the functions so that the window starts without them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext

if TYPE_CHECKING:  # pragma: no cover
    from naviewer.gui.jobs import JobFunction


def _runs_with_metrics(workspace: Path) -> list[str]:
    """Run directories of a workspace that hold a metrics.jsonl, oldest first."""
    runs = workspace / "runs"
    if not runs.is_dir():
        return []
    found = [p for p in runs.iterdir() if (p / "metrics.jsonl").is_file()]
    found.sort(key=lambda p: (p / "metrics.jsonl").stat().st_mtime)
    return [str(p) for p in found]


def run_of_passes(store, runs: list[str], pass_id: Optional[int]) -> Optional[str]:
    """The run directory (one of ``runs``) that the pass under review came from: its own run, or where it
    has none that trained (a post-hoc pass), the latest earlier pass's that has one. None: no pass names
    one of ``runs`` (the window then follows the newest run). Why: a workspace's newest run can be an
    evaluation retrain (the matrix's oracle) while the analyst reviews the training run's pass."""
    if pass_id is None or not runs:
        return None
    by_name = {Path(run).name: run for run in runs}
    for record in sorted(store.passes(), key=lambda r: -int(r["id"])):
        if int(record["id"]) <= pass_id and record.get("run") in by_name:
            return by_name[record["run"]]
    return None


def _floor_cut_short(ws) -> list[str]:
    """The no-poison floors stopped before they were measured (Run ▸ Measure goes on with them)."""
    from naviewer.workflows.floor import unfinished_floors

    try:
        return unfinished_floors(ws)
    except Exception:  # noqa: BLE001 - a label's detail: the workspace opens whatever this says
        return []


def _last_export(ws) -> Optional[dict[str, Any]]:
    """The newest export of the workspace (a folder of ``exports/`` with its provenance.json) and whether it is newer
    than the last decision: after a restart the Overview said "review the flags, then Export…" over a finished and
    exported review (a newcomer, session 21)."""
    root = ws.path / "exports"
    if not root.is_dir():
        return None
    made = [(p.stat().st_mtime, p.parent) for p in root.glob("*/provenance.json") if p.is_file()]
    if not made:
        return None
    when, folder = max(made)
    rows = ws.store.audit_log(limit=1)
    last = rows[-1]["time"] if rows else None
    current = not isinstance(last, (int, float)) or float(last) <= when
    return {"folder": str(folder), "current": bool(current)}


def workspace_summary(path: Path, ctx: JobContext) -> dict[str, Any]:
    """What File > Open workspace needs, from one open: sample count, runs with metrics, the latest
    detection pass (the one the analyst reviews) and the run it came from (``run_of_passes``)."""
    from naviewer.workspace import Workspace
    from naviewer.workspace.runs import resumable_runs

    ctx.progress(0, 1, "opening workspace")
    ws = Workspace.open(path)
    try:
        runs = _said_not_fatal(lambda: _runs_with_metrics(ws.path), [],
                               "the training runs cannot be listed (no monitor of them, nothing to resume)")
        pass_id = ws.store.review_pass_id()
        summary = {"path": str(ws.path), "samples": ws.store.sample_count(), "runs": runs, "pass_id": pass_id,
                   "pass_run": run_of_passes(ws.store, runs, pass_id), **_sources(ws, pass_id),
                   "attack": (ws.config.get("attack") or {}).get("name"),
                   "interrupted": _said_not_fatal(lambda: resumable_runs(ws), []),
                   "floor_cut_short": _said_not_fatal(lambda: _floor_cut_short(ws), [])}
        trained = last_training_settings(ws.store.runs()) or _digits_recipe(ws.config.get("dataset"))
        if trained:
            summary["train_settings"] = trained
        native = _said_not_fatal(lambda: _native_size(ws), None)
        if native:
            summary["native_size"] = native
        export = _said_not_fatal(lambda: _last_export(ws), None)
        if export:
            summary["last_export"] = export
        if pass_id is not None:  # whether the newest pass holds anything to review (the window keeps the pass under
            import numpy as np  # review when it does not)

            flagged = _said_not_fatal(lambda: ws.store.pass_array(int(pass_id), "flagged"), None,
                                      "its flags are not counted")
            summary["pass_flagged"] = None if flagged is None else int(np.count_nonzero(flagged))
    finally:
        ws.close()
    ctx.progress(1, 1, "opening workspace")
    return summary


def _native_size(ws: Any, probe: int = 16) -> Optional[int]:
    """The larger side of a typical image (median over ``probe`` evenly spaced samples, headers only), for an image
    folder; None elsewhere. The Train form offered 32 px on 16 px images, a 4x slower training of upscaled pixels,
    with no word of the images' own size (a newcomer, session 32)."""
    import numpy as np
    from PIL import Image

    dataset = ws.dataset_record()  # paths absolute (a dataset inside the workspace is recorded relative)
    root = dataset.get("root")
    n = ws.store.sample_count()
    if dataset.get("kind") != "image-folder" or not root or not n:
        return None
    ids = sorted({int(i) for i in np.linspace(0, n - 1, num=min(n, probe))})
    sides = []
    for key in ws.store.sample_values(ids).values():
        try:
            with Image.open(Path(root) / key) as image:
                sides.append(max(image.size))
        except (OSError, ValueError):
            continue
    return int(np.median(sides)) if sides else None


def _digits_recipe(dataset: Any) -> Optional[dict[str, Any]]:
    """The Train form's first choice on the built-in grey digits (``--dataset digits``): the demo's recipe, not
    ResNet-18 with SimCLR's paper augmentation, on which a newcomer's encoder stayed at 15 % kNN (session 22)."""
    if not isinstance(dataset, dict) or dataset.get("kind") != "demo" or dataset.get("tint", True):
        return None
    from naviewer.workflows.demo import DemoConfig

    demo = DemoConfig()
    return {"method": demo.method, "augment_recipe": demo.augment_recipe, "epochs": demo.epochs,
            "batch_size": demo.batch_size, "lr": None, "device": "auto", "arch": demo.arch, "width": demo.width,
            "image_size": demo.image_size}


def resume_run(path: Path, run: str, ctx: JobContext) -> dict[str, Any]:
    """Run ▸ Resume interrupted run: :func:`naviewer.workflows.dift_training.resume_stopped_run` (the run's own
    settings); a DIFT run then stops for the review, as the command line's does, a plain training (the window's
    Train) trains to its last epoch."""
    from naviewer.gui.training import _import_engine
    from naviewer.workflows.dift_training import resume_stopped_run
    from naviewer.workspace import Workspace

    _import_engine()
    with Workspace.open(path) as ws:
        # the run's own thread count where it recorded one (the same flags as a run never stopped need it; the
        # worker's all-cores-but-one stands in otherwise)
        done = resume_stopped_run(ws, run, ctx=ctx)
        from naviewer.workflows.leave_out import samples_left_out

        left = samples_left_out(ws, done.run, plain_only=True)  # a leave-out training: read like a fresh one
        extra = {"left_out": left} if left else {}
        if done.plain:
            return {"status": "finished", "pass_id": None, "run": done.run, "epochs": done.fit.get("epochs"), **extra}
        status = str(getattr(done.outcome.status, "value", done.outcome.status))
        if status == "awaiting_review" and done.outcome.pass_id is not None:
            from naviewer.gui.training import embed_for_the_map

            # a resumed demo stopped at the same flags with no map and no nearest neighbours (a newcomer, session 29)
            embed_for_the_map(ws, done.run, ctx)
        return {"status": status, "pass_id": done.outcome.pass_id, "run": done.run, **extra}


def measure_floor(path: Path, ctx: JobContext) -> dict[str, Any]:
    """Run ▸ Measure the no-poison floor: ``naviewer run WS --floor`` with the recipe of the workspace's latest
    training (:func:`naviewer.workflows.floor.floor_recipe`), recorded as ``[floor]``."""
    import dataclasses

    from naviewer.gui.training import _import_engine
    from naviewer.workflows.floor import floor_recipe, train_floor
    from naviewer.workspace import Workspace

    _import_engine()
    with Workspace.open(path) as ws:
        config, run = floor_recipe(ws)
        # the compared run's threads where it recorded them: the same seed on other threads is another encoder
        return train_floor(ws, dataclasses.replace(config, num_threads=config.num_threads or training_threads()), ctx,
                           run=run)


def last_training_settings(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The Train dialog's fields as the workspace's latest training ran them (method, epochs, batch, encoder, image
    size), or {}: the dialog offered ResNet-18 width 64 at 32 px, batch 256, on a workspace trained with a
    ResNet-10 width 16 at 16 px, and warned at once that it was slow (a newcomer)."""
    trained = [r for r in runs if isinstance((r.get("config") or {}).get("train"), dict)]
    if not trained:
        return {}
    train = max(trained, key=lambda r: r.get("created") or 0)["config"]["train"]
    out = {key: train[key] for key in ("method", "epochs", "batch_size", "lr", "augment_recipe", "image_size", "device")
           if key in train}
    backbone = train.get("backbone")
    if isinstance(backbone, dict):
        out.update({key: backbone[key] for key in ("arch", "width") if key in backbone})
    if isinstance(train.get("num_threads"), int) and not isinstance(train.get("num_threads"), bool) \
            and train["num_threads"] > 0:  # the Threads field, where the run recorded one
        out["threads"] = int(train["num_threads"])
    return out


def _sources(ws: Any, pass_id: Optional[int]) -> dict[str, Any]:
    """The workspace's dataset (kind and path, as ``workspace.toml`` records it) and the encoder of the pass the
    analyst opens, for the Overview: with only a workspace open it used to say "Dataset: none, Encoder: none"."""
    section = ws.dataset_record()
    where = section.get("path") or section.get("root")
    out: dict[str, Any] = {"dataset": f"{where} ({section.get('kind', 'dataset')})" if where
                           else str(section.get("kind") or "") or None, "dataset_path": str(where) if where else None}
    if pass_id is not None:
        from naviewer.gui.format import encoder_text

        info = ws.store.pass_info(pass_id) or {}
        encoder = (info.get("settings") or {}).get("encoder") or {}
        if isinstance(encoder, dict) and encoder.get("checkpoint"):
            out["encoder"] = f"{encoder['checkpoint']} ({encoder_text(encoder)}; the reviewed pass's)"
            found = _existing_checkpoint(ws, str(encoder["checkpoint"]))
            if found is not None:  # what Detect… starts from (it started empty beside this line: a newcomer)
                out["encoder_path"] = str(found)
        elif info.get("run"):
            # a pass made inside training (naviewer run --dift, the demo) records no checkpoint: while its run waits
            # for the review, the run's latest is the encoder it was made with (Detect… started empty on the demo);
            # after a fine-tune / retrain it is another model, and the one DIFT flagged with was kept as
            # at-review.pt. The paths are built, not made (checkpoint_dir makes the folder).
            folder = Path(ws.path) / "checkpoints" / str(info["run"])
            from naviewer.workspace.runs import REVIEW_CHECKPOINT

            latest, kept = folder / "last.pt", folder / REVIEW_CHECKPOINT
            if _awaiting_review(ws, str(info["run"])) and latest.is_file():
                out["encoder"] = f"{latest} (run {info['run']}'s latest checkpoint)"
                out["encoder_path"] = str(latest.resolve())
            elif kept.is_file():
                out["encoder"] = f"{kept} (the encoder DIFT flagged with, kept when the review's fine-tune began)"
                out["encoder_path"] = str(kept.resolve())
    return out


def _said_not_fatal(read: Any, default: Any, consequence: str = "that run is left out of what can be resumed") -> Any:
    """``read()``, or ``default`` with its NaviewerError or OSError as a warning: one garbled run state file
    (runs/RUN/dift_state.json) failed the whole open of the workspace (a sweep, session 19), and so did an
    unreadable runs/ folder, in Python's words (a GUI sweep, session 24); the part is said broken and the rest
    opens."""
    try:
        return read()
    except (NaviewerError, OSError) as exc:
        import warnings

        from naviewer.errors import WorkspaceWarning
        from naviewer.io import describe_os_error

        said = str(exc) if isinstance(exc, NaviewerError) else f"{exc.filename or ''}: {describe_os_error(exc)}"
        warnings.warn(f"{said}; {consequence}", WorkspaceWarning, stacklevel=2)
        return default


def _awaiting_review(ws: Any, run: str) -> bool:
    try:
        from naviewer.workspace.runs import RunStatus, read_state

        return getattr(read_state(ws, run), "status", None) is RunStatus.AWAITING_REVIEW
    except Exception:  # noqa: BLE001 - a summary line, never a failed open
        return False


def _existing_checkpoint(ws: Any, recorded: str) -> Optional[Path]:
    """The checkpoint file a pass recorded, if it is still there: as recorded, or (recorded relative to where a
    command ran) under the workspace or its parent."""
    path = Path(recorded).expanduser()
    candidates = [path] if path.is_absolute() else [ws.path / path, ws.path.parent / path, path.absolute()]
    parts = path.parts
    if "checkpoints" in parts:  # a workspace copied or moved: its own checkpoints/RUN/FILE before the original's
        inside = ws.path.joinpath(*parts[len(parts) - 1 - parts[::-1].index("checkpoints"):])
        if path.is_absolute() and not _inside(path, ws.path):  # (Detect… offered the other folder's encoder; a
            candidates.insert(0, inside)                        # newcomer, session 27)
    return next((c.resolve() for c in candidates if c.is_file()), None)


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(Path(folder).resolve())
    except OSError:
        return False


def create_workspace(path: Path, dataset: "Optional[Path | str]", ctx: JobContext, *, anchors_per_class: int = 10,
                     seed: int = 0, test_dataset: "Optional[Path | str]" = None, anchors: Optional[str] = None,
                     attack: Optional[str] = None, attack_settings: Optional[dict] = None,
                     test_protocol: Optional[str] = None) -> dict[str, Any]:
    """``naviewer new WS --dataset D [--anchors SPEC] [--attack A --test-protocol P]``: the same
    workflow, so the window never records less than the CLI (``attack_settings``: ``rate``, ``target``, ...).

    The DIFT anchors (``[anchors]``: ``anchors`` is an ``--anchors`` SPEC; None draws them from the
    labels, untrusted, or with an attack from the clean set before poisoning) and the evaluation sets
    (``[evaluation]``, with the source's clean test split when it has one) are recorded by
    :func:`naviewer.workflows.workspace_setup.create_workspace` (or ``create_attacked_workspace``,
    which crafts ``attack`` into the clean ``dataset`` and measures ASR with ``test_protocol``). The
    dataset is passed as a spec (a path string, like the CLI) so that the workflow can find the
    source's test split.
    """
    from naviewer.workflows.workspace_setup import create_attacked_workspace
    from naviewer.workflows.workspace_setup import create_workspace as create

    if dataset is None:
        raise NaviewerError("Open a dataset first: a workspace is created over a dataset "
                            "(as `naviewer new WORKSPACE --dataset DATASET`).", path)
    test = None if test_dataset is None else str(test_dataset)
    if attack:
        ctx.progress(0, None, f"crafting {attack} into a new workspace")
        made = create_attacked_workspace(path, str(dataset), attack, dict(attack_settings or {}), seed=seed,
                                         anchors_per_class=anchors_per_class, test_dataset=test, anchors=anchors,
                                         test_protocol=test_protocol, ctx=ctx)
        ws, crafted = made.workspace, {"poisons_text": f"{attack}: {made.poison_share()}"}
    else:
        ctx.progress(0, None, "creating workspace")
        ws = create(path, str(dataset), anchors_per_class=anchors_per_class, seed=seed, test_dataset=test,
                    anchors=anchors, ctx=ctx)
        crafted = {}
    try:
        from naviewer.workspace.anchor_record import section_kind, section_trusted

        section = ws.config.get("anchors") or {}
        evaluation = ws.config.get("evaluation") or {}
        external = (section.get("external") or {}).get("ids") or []
        return {"path": str(ws.path), "samples": ws.store.sample_count(), "runs": [],
                "anchors": len(section.get("indices") or []) + len(external),
                "anchors_kind": section_kind(section) if section else "labels",
                "anchors_trusted": section_trusted(section) if section else False,
                "attack": (ws.config.get("attack") or {}).get("name"),
                "test_protocol": (ws.config.get("attack") or {}).get("test_protocol"),
                "test_set": bool(evaluation.get("test")), **crafted, **_sources(ws, None)}
    finally:
        ws.close()


def dataset_summary(path: Path, ctx: JobContext) -> dict[str, Any]:
    import numpy as np

    from naviewer.data import open_dataset

    ctx.progress(0, None, "opening dataset")
    dataset = open_dataset(path)
    # a few images decoded now: a folder whose only "image" was text opened without a word (newcomer session 13)
    n = len(dataset)
    sample = np.unique(np.random.default_rng(0).integers(0, n, size=min(n, 16))) if n else []
    failed: list[NaviewerError] = []
    for index in sample:
        try:
            dataset.image(int(index))
        except NaviewerError as exc:
            failed.append(exc)
    if failed and len(failed) == len(sample):
        raise NaviewerError(f"none of the {len(sample)} images tried could be read; the first: {failed[0]}", path)
    description = dataset.describe() if hasattr(dataset, "describe") else {}
    out = {"samples": n, "classes": len(dataset.class_names), "kind": str(description.get("kind", ""))}
    if failed:
        out["warning"] = f"{len(failed)} of {len(sample)} images tried could not be read; the first: {failed[0]}"
        ctx.event("warning", message=out["warning"])  # with the dataset's own warnings, in the window's box
    return out


def check_checkpoint(path: Path, ctx: JobContext) -> dict[str, Any]:
    """Load a checkpoint's encoder as Detect will (weights only) to tell the user at once if it is not one: a file
    of a bare list of tensors (a sweep, session 21) and one whose only "conv1.weight" was 2-D (a newcomer, session 34)
    opened here without a word and were refused only by Detect. Returns the encoder in words and its tensor count."""
    if not path.is_file():
        raise NaviewerError("no such checkpoint file", path)
    ctx.progress(0, None, "reading checkpoint")
    from naviewer.ssl.checkpoints import _describe, load_encoder

    loaded = load_encoder(path)  # its errors say what is wrong in plain words (truncated, not a ResNet, code)
    return {"tensors": len(loaded.backbone.state_dict()), "encoder": _describe(loaded.config)}


def export_workspace(path: Path, out_dir: Optional[Path], ctx: JobContext) -> str:
    from naviewer.workspace import Workspace
    from naviewer.workspace.export import export_manifests

    ws = Workspace.open(path)
    try:
        result = export_manifests(ws, out_dir, ctx=ctx, verify=True)
    finally:
        ws.close()
    return str(result.out_dir)


def training_threads() -> int:
    """torch threads for a job: all cores but one, so the GUI thread always has a core."""
    return max(1, (os.cpu_count() or 2) - 1)


def run_name(settings: dict[str, Any]) -> str:
    return f"{settings.get('method', 'run')}-{time.strftime('%Y%m%d-%H%M%S')}"


def default_training_job(settings: dict[str, Any], *, workspace: Optional[Path],
                         dataset_path: Optional[Path]) -> "tuple[JobFunction, Optional[Path]]":
    """Train with the SSL engine (``naviewer.ssl.train``) on the open ``workspace`` or ``dataset_path``
    (the window's two paths; the window's ``training_job_factory`` passes them).

    Raises NaviewerError (shown to the user, nothing started) when nothing is open to train on.
    """
    if workspace is None and dataset_path is None:
        raise NaviewerError("Open a workspace or a dataset first: training needs images to train on.")
    name = run_name(settings)
    run_dir = (workspace / "runs" / name) if workspace is not None else None
    if settings.get("dift"):
        if workspace is None:
            raise NaviewerError("DIFT in the loop needs a workspace (its anchors and detection passes): File ▸ New "
                                "workspace… over this dataset first.")
        check_dift_training(settings, workspace)  # said before anything starts, not after the epochs

        def dift_job(ctx: JobContext) -> Any:
            from naviewer.gui.training import run_dift_training

            return run_dift_training(settings, ctx, workspace=workspace, run_name=name)

        return dift_job, run_dir

    if settings.get("leave_out_confirmed") and workspace is not None:
        def leave_out_job(ctx: JobContext) -> Any:
            from naviewer.gui.training import run_leave_out_training

            return run_leave_out_training(settings, ctx, workspace=workspace, run_name=name)

        return leave_out_job, run_dir

    def job(ctx: JobContext) -> Any:
        from naviewer.gui.training import run_training

        return run_training(settings, ctx, workspace=workspace, dataset_path=dataset_path, run_name=name)

    return job, run_dir


def check_dift_training(settings: dict[str, Any], workspace: Path) -> None:
    """A DIFT training the workspace cannot hold, refused before it starts: too few epochs to ever detect, or a
    dataset too small for DIFT's k and anchors (NaviewerError)."""
    from naviewer.defense.config import DiftConfig
    from naviewer.workflows.posthoc import check_dift_size
    from naviewer.workspace import Workspace

    with Workspace.open(workspace, read_only=True) as ws:
        dift = DiftConfig.from_workspace(ws, {"review": DiftConfig.review})
        start, epochs = dift.detection_start(int(settings["epochs"])), int(settings["epochs"])
        if start >= epochs:
            raise NaviewerError(f"DIFT starts detecting at epoch {start + 1} and this training has {epochs} "
                                f"epoch{'' if epochs == 1 else 's'}: it would never detect. Train for more epochs, or "
                                "untick DIFT in the loop and run Run ▸ Detect… on the encoder after.")
        check_dift_size(ws, dift)


def posthoc_detect(path: Path, checkpoint: Path, ctx: JobContext, *, run: str = "posthoc",
                   device: str = "auto", detectors: tuple[str, ...] = (),
                   embeddings: Optional[Path] = None) -> dict[str, Any]:
    """``naviewer detect WS --checkpoint C [--embeddings FILE]``: the same workflow and the same settings as the CLI
    (the workspace's ``[dift]``), so a pass made here is the pass the CLI would have made."""
    from naviewer.defense.config import DiftConfig
    from naviewer.ssl.device import resolve_device
    from naviewer.workflows.posthoc import posthoc_detect as detect
    from naviewer.workspace import Workspace

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise NaviewerError("no such checkpoint file", checkpoint)
    with Workspace.open(path) as ws:
        config = DiftConfig.from_dict(ws.config.get("dift") or {})
        out = detect(ws, checkpoint, config=config, run=run, device=resolve_device(device), ctx=ctx,
                     detectors=tuple(detectors), embeddings=embeddings)
        return {"pass_id": out.pass_id, "run": out.run, "tag": out.tag, "summary": dict(out.summary),
                "detector_passes": dict(out.detector_passes), "detector_metrics": dict(out.detector_metrics),
                "embeddings": str(out.embeddings_path), "checkpoint": str(checkpoint)}


def finetune_posthoc(path: Path, checkpoint: "Optional[Path | str]", ctx: JobContext) -> dict[str, Any]:
    """``naviewer finetune WS [--checkpoint C]`` on a post-hoc pass: Eq. 7 on the confirmed flags,
    a new checkpoint; returns what the fine-tune gate shows (before / after / confirmed, the ASR's
    test-time protocol and the workspace's no-poison floor)."""
    from naviewer.workflows.posthoc import finetune_posthoc as finetune
    from naviewer.workspace import Workspace

    with Workspace.open(path) as ws:
        out = finetune(ws, checkpoint, ctx=ctx)
        return {"before": dict(out.before), "after": dict(out.after), "confirmed": out.confirmed,
                "checkpoint": str(out.checkpoint), "run": out.run, "protocol": out.protocol, "floor": out.floor,
                "outcome": out.to_dict()}


def retrain_again(path: Path, run: str, ctx: JobContext, name: Optional[str] = None) -> dict[str, Any]:
    """The Fine-tune tab's Retrain again: the run's recipe trained from scratch without the samples confirmed now
    (:func:`naviewer.workflows.retrain_again.retrain_on_decisions`); returns what the tab's table shows."""
    from naviewer.workflows.retrain_again import retrain_on_decisions
    from naviewer.workspace import Workspace

    with Workspace.open(path) as ws:
        return retrain_on_decisions(ws, run, ctx, name=name)


def check_retrained(path: Path, run: str, ctx: JobContext) -> dict[str, Any]:
    """The Fine-tune tab's Look for triggers in the retrained encoder: PatchSearch on the run's newest retrained
    encoder, saved as a pass; its flags still in the training set are proposed, none decided
    (:func:`naviewer.workflows.check_after_retrain.check_after_retrain` with ``confirm=False``)."""
    from naviewer.workflows.check_after_retrain import check_after_retrain
    from naviewer.workspace import Workspace

    with Workspace.open(path) as ws:
        return check_after_retrain(ws, run, ctx=ctx, retrain=False, confirm=False).to_dict()


# -- DIFT's anchors ------------------------------------------------------------------------------------

#: thumbnails the Anchors view shows a class, and at most in all (a 1,000-class set shows its first classes)
ANCHOR_THUMBS_PER_CLASS = 12
ANCHOR_THUMBS_TOTAL = 1200
ANCHOR_THUMB_PX = 64


def _thumbnail(image: Any, px: int = ANCHOR_THUMB_PX) -> Any:
    """A uint8 (h, w, 3) copy no larger than ``px`` a side (the view never holds full-size images)."""
    import numpy as np

    array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    h, w = array.shape[:2]
    if max(h, w) <= px:
        return np.ascontiguousarray(array)
    from PIL import Image

    picture = Image.fromarray(array)
    picture.thumbnail((px, px))
    return np.asarray(picture, dtype=np.uint8).copy()


def anchor_overview(path: Path, ctx: JobContext, *, thumbs_per_class: int = ANCHOR_THUMBS_PER_CLASS,
                    thumbs_total: int = ANCHOR_THUMBS_TOTAL) -> dict[str, Any]:
    """What the Anchors view shows (``naviewer anchors WS``): kind, source, trust, count per class,
    warnings, and a few thumbnails a class, the in-set anchors from the workspace's dataset, the
    trusted images outside it from their own set. Anchors never recorded are drawn from the labels
    (untrusted) for the view only: reading never writes the workspace."""
    import numpy as np

    from naviewer.workflows.anchor_sources import load_anchor_set
    from naviewer.workspace import Workspace

    ctx.progress(0, None, "reading the anchors")
    with Workspace.open(path) as ws:
        section = dict(ws.config.get("anchors") or {})
        per_class = int(section.get("per_class") or 10)
        seed = int(section.get("seed") or 0)
        anchor_set = load_anchor_set(ws, per_class, seed, ctx, record=False)
        described = anchor_set.describe()
        names = list(ws.class_names)
        thumbs: dict[int, list[tuple[str, Any, int]]] = {}  # class -> (caption, image, in-set sample id or -1)
        thumb_note = ""
        budget = thumbs_total
        dropped, dropped_pass = _dropped_anchors(ws)

        def add(label: int, caption: str, image: Any, sid: int = -1) -> None:
            nonlocal budget
            row = thumbs.setdefault(int(label), [])
            if len(row) < thumbs_per_class and budget > 0:
                row.append((caption, _thumbnail(image), int(sid)))
                budget -= 1

        ids, labels = anchor_set.anchors.indices, anchor_set.anchors.labels
        if ids.size:
            try:
                dataset = ws.dataset()
            except NaviewerError as exc:
                thumb_note = f"no thumbnails of the in-set anchors: {exc}"
            else:
                keys = ws.store.source_keys()  # read in windows: not every key of a 10M-sample workspace
                for i, (sid, label) in enumerate(zip(ids.tolist(), labels.tolist())):
                    if i % 64 == 0:
                        ctx.check()
                    if len(thumbs.get(int(label), [])) >= thumbs_per_class or budget <= 0:
                        continue
                    key = str(keys[sid]) if keys is not None else ""
                    add(label, f"#{sid}" + (f" {key}" if key else ""), dataset.image(int(sid)), sid)
        external = anchor_set.external
        if external is not None:
            ext_keys = list((section.get("external") or {}).get("keys") or [])
            for j, label in enumerate(np.asarray(anchor_set.external_labels).tolist()):
                if len(thumbs.get(int(label), [])) >= thumbs_per_class or budget <= 0:
                    continue
                add(label, f"trusted {ext_keys[j]}" if j < len(ext_keys) else f"trusted image {j}", external.image(j))
        if budget <= 0:
            thumb_note = thumb_note or f"thumbnails for the first {thumbs_total:,} anchors only"
    ctx.progress(1, 1, "reading the anchors")
    return {**described, "spec": str(section.get("spec") or ""), "per_class_setting": per_class, "seed": seed,
            "class_names": names, "thumbs": thumbs, "thumb_note": thumb_note, "workspace": str(path),
            "dropped": dropped, "dropped_pass": dropped_pass,
            "in_set": int(ids.size), "external_count": int(np.asarray(anchor_set.external_labels).size)}


def _dropped_anchors(ws) -> "tuple[list[int], Optional[int]]":
    """(in-set anchor ids, pass id): the anchors the untrusted-anchor screen of the latest DIFT pass dropped."""
    import re

    pass_id = ws.store.latest_pass_id("dift")
    info = ws.store.pass_info(pass_id) if pass_id is not None else None
    notes = list(((info or {}).get("settings") or {}).get("anchor_notes") or [])
    ids = [int(m.group(1)) for m in (re.match(r"\s*anchor (\d+)", str(n)) for n in notes) if m]
    return ids, (pass_id if ids else None)


def replace_anchors(path: Path, spec: str, ctx: JobContext, *, per_class: int = 10, seed: int = 0) -> dict[str, Any]:
    """``naviewer anchors WS SPEC``: check ``spec`` against the workspace (every class covered, ids in
    range, keys present) and record it as ``[anchors]``; returns the new :func:`anchor_overview`. A bad
    spec is a NaviewerError naming the file and the problem, and changes nothing."""
    from naviewer.workflows.anchor_sources import set_workspace_anchors
    from naviewer.workspace import Workspace

    ctx.progress(0, None, "checking the anchors")
    with Workspace.open(path) as ws:
        set_workspace_anchors(ws, spec, per_class, seed, ctx)
    return anchor_overview(path, ctx)
