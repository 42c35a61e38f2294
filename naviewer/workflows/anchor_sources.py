"""Where DIFT's anchors come from: the analyst's trusted set, or the suspect set's own labels.

Anchors are DIFT's trust root (Eq. 6 measures every candidate against them), so the workspace
records where they came from in ``[anchors]``:

========================== ============================================================== =======
``kind``                   what                                                           trusted
========================== ============================================================== =======
``external``               a labelled trusted dataset (file list, CSV, image folder,      yes
                           CIFAR folder) outside the training set; ``per_class`` images
                           a class are drawn from it (seeded) and embedded with the same
                           encoder every time DIFT runs
``ids`` / ``keys``         training samples the analyst names by id or by source key      yes
``clean-before-poisoning`` drawn from the clean set before naviewer crafted an attack     yes
``labels``                 drawn from the training set's own labels: the suspect set      **no**
========================== ============================================================== =======

``--anchors SPEC`` (``naviewer new``, ``run``, ``detect``, ``reproduce``) is parsed by
:func:`parse_anchor_spec`: ``labels``; ``ids:3,17,42`` or ``ids:@FILE`` (one id a line);
``keys:KEY,KEY`` or ``keys:@FILE`` (one source key a line); ``dataset:SPEC`` or a bare path: a
labelled trusted dataset. Untrusted anchors are screened (:mod:`naviewer.defense.anchor_screen`)
and every output that judges a sample says that the anchors were not trusted.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Sequence

import numpy as np

from naviewer.data.base import ImageDataset
from naviewer.data.names import names_shown
from naviewer.errors import NaviewerError
from naviewer.io import check_regular_file
from naviewer.jobs import JobContext, ensure_context
from naviewer.workspace.anchor_record import UNTRUSTED_NOTICE, section_kind, section_trusted

if TYPE_CHECKING:
    from naviewer.defense.anchors import Anchors

# naviewer.defense's package imports torch: its anchor helpers are imported where they are used, so
# that the CLI's argument parsers (which read ANCHOR_SPEC_HELP) stay torch-free.

ANCHOR_SPEC_HELP = ("where DIFT's clean anchors come from: 'labels' (drawn from the dataset's own labels: NOT "
                    "trusted), 'ids:3,17,42' or 'ids:@FILE' (training sample ids), 'keys:@FILE' (source keys, one a "
                    "line), or a labelled trusted dataset (file list, CSV, image folder; 'dataset:SPEC' also works) "
                    "whose images need not be in the training set")


@dataclass(frozen=True)
class AnchorSpec:
    """A parsed ``--anchors`` value."""

    kind: str                           # labels | ids | keys | external
    text: str                           # what the user wrote
    ids: tuple[int, ...] = ()
    keys: tuple[str, ...] = ()
    dataset: Any = None                 # external: an open_dataset spec
    origin: Optional[Path] = None       # the file the ids/keys came from, for messages


def _items(value: str, what: str, origin_hint: str) -> tuple[list[str], Optional[Path]]:
    value = value.strip()
    if value.startswith("@"):
        if not value[1:].strip():  # read as the current folder: ".: the anchor id file is a folder" (session 30)
            raise NaviewerError(f"no file name after '@' (a file of {what}s is @FILE)")
        path = Path(value[1:]).expanduser()
        check_regular_file(path, f"{what} file")
        try:
            text = path.read_text(encoding="utf-8-sig")  # a BOM, as file lists and CSVs accept
        except FileNotFoundError:
            raise NaviewerError(f"the {what} file does not exist", path) from None
        except UnicodeDecodeError:
            raise NaviewerError(f"the {what} file is not UTF-8 text", path) from None
        except OSError as exc:
            raise NaviewerError(f"cannot read the {what} file ({exc.strerror or exc})", path) from None
        lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        items = [line for line in lines if line]
        if not items:
            raise NaviewerError(f"the {what} file lists nothing", path)
        return items, path
    items = [part.strip() for part in value.split(",") if part.strip()]
    if not items:
        raise NaviewerError(f"--anchors {origin_hint}: no {what} given")
    return items, None


def parse_anchor_spec(text: str) -> AnchorSpec:
    """Parse ``--anchors SPEC`` (see the module docstring); a NaviewerError names what is wrong."""
    raw = str(text).strip()
    if not raw:
        raise NaviewerError("--anchors: empty value; " + ANCHOR_SPEC_HELP)
    head, _, rest = raw.partition(":")
    if raw.lower() == "labels":
        return AnchorSpec("labels", raw)
    if head == "ids":
        items, origin = _items(rest, "anchor id", raw)
        ids = []
        for item in items:
            if not re.fullmatch(r"-?[0-9]+", item.strip()):  # int() also read "1_0" as 10, and other scripts' digits
                hint = (f" (a file of ids is ids:@{item})" if not rest.strip().startswith("@") and
                        ("/" in item or "\\" in item or "." in item) else "")
                raise NaviewerError(f"anchor id {item!r} is not a whole number (ASCII digits){hint}", origin)
            value = int(item)
            if not -(2**62) < value < 2**62:  # past int64 numpy raised OverflowError, a traceback
                raise NaviewerError(f"anchor id {item} is not a sample of any training set (too large)", origin)
            ids.append(value)
        return AnchorSpec("ids", raw, ids=tuple(ids), origin=origin)
    if head == "keys":
        items, origin = _items(rest, "anchor key", raw)
        return AnchorSpec("keys", raw, keys=tuple(items), origin=origin)
    target = rest if head == "dataset" else raw
    if not target.strip():
        raise NaviewerError("--anchors dataset: no dataset given")
    return AnchorSpec("external", raw, dataset=target.strip())


# -- resolving a spec against the training set -----------------------------------------------------

def _class_coverage(anchor_labels: np.ndarray, data_labels: np.ndarray, per_class: int, where: str,
                    origin: Any = None, names: Sequence[str] = ()) -> list[str]:
    """Every class of the data needs an anchor (NaviewerError naming the missing ones); thin classes
    are returned as warnings. ``names``: the class names, said beside the numbers ("class 3 (horse)")."""
    def named(c: int) -> str:
        return f"{c} ({names[c]})" if 0 <= c < len(names) and str(names[c]) != str(c) else str(c)

    classes = np.unique(data_labels[data_labels >= 0])
    have = dict(zip(*np.unique(anchor_labels, return_counts=True))) if anchor_labels.size else {}
    missing = [int(c) for c in classes if int(c) not in have]
    if missing:
        shown = ", ".join(named(c) for c in missing[:20]) + (" ..." if len(missing) > 20 else "")
        raise NaviewerError(f"{where} cover {len(classes) - len(missing)} of the data's {len(classes)} classes; "
                            f"no anchor for class {shown}: every class needs at least one trusted anchor", origin)
    return [f"class {named(int(c))} has {int(have[int(c)])} anchors (wanted {per_class})"
            for c in classes if int(have[int(c)]) < per_class]


def _check_names(external: ImageDataset, class_names: Sequence[str], origin: Any) -> None:
    """An external set numbered differently from the workspace would anchor the wrong classes."""
    from naviewer.data.names import check_class_numbering

    check_class_numbering(external.class_names, class_names, "trusted anchor set", "training set", origin)


def resolve_anchor_section(spec: AnchorSpec, labels: np.ndarray, source_keys: Sequence[str],
                           class_names: Sequence[str], per_class: int = 10, seed: int = 0,
                           ctx: Optional[JobContext] = None, hashes: Optional[Sequence[str]] = None) -> dict:
    """The ``[anchors]`` section for ``spec`` over a training set with ``labels`` and ``source_keys``.

    Checks the spec now (ids in range, keys present, labels known, every class covered) so that a
    bad trusted set is refused when it is named, not when DIFT first runs. ``hashes``: the training samples'
    content hashes, to say which trusted images are training images (:func:`_training_images_note`)."""
    from naviewer.defense.anchors import draw_anchors

    labels = np.asarray(labels, dtype=np.int64)
    n = labels.size
    if per_class < 1:
        raise NaviewerError(f"anchors per class must be >= 1, got {per_class}")
    base = {"kind": spec.kind, "spec": spec.text, "per_class": int(per_class), "seed": int(seed)}
    if spec.kind == "labels":
        if not (labels >= 0).any():
            raise NaviewerError("the dataset has no labels to draw anchors from: give trusted anchors (--anchors)")
        anchors = draw_anchors(labels, per_class, seed)
        # --per-class 100000 took every sample with rc 0 (a sweep); the paper's 10 on a tiny set stays a warning
        if per_class > 10 and anchors.indices.size >= int((labels >= 0).sum()):
            raise NaviewerError(f"{per_class:,} anchors a class would take every labelled sample of the dataset as an "
                                "anchor: none would be left for DIFT to check. Give fewer a class (10 is the paper's)")
        return {**base, "trusted": False, "source": "dataset labels (NOT trusted: an attack labels its poisons)",
                "indices": anchors.indices.tolist(), "labels": anchors.labels.tolist(),
                "warnings": list(anchors.warnings)}
    if spec.kind in ("ids", "keys"):
        if spec.kind == "ids":
            ids = np.asarray(spec.ids, dtype=np.int64)
            bad = ids[(ids < 0) | (ids >= n)]
            if bad.size:
                raise NaviewerError(f"anchor id {int(bad[0])} is not a sample of the training set (ids 0..{n - 1})",
                                    spec.origin)
        else:
            position = {str(k): i for i, k in enumerate(source_keys)}
            missing = [k for k in spec.keys if k not in position]
            if missing:
                raise NaviewerError(f"{len(missing)} anchor key(s) are not in the training set, e.g. {missing[0]!r}",
                                    spec.origin)
            ids = np.asarray([position[k] for k in spec.keys], dtype=np.int64)
        named = ids.size
        ids = np.unique(ids)
        anchor_labels = labels[ids]
        if (anchor_labels < 0).any():
            raise NaviewerError(f"anchor {int(ids[anchor_labels < 0][0])} has no class label", spec.origin)
        warnings = _class_coverage(anchor_labels, labels, per_class, f"the {ids.size} named anchors", spec.origin,
                                   list(class_names or ()))
        if named > ids.size:  # dropped without a word before (a sweep)
            warnings.append(f"{named - ids.size} anchor(s) were named more than once and are used once")
        return {**base, "trusted": True, "source": f"{ids.size} training samples named by the analyst ({spec.kind})",
                "indices": ids.tolist(), "labels": anchor_labels.tolist(), "warnings": warnings}
    # external
    from naviewer.data import open_dataset

    ctx = ensure_context(ctx)
    external = open_dataset(spec.dataset)
    described = dict(external.describe())
    if described.get("kind") == "memory":
        raise NaviewerError("a trusted anchor set must be a dataset on disk")
    ext_labels = np.asarray(external.labels, dtype=np.int64)
    where = described.get("root") or described.get("path") or spec.dataset
    if not (ext_labels >= 0).any():
        raise NaviewerError("the trusted anchor set has no class labels: anchors need them", where)
    _check_names(external, class_names, where)
    data_classes = np.unique(labels[labels >= 0])
    unknown = np.setdiff1d(np.unique(ext_labels[ext_labels >= 0]), data_classes)
    theirs = [str(name) for name in (external.class_names or ())]
    ours = [str(name) for name in (class_names or ())]
    numbered_whole = np.array_equal(np.unique(ext_labels[ext_labels >= 0]), np.arange(len(theirs)))  # no gaps, and
    # several classes beyond the workspace's holding a good share of the images: a dataset of numbered classes (the
    # digits), not a list whose stray label made the numbering (one class past the end was refused while label 7
    # was warned about; a review, session 30)
    beyond = float(np.isin(ext_labels, unknown).mean()) if ext_labels.size else 0.0
    if (unknown.size >= 2 and beyond >= 0.1 and theirs and numbered_whole and all(n.isdigit() for n in theirs)
            and ours and not all(n.isdigit() for n in ours)):
        # the built-in digits (classes "0".."9") became trusted "cat", "dog", "emu" anchors: number names match any
        # class (for lists without classes.txt), but a set with more classes than the workspace is another dataset
        # (a bad-input probe, session 30)
        raise NaviewerError(f"the trusted set's classes are numbered {theirs[0]}-{theirs[-1]} ({len(theirs)} classes) and "
                            f"the workspace's are {names_shown(ours)} "
                            f"({len(ours)}): they are not the same classes; give a trusted set of the workspace's "
                            "classes (a folder per class, or a list with a classes.txt beside it)", where)
    labelled = ext_labels[ext_labels >= 0]
    if labelled.size and not np.isin(labelled, data_classes).any():
        # every image labelled 57 in a 10-class workspace: "anchors: no class has a clean sample to use as an
        # anchor", neither the file nor the label named (a GUI probe, session 33)
        names = names_shown(class_names or ()) or "?"
        raise NaviewerError(f"none of the trusted set's {labelled.size:,} labelled images carries a class of the "
                            f"workspace: their label(s) {', '.join(map(str, unknown[:10].tolist()))}, the workspace's "
                            f"classes 0-{len(class_names or ()) - 1} ({names})", where)
    chosen = draw_anchors(ext_labels, per_class, seed, classes=[int(c) for c in data_classes])
    # decoded now, before anything is recorded: a truncated image used to be found only when DIFT read the anchors,
    # after [anchors] had been replaced (the old anchors lost, every later detect failing) or a workspace made
    from naviewer.data.base import SubsetDataset
    from naviewer.data.store import ImageStore

    ImageStore.from_dataset(SubsetDataset(external, chosen.indices), ctx)
    try:
        warnings = _class_coverage(chosen.labels, labels, per_class, "the trusted anchor set's images", where,
                                   list(class_names or ()))
    except NaviewerError as exc:
        if not unknown.size:
            raise
        # a label beyond the workspace's classes (emu/N.png 7 in a 3-class workspace) was blamed on the class left
        # without an anchor, never named (a bad-input probe, session 30)
        counts = int(np.isin(ext_labels, unknown).sum())
        names = ", ".join(map(str, class_names or ())) or "?"
        raise NaviewerError(f"{exc.message}; {counts:,} of its images carry label(s) "
                            f"{', '.join(map(str, unknown[:10].tolist()))}, which are not classes of the workspace "
                            f"(0-{len(class_names or ()) - 1}: {names})", exc.path) from None
    if unknown.size:
        warnings.append(f"the trusted set's class(es) {', '.join(map(str, unknown[:10].tolist()))} do not occur in "
                        "the training set and are not used")
    note = _training_images_note(external, chosen, labels, hashes) if hashes is not None else None
    if note:
        warnings.append(note)
    ctx.event("log", message=f"anchors: {len(chosen)} trusted images from {where}")
    outside = ("every one of them a training sample" if note and note.startswith("every one")
               else "some of them training samples" if note else "outside the training set")
    return {**base, "trusted": True, "source": f"trusted dataset {where} ({len(chosen)} images, {outside})",
            "indices": [], "labels": [], "warnings": warnings,
            "external": {"dataset": described, "ids": chosen.indices.tolist(), "labels": chosen.labels.tolist(),
                         "keys": [external.source_key(int(i)) for i in chosen.indices]}}


@contextlib.contextmanager
def anchors_kept_on_failure(ws, keep: Callable[[], bool] = lambda: True) -> Iterator[None]:
    """The workspace's ``[anchors]`` as they were when the block fails and ``keep()`` says so: ``detect --anchors``
    and ``run --anchors`` record the new anchors, then detect or train; a failure after that (a bad checkpoint,
    "DIFT needs more than k + anchors samples") left the new anchors and lost the old ones (a sweep)."""
    import copy

    before = copy.deepcopy(ws.config.get("anchors"))
    try:
        yield
    except BaseException:
        now = ws.config.get("anchors") or {}
        if keep() and now != (before or {}):  # unchanged: no rewrite (it dropped the file's comments for nothing)
            ws.update_config("anchors", dict(before or {}), replace=True)
        raise


def set_workspace_anchors(ws, spec: "AnchorSpec | str", per_class: int = 10, seed: int = 0,
                          ctx: Optional[JobContext] = None) -> dict:
    """Resolve ``spec`` against the workspace's samples and record it as ``[anchors]`` (returned)."""
    if isinstance(spec, str):
        spec = parse_anchor_spec(spec)
    samples = ws.store.samples()
    section = resolve_anchor_section(spec, samples["label"], samples["source_key"], ws.class_names, per_class, seed,
                                     ctx, hashes=samples["hash"])
    ws.update_config("anchors", section, replace=True)  # the whole section, decided under the workspace's lock
    return section


def _training_images_note(external: ImageDataset, chosen: Any, labels: np.ndarray,
                          hashes: Sequence[str]) -> Optional[str]:
    """A trusted set whose images are training samples (the same content) is not "outside the training set", and one
    whose labels differ from theirs contradicts the data DIFT checks: the warning that says so, or None (a sweep:
    the training folder itself, relabelled, was accepted as an outside trusted set without a word)."""
    try:
        theirs = [external.content_hash(int(i)) for i in chosen.indices]
    except (NaviewerError, OSError, ValueError):
        return None
    by_hash = {h: i for i, h in enumerate(hashes) if h}
    same = [(by_hash[h], int(label)) for h, label in zip(theirs, chosen.labels) if h in by_hash]
    if not same:
        return None
    other = [(i, label) for i, label in same if int(labels[i]) != label]
    text = f"{len(same)} of the {len(theirs)} trusted anchor images are training samples (the same pixels)"
    if len(same) == len(theirs):  # the training folder itself chosen as "trusted" (a newcomer, session 30)
        text = (f"every one of the {len(theirs)} trusted anchor images is a training sample (the same pixels): this "
                "set is the training data, whose labels an attack controls, so a poison can be an anchor; they are "
                "trusted only as far as you checked these images by eye")
    if other:
        i, label = other[0]
        text += (f"; {len(other)} of them carry another label in the training set (training sample {i} is class "
                 f"{int(labels[i])}, the trusted set says {label}): check which labels are right")
    return text


# -- reading them back -------------------------------------------------------------------------------

@dataclass
class AnchorSet:
    """A workspace's anchors as DIFT uses them: in-set ids, and trusted images outside the set."""

    anchors: "Anchors"                            # in-set anchors (ids into the workspace samples)
    kind: str
    source: str
    external: Any = None                          # an ImageStore of the trusted images outside the set, or None
    external_labels: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @property
    def trusted(self) -> bool:
        return self.anchors.trusted

    @property
    def warnings(self) -> list[str]:
        return self.anchors.warnings

    def __len__(self) -> int:
        return len(self.anchors) + int(self.external_labels.size)

    def counts(self) -> dict[int, int]:
        labels = np.concatenate([self.anchors.labels, self.external_labels])
        classes, counts = np.unique(labels, return_counts=True)
        return {int(c): int(k) for c, k in zip(classes, counts)}

    def describe(self) -> dict:
        """For reports and provenance: where the anchors came from and whether they are trusted."""
        return {"kind": self.kind, "trusted": self.trusted, "source": self.source, "count": len(self),
                "per_class": self.counts(), "warnings": list(self.warnings),
                **({} if self.trusted else {"notice": UNTRUSTED_NOTICE})}

    def for_features(self, features: np.ndarray,
                     embed_external: Optional[Callable[[Any], np.ndarray]] = None) -> tuple[np.ndarray, "Anchors"]:
        """(features, anchors) for one detection: with external anchors, ``embed_external(store)``
        embeds them with the same encoder and they are appended after the training samples."""
        from naviewer.defense.anchors import append_external

        if self.external is None:
            return features, self.anchors
        if embed_external is None:
            raise NaviewerError("these anchors are images outside the training set: they need the encoder to embed them")
        ext = np.asarray(embed_external(self.external), dtype=np.float32)
        return append_external(features, self.anchors if len(self.anchors) else None, ext, self.external_labels)


def load_anchor_set(ws, per_class: int = 10, seed: int = 0, ctx: Optional[JobContext] = None,
                    record: bool = True) -> AnchorSet:
    """The workspace's ``[anchors]``; when absent they are drawn from the labels (untrusted) and,
    with ``record`` (DIFT runs), written to the workspace. ``record=False`` only reads: views that
    describe the anchors never write (a read-only workspace stays untouched)."""
    from naviewer.defense.anchors import Anchors

    section = ws.config.get("anchors") or {}
    if not section or (not section.get("indices") and not section.get("external")):
        spec = AnchorSpec("labels", "labels")
        if record:
            section = set_workspace_anchors(ws, spec, per_class, seed, ctx)
        else:
            samples = ws.store.samples()
            section = resolve_anchor_section(spec, samples["label"], samples["source_key"], ws.class_names,
                                             per_class, seed, ctx)
    kind, trusted = section_kind(section), section_trusted(section)
    warnings = list(section.get("warnings", []))
    try:  # a hand-edited [anchors] (ids out of range, negative or repeated, lists of other lengths) names the file
        anchors = Anchors(_whole_numbers(ws, section, "indices"), _whole_numbers(ws, section, "labels"),
                          list(warnings), trusted)
        anchors.check_range(ws.store.sample_count())
        classes = len(ws.class_names or [])
        if classes and anchors.labels.size and (anchors.labels.min() < 0 or anchors.labels.max() >= classes):
            raise NaviewerError(f"anchor label {int(anchors.labels.max())} names no class (the workspace has "
                                f"{classes}: 0-{classes - 1})")
    except NaviewerError as exc:
        if exc.path is not None:
            raise
        raise NaviewerError(f"[anchors] {exc.message} (was workspace.toml edited?)",
                            getattr(ws, "config_path", None)) from None
    external, ext_labels = None, np.empty(0, dtype=np.int64)
    if section.get("external"):
        from naviewer.data import open_dataset
        from naviewer.data.store import ImageStore

        ext = section["external"]
        dataset = open_dataset(ext["dataset"])
        ids = _whole_numbers(ws, ext, "ids", "[anchors.external]")
        if ids.size and ids.max() >= len(dataset):
            raise NaviewerError("the trusted anchor set changed since it was chosen (fewer images now)",
                                ext["dataset"].get("root") or ext["dataset"].get("path"))
        keys = ext.get("keys")
        if keys and [dataset.source_key(int(i)) for i in ids] != list(keys):
            raise NaviewerError("the trusted anchor set changed since it was chosen (its images moved)",
                                ext["dataset"].get("root") or ext["dataset"].get("path"))
        from naviewer.data.base import SubsetDataset

        external = ImageStore.from_dataset(SubsetDataset(dataset, ids), ctx)  # decode only the anchors
        ext_labels = _whole_numbers(ws, ext, "labels", "[anchors.external]")
    source = str(section.get("source") or kind)
    return AnchorSet(anchors, kind, source, external, ext_labels)


def _whole_numbers(ws, section: dict, key: str, where: str = "[anchors]") -> np.ndarray:
    """``section[key]`` as int64 ids or labels; an edited ``workspace.toml`` with text there is named, not a traceback."""
    values = section.get(key) or []
    try:
        array = np.asarray(values, dtype=np.float64)
        if array.ndim != 1 or not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise ValueError
    except (TypeError, ValueError):
        raise NaviewerError(f"{where} {key} must be a list of whole numbers (was workspace.toml edited?)",
                            getattr(ws, "config_path", None)) from None
    return array.astype(np.int64)


def anchors_summary(described: dict) -> str:
    """One line for terminals and logs: how many anchors, from where, and whether they are trusted."""
    per = described.get("per_class") or {}
    low, high = (min(per.values()), max(per.values())) if per else (0, 0)
    spread = (f"{low} a class" if low == high else f"{low}-{high} a class") if per else "none"  # not "10-10 a class"
    if described.get("trusted"):
        return f"anchors: {described.get('count', 0)} trusted ({spread}) from {described.get('source')}"
    return (f"WARNING - anchors NOT trusted ({described.get('count', 0)}, {spread}). {UNTRUSTED_NOTICE} "
            "(--anchors SPEC, or naviewer anchors WORKSPACE SPEC)")
