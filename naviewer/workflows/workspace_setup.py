"""Create a workspace from a dataset, or from a clean dataset plus a crafted attack.

For an attack the order matters:

1. the DIFT anchors (``per_class`` clean labelled samples per class, seeded) are drawn from the
   CLEAN training set *before* poisoning, and the attack crafts on the clean set minus the
   anchors, so no anchor is ever poisoned (CTRL poisons the first target-class images and may
   take a whole class on CIFAR-100);
2. the crafted set plus the anchors (appended at the end) is written into ``<ws>/dataset/``
   (PNG + ``train.txt`` + ``classes.txt``) and registered, so ``ws.dataset()`` re-opens it
   through the file-list source with the same ids;
3. the ground truth goes to ``<ws>/ground_truth.json`` only (apart from detection; the copy the
   exporter writes next to the images is removed), with every ``source`` id mapped back to the
   clean set;
4. ``workspace.toml`` records ``[anchors]`` (ids in the workspace numbering), ``[attack]`` (the
   recipe: name, settings, seed) and ``[evaluation]`` (the clean train and test sets used for
   kNN accuracy and, with the attack's test-time trigger, ASR).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union

import numpy as np

from naviewer.data.base import DatasetWarning, ImageDataset, SubsetDataset
from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context

PathLike = Union[str, "os.PathLike[str]"]
DatasetSpec = Union[str, Path, Mapping[str, Any], ImageDataset]

DATASET_DIR = "dataset"


def _open(spec: DatasetSpec, split: str = "train") -> ImageDataset:
    from naviewer.data import open_dataset

    if isinstance(spec, ImageDataset):
        return spec
    return open_dataset(spec, split=split)


class AnchoredDataset(ImageDataset):
    """A crafted set followed by the clean anchors: the workspace's training set before export."""

    kind = "crafted"

    def __init__(self, crafted: ImageDataset, clean: ImageDataset, anchor_ids: np.ndarray) -> None:
        self.crafted = crafted
        self.clean = clean
        self.anchor_ids = np.asarray(anchor_ids, dtype=np.int64)
        self._labels = np.concatenate([np.asarray(crafted.labels, dtype=np.int64),
                                       np.asarray(clean.labels, dtype=np.int64)[self.anchor_ids]])

    def __len__(self) -> int:
        return len(self.crafted) + len(self.anchor_ids)

    def _where(self, index: int) -> tuple[ImageDataset, int]:
        n = len(self.crafted)
        return (self.crafted, index) if index < n else (self.clean, int(self.anchor_ids[index - n]))

    def image(self, index: int) -> np.ndarray:
        source, i = self._where(int(index))
        return source.image(i)

    def image_size(self, index: int) -> tuple[int, int]:
        source, i = self._where(int(index))
        return source.image_size(i)

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    @property
    def class_names(self) -> list[str]:
        return self.crafted.class_names

    def source_key(self, index: int) -> str:
        source, i = self._where(int(index))
        return source.source_key(i)


def _remap_record(record: dict, pool: np.ndarray) -> dict:
    """A ground-truth record whose clean ids index ``pool`` -> ids into the clean set."""
    out = dict(record)
    if isinstance(out.get("source"), int) and out["source"] >= 0:
        out["source"] = int(pool[out["source"]])
    sources = out.get("sources")
    if isinstance(sources, dict):
        mapped = {}
        for role, ref in sources.items():
            if isinstance(ref, dict) and isinstance(ref.get("id"), int):
                ref = dict(ref, id=int(pool[ref["id"]]))
            elif isinstance(ref, list):
                ref = [dict(r, id=int(pool[r["id"]])) if isinstance(r, dict) and isinstance(r.get("id"), int) else r
                       for r in ref]
            mapped[role] = ref
        out["sources"] = mapped
    return out


@dataclass
class SetupResult:
    """What :func:`create_attacked_workspace` made (the workspace stays open: close it)."""

    workspace: Any
    anchors: Any
    num_poisons: int
    size: int
    kept_clean: int = 0   # the anchors drawn before poisoning: in the workspace, never poisoned

    def poison_share(self) -> str:
        """How many poisons, of what: "88 poisons, 9.0 % of the 980 samples (the rate counts the 880 the attack
        could use; the 100 anchors drawn first stay clean)". A newcomer asked for 10 % and read 8.98 % in the
        ground truth, unexplained (session 20)."""
        text = f"{self.num_poisons:,} poisons, {100 * self.num_poisons / max(self.size, 1):.1f} % of the {self.size:,} samples"
        if self.kept_clean:
            text += (f" (the rate counts the {self.size - self.kept_clean:,} the attack could use; the "
                     f"{self.kept_clean:,} anchors drawn first stay clean)")
        return text


def _test_description(clean: ImageDataset, clean_spec: DatasetSpec, test_spec: Optional[DatasetSpec]) -> Optional[dict]:
    """The clean test split (its describe() dict), or None when the source has none."""
    if isinstance(clean_spec, ImageDataset) and test_spec is None:
        return None
    try:
        test = _open(test_spec if test_spec is not None else clean_spec, "test")
    except NaviewerError as exc:
        if test_spec is not None:
            raise
        if exc.path is not None and Path(exc.path).exists():  # there, but unreadable: said, not "none" in silence
            warnings.warn(f"{exc}; the dataset's test split cannot be read, so the workspace has no evaluation set "
                          "(kNN accuracy, ASR): repair it, or give one with --test-dataset", DatasetWarning, stacklevel=2)
        return None
    described = dict(test.describe())
    if test_spec is None and described == dict(clean.describe()):
        return None  # the source has no separate test split
    from naviewer.data.names import check_class_numbering

    # every ASR and kNN accuracy of the workspace would read the wrong classes
    where = test_spec if isinstance(test_spec, (str, Path)) else described.get("root") or described.get("path")
    check_class_numbering(test.class_names, clean.class_names, "test set", "training set", where)
    extra = list(test.class_names)[len(clean.class_names):]
    if extra and clean.class_names:  # accepted in silence (a sweep): the kNN classifier can never answer them
        shown = ", ".join(repr(str(name)) for name in extra[:3]) + (f" and {len(extra) - 3:,} more" if len(extra) > 3 else "")
        warnings.warn(f"{where}: the test set has {len(extra):,} class(es) the training set lacks ({shown}): the kNN "
                      "classifier, trained on the training set's labels, never predicts them, so they lower the "
                      "accuracy and count as non-target images in the ASR", DatasetWarning, stacklevel=2)
    if described.get("kind") == "memory":
        return None
    if test_spec is not None:
        # a corrupt test set was recorded as "test set for evaluation: yes" and failed only at the first ASR (a
        # sweep): a scattered sample of its images is decoded now, and an unlabelled one is refused
        if not (np.asarray(test.labels) >= 0).any():
            raise NaviewerError("the test set has no class labels: kNN accuracy and ASR need labelled images", where)
        if described == dict(clean.describe()):
            warnings.warn(f"{where}: the test set is the training set itself: kNN accuracy and ASR are then measured "
                          "on the images trained on", DatasetWarning, stacklevel=2)
        n = len(test)
        for i in np.unique(np.random.default_rng(0).choice(n, size=min(n, 32), replace=False)).tolist():
            test.image(int(i))
    return described


def _evaluation_section(clean: ImageDataset, clean_spec: DatasetSpec, test_spec: Optional[DatasetSpec]) -> dict:
    """The workspace's ``[evaluation]``: the clean train set, and its test split when there is one."""
    evaluation: dict[str, Any] = {"train": dict(clean.describe())}
    test = _test_description(clean, clean_spec, test_spec)
    if test is not None:
        evaluation["test"] = test
    return evaluation


def draw_workspace_anchors(labels: np.ndarray, per_class: int, seed: int, candidates: Optional[np.ndarray] = None):
    from naviewer.defense.anchors import draw_anchors

    return draw_anchors(np.asarray(labels, dtype=np.int64), per_class, seed, candidates=candidates)


def _anchor_section(anchors, per_class: int, seed: int, source: str, kind: str, trusted: bool) -> dict:
    return {"kind": kind, "trusted": bool(trusted), "indices": anchors.indices.tolist(),
            "labels": anchors.labels.tolist(), "per_class": int(per_class), "seed": int(seed), "source": source,
            "warnings": list(anchors.warnings)}


def dift_preset_section(preset: str) -> dict[str, Any]:
    """The ``[dift]`` a new workspace starts with (:data:`naviewer.defense.config.DIFT_PRESETS`)."""
    from naviewer.defense.config import DIFT_PRESETS

    if preset not in DIFT_PRESETS:
        raise NaviewerError(f"unknown DIFT preset {preset!r}; choose from {', '.join(DIFT_PRESETS)}")
    return dict(DIFT_PRESETS[preset])


def create_workspace(path: PathLike, dataset: DatasetSpec, *, anchors_per_class: int = 10, seed: int = 0,
                     test_dataset: Optional[DatasetSpec] = None, settings: Optional[dict] = None,
                     anchors: Optional[str] = None, ctx: Optional[JobContext] = None,
                     dift_preset: str = "naviewer"):
    """A workspace over an existing dataset (any ``open_dataset`` spec); returns the open Workspace.

    ``anchors`` (an ``--anchors`` SPEC, :mod:`naviewer.workflows.anchor_sources`) names a trusted
    clean set; without it the anchors are drawn from the dataset's own labels and recorded as NOT
    trusted. A clean test split, if the source has one, is recorded for evaluation. ``dift_preset``
    names the DIFT settings written into ``[dift]`` (:func:`dift_preset_section`).
    """
    from naviewer.workflows.anchor_sources import parse_anchor_spec, set_workspace_anchors
    from naviewer.workspace import Workspace

    spec = parse_anchor_spec(anchors) if anchors is not None else None
    dift = dift_preset_section(dift_preset)

    ctx = ensure_context(ctx)
    data = _open(dataset)
    if data.describe().get("kind") == "memory":
        raise NaviewerError("a workspace needs a dataset on disk (a path or 'demo'), not one built in memory")
    def finish(ws) -> None:  # in the staging folder: the workspace appears whole or not at all
        if spec is not None or (np.asarray(data.labels, dtype=np.int64) >= 0).any():
            set_workspace_anchors(ws, spec or "labels", anchors_per_class, seed, ctx)  # no trusted set: the labels
        ws.update_config("evaluation", _evaluation_section(data, dataset, test_dataset))
        if dift:
            ws.update_config("dift", dift)

    return Workspace.create(path, data, settings=settings, ctx=ctx, finish=finish)


def create_attacked_workspace(path: PathLike, clean_dataset: DatasetSpec, attack: str,
                              attack_settings: Optional[dict] = None, *, seed: int = 0,
                              anchors_per_class: int = 10, test_dataset: Optional[DatasetSpec] = None,
                              settings: Optional[dict] = None, anchors: Optional[str] = None,
                              test_protocol: Optional[str] = None, ctx: Optional[JobContext] = None,
                              dift_preset: str = "naviewer") -> SetupResult:
    """Draw anchors, craft ``attack`` on the clean set minus the anchors, write it into the workspace.

    ``anchors`` (an ``--anchors`` SPEC) replaces the clean-before-poisoning anchors afterwards (e.g.
    ``labels``: drawn from the crafted set's labels, as an analyst without a trusted set would);
    ``test_protocol`` is the attack's test-time protocol every ASR of the workspace uses."""
    from naviewer.attacks import make_attack
    from naviewer.attacks.base import CraftResult, clean_record
    from naviewer.attacks.export import export_crafted
    from naviewer.data import open_dataset
    from naviewer.defense.anchors import Anchors
    from naviewer.workflows.anchor_sources import parse_anchor_spec, set_workspace_anchors
    from naviewer.workspace import Workspace

    spec = parse_anchor_spec(anchors) if anchors is not None else None
    dift = dift_preset_section(dift_preset)
    ctx = ensure_context(ctx)
    Workspace.refuse_taken_path(path)  # before the crafting, not after it
    clean = _open(clean_dataset)
    labels = np.asarray(clean.labels, dtype=np.int64)
    if not (labels >= 0).any():
        raise NaviewerError("crafting an attack with DIFT anchors needs a labelled clean dataset")
    attack_settings = dict(attack_settings or {})
    if "target" in attack_settings:  # a class name ("dog") as well as its number
        from naviewer.attacks.base import resolve_target

        attack_settings["target"] = resolve_target(attack_settings["target"], clean.class_names, clean_dataset)
    attack_obj = make_attack(attack, **attack_settings)
    protocol = attack_obj.check_test_protocol(test_protocol)
    # 1. anchors from the CLEAN set, before poisoning; the attack never sees them
    anchors_clean = draw_workspace_anchors(labels, anchors_per_class, seed)
    keep = np.ones(len(clean), dtype=bool)
    keep[anchors_clean.indices] = False
    pool_ids = np.flatnonzero(keep)
    pool = SubsetDataset(clean, pool_ids)
    target = attack_obj.target_class
    if 0 <= target and (labels == target).any():
        left = int((labels[pool_ids] == target).sum())
        taken = int((labels[anchors_clean.indices] == target).sum())
        if left < 2:  # the attack then said "no images of the target class", as if the dataset had none (a sweep)
            raise NaviewerError(f"the DIFT anchors took {taken} of the {taken + left} images of the target class "
                                f"{target}, leaving {left} to craft with: lower --anchors-per-class, or use a "
                                "dataset with more images of that class")
    from naviewer.attacks.base import TargetShortfall

    try:
        result = attack_obj.craft(pool, np.random.default_rng(seed), ctx)
    except TargetShortfall as exc:
        if 0 <= target and (labels == target).any():
            taken = int((labels[anchors_clean.indices] == target).sum())  # "only 10 images" of a class of 20
            raise NaviewerError(exc.message + f" (of its {int((labels == target).sum())}, the {taken} drawn first as "
                                "DIFT anchors are kept out of the attack)", exc.path) from None
        raise
    ctx.check()
    # 2. crafted set + anchors appended, one ground truth in clean numbering
    crafted = result.dataset
    combined = AnchoredDataset(crafted, clean, anchors_clean.indices)
    gt = dict(result.ground_truth)
    samples = [_remap_record(r, pool_ids) for r in gt["samples"]]
    samples += [dict(clean_record(clean, int(i)), anchor=True) for i in anchors_clean.indices]
    gt["samples"] = samples
    gt["removed"] = [dict(r, id=int(pool_ids[r["id"]])) if isinstance(r, dict) and "id" in r else r
                     for r in gt.get("removed", [])]
    gt["clean"] = {"size": len(clean), "describe": clean.describe()}
    gt["size"] = len(combined)
    gt["poison_rate"] = gt.get("num_poisons", 0) / max(len(combined), 1)
    gt["seed"] = int(seed)
    gt["anchors"] = {"clean_ids": anchors_clean.indices.tolist(),
                     "workspace_ids": (len(crafted) + np.arange(len(anchors_clean))).tolist(),
                     "note": "drawn before poisoning and excluded from it; source ids are clean-set ids"}
    full = CraftResult(combined, gt)

    written_anchors: list = []

    def finish(ws) -> None:  # in the staging folder: the workspace appears whole or not at all (a SIGKILL
        # between the rename and these sections left a crafted workspace without anchors; session 27's probe)
        out = ws.path / DATASET_DIR
        summary = export_crafted(full, out, ctx)
        from naviewer.attacks.export import read_ground_truth

        written = read_ground_truth(summary.ground_truth_path)  # with each sample's path
        summary.ground_truth_path.unlink()  # ground truth lives apart from the dataset
        ws.register_dataset(open_dataset(summary.list_path), ctx=ctx)
        ws.write_ground_truth(written)
        n_crafted = len(crafted)
        anchor_ws = n_crafted + np.arange(len(anchors_clean), dtype=np.int64)
        anchors = Anchors(anchor_ws, anchors_clean.labels, list(anchors_clean.warnings))
        section = _anchor_section(anchors, anchors_per_class, seed, "clean set before poisoning (excluded from poisoning)",
                                  "clean-before-poisoning", True)
        section["clean_ids"] = anchors_clean.indices.tolist()
        ws.update_config("anchors", section)
        if spec is not None:
            set_workspace_anchors(ws, spec, anchors_per_class, seed, ctx)
            anchors = Anchors(np.asarray(ws.config["anchors"].get("indices") or [], dtype=np.int64),
                              np.asarray(ws.config["anchors"].get("labels") or [], dtype=np.int64),
                              trusted=bool(ws.config["anchors"]["trusted"]))
        ws.update_config("attack", {
            "name": attack_obj.name, "settings": attack_obj.settings_json(), "seed": int(seed),
            "test_protocol": protocol,
            "target_class": attack_obj.target_class, "num_poisons": int(gt.get("num_poisons", 0)),
            "poison_rate": float(gt["poison_rate"]), "clean": dict(clean.describe()),
        })
        ws.update_config("evaluation", _evaluation_section(clean, clean_dataset, test_dataset))
        if dift:
            ws.update_config("dift", dift)
        written_anchors.append(anchors)

    ws = Workspace.create(path, None, settings=settings, ctx=ctx, finish=finish)

    return SetupResult(ws, written_anchors[0], int(gt.get("num_poisons", 0)), len(combined), len(anchors_clean.indices))


# -- what other workflows read back ------------------------------------------------------------

def workspace_anchors(ws, per_class: int = 10, seed: int = 0):
    """The workspace's in-set anchors (``[anchors]``, ids into its samples, with their trust);
    drawn from the sample labels (untrusted) and recorded if absent. Trusted images outside the
    training set are in :func:`naviewer.workflows.anchor_sources.load_anchor_set`."""
    from naviewer.workflows.anchor_sources import load_anchor_set

    section = ws.config.get("anchors") or {}
    if not section.get("indices") and not section.get("external"):
        labels = np.asarray(ws.store.samples()["label"], dtype=np.int64)
        if not (labels >= 0).any():
            raise NaviewerError("DIFT needs anchors (a few labelled clean samples per class) and this workspace's "
                                "dataset has no labels: give trusted anchors (naviewer anchors WS SPEC)",
                                ws.config_path)
    return load_anchor_set(ws, per_class, seed).anchors


def ground_truth_mask(ws) -> Optional[np.ndarray]:
    """bool poison mask over the workspace samples from ``ground_truth.json`` (evaluation only)."""
    from naviewer.attacks.base import poison_mask

    gt = ws.read_ground_truth()
    if gt is None or not isinstance(gt.get("samples"), list):
        return None
    for i, entry in enumerate(gt["samples"]):  # an entry without its kind was a KeyError traceback (a sweep)
        if not isinstance(entry, dict) or entry.get("kind") not in ("poison", "clean"):
            said = entry.get("kind") if isinstance(entry, dict) else entry
            raise NaviewerError(f"the ground truth's sample {i} has kind {said!r}; each sample's record needs "
                                "\"kind\": \"poison\" or \"clean\" (restore the file naviewer wrote, or delete it: "
                                "detection never reads it, only evaluation does)", ws.ground_truth_path)
    mask = poison_mask(gt)
    if mask.size != ws.store.sample_count():
        raise NaviewerError(f"the ground truth has {mask.size} samples, the workspace {ws.store.sample_count()}",
                            ws.ground_truth_path)
    return mask


def evaluation_truth(ws, ctx=None) -> Optional[np.ndarray]:
    """:func:`ground_truth_mask` for the passes that only report with it (detection, training): a damaged
    ``ground_truth.json`` is said as a warning and the figures it feeds are left out. It stopped ``detect`` after
    the embedding and blocked the analyst's views, though detection never reads it (a sweep, session 19)."""
    from naviewer.jobs import ensure_context

    try:
        return ground_truth_mask(ws)
    except NaviewerError as exc:
        ensure_context(ctx).event("warning", message=f"{exc}; the precision / recall against it are left out "
                                                     "(detection never reads it)")
        return None


@dataclass
class EvaluationSets:
    """Clean labelled train (kNN bank / probe) and test sets, and the attack's test trigger."""

    train: Any                      # ImageStore
    test: Optional[Any]             # ImageStore or None (then leave-one-out on train)
    trigger_fn: Optional[Callable[[np.ndarray, np.random.Generator], np.ndarray]] = None
    target: Optional[int] = None
    protocol: Optional[str] = None  # the attack's test-time protocol every ASR of this workspace uses


def evaluation_sets(ws, ctx: Optional[JobContext] = None) -> Optional[EvaluationSets]:
    """Open ``[evaluation]`` of a workspace (None when it has none or the train set is unlabelled)."""
    from naviewer.data import open_dataset
    from naviewer.data.store import ImageStore

    section = ws.config.get("evaluation") or {}
    if not isinstance(section, dict):
        raise NaviewerError(f"[evaluation] must be a table, got {section!r}", ws.config_path)
    if not section.get("train"):
        return None
    recipe = ws.config.get("attack")
    if isinstance(recipe, dict) and recipe.get("name") and (
            not isinstance(recipe.get("settings"), dict) or "target_class" not in recipe):
        # a hand-added [attack] with a name only measured an ASR for an attack of default settings, as if it were the
        # workspace's (a bad-input probe, session 28); said before any image is loaded
        raise NaviewerError("[attack] has no settings or target_class (was workspace.toml edited?): naviewer writes "
                            "both when it crafts the attack; remove the section, or craft with naviewer new --attack",
                            ws.config_path)

    def opened(key: str, **kwargs: Any):
        """A hand-edited ``root = 5`` reached os.fspath as a TypeError traceback (finetune): said with the file."""
        spec = section[key]
        if not isinstance(spec, (str, dict)) or (isinstance(spec, dict) and any(
                k in spec and not isinstance(spec[k], str) for k in ("root", "path", "kind"))):
            raise NaviewerError(f"[evaluation] {key} must be a dataset path or a table of text values, got {spec!r}",
                                ws.config_path)
        try:
            return open_dataset(spec, **kwargs)
        except (TypeError, AttributeError) as exc:
            raise NaviewerError(f"[evaluation] {key} cannot be opened as written ({exc})", ws.config_path) from None

    train = ImageStore.from_dataset(opened("train"), ctx, "loading the clean evaluation set")
    if not (train.labels >= 0).any():
        return None
    test = (ImageStore.from_dataset(opened("test", split="test"), ctx, "loading the clean test set")
            if section.get("test") else None)
    trigger_fn, target = None, None
    recipe = ws.config.get("attack")
    if recipe and recipe.get("name"):
        from naviewer.attacks import make_attack

        attack = make_attack(recipe["name"], **dict(recipe.get("settings") or {}))
        trigger_fn, target = attack.test_trigger_fn(recipe.get("test_protocol")), attack.target_class
        return EvaluationSets(train, test, trigger_fn, target, trigger_fn.protocol)
    return EvaluationSets(train, test, trigger_fn, target)


def evaluate_on_sets(backbone, sets, image_size: Optional[int], device, ctx, train_as_test: bool = False) -> dict:
    """kNN accuracy and ASR (kNN, ASR_nt / ASR_all) on the workspace's clean evaluation sets; without a
    test split nothing, or with ``train_as_test`` the train set queried against itself."""
    test = sets.test if sets is not None and sets.test is not None else (sets.train if train_as_test and sets else None)
    if test is None:
        return {}
    from naviewer.evaluation.encoder import evaluate_encoder

    k = max(1, min(200, len(sets.train) - 1))
    trig = sets.trigger_fn if sets.target is not None else None
    res = evaluate_encoder(backbone, sets.train, test, trig, sets.target if trig else None,
                           image_size=image_size, device=device, k=k, linear=False, ctx=ctx)
    out = {"knn_acc": float(res["knn_acc"])}
    if "knn_asr_nt" in res:
        out.update(asr=float(res["knn_asr_nt"]), asr_all=float(res["knn_asr_all"]))
    return out
