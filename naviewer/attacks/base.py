"""What every attack shares: the crafted dataset, the craft result, ground truth records, the registry.

An attack is a small class with a typed settings dataclass and
``craft(clean, rng, ctx=None) -> CraftResult``. The crafted dataset does not copy the clean images:
it maps each crafted index to a clean index or to a poison held in memory, so crafting a large
dataset costs the poisons, not the whole set.

Ground truth is a plain JSON-able dict, kept apart from detection (the workspace stores it in its own
file). Its ``samples`` list has one record per crafted sample, in crafted order::

    {"kind": "clean", "source": 17, "source_key": "data_batch_1/17"}
    {"kind": "poison", "attack": "na", "sources": {"shadow": {"id": 5, "key": ...},
     "reference": {"id": 9, "key": ...}}, "trigger": {"name": "blocks-14", "box": [t, l, h, w]},
     "layout": {"canvas": [h, w], "orientation": "ref-left", "regions": {"reference": [..], ...}}}

Ids in ``sources`` and ``removed`` are indices into the CLEAN dataset given to ``craft``; boxes are
``[top, left, height, width]`` in the crafted image.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional, Sequence

import numpy as np

from naviewer.attacks.triggers import Trigger, paste_trigger, random_corners, resolve_trigger
from naviewer.data.base import ImageDataset
from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext
from naviewer.settings import settings_from_dict

GROUND_TRUTH_SCHEMA = 1

#: fill colour of gaps and canvases: the ImageNet mean, as in the authors' toolbox
IMAGENET_MEAN_RGB = (124, 116, 103)


class CraftedDataset(ImageDataset):
    """A poisoned training set: clean samples by reference plus poisons held in memory.

    ``sources[i]`` is the clean index behind crafted sample i, or -1 for a poison; poisons keep
    their true sizes (a Noisy Alignment composite is 32x64 or 64x32 on CIFAR).
    """

    kind = "crafted"

    def __init__(
        self,
        clean: ImageDataset,
        sources: np.ndarray,
        poisons: dict[int, np.ndarray],
        labels: np.ndarray,
        poison_keys: dict[int, str],
        attack: str,
    ) -> None:
        self.clean = clean
        self.sources = np.asarray(sources, dtype=np.int64)
        self.poisons = poisons
        self._labels = np.asarray(labels, dtype=np.int64)
        self._poison_keys = poison_keys
        self.attack = attack

    def __len__(self) -> int:
        return len(self.sources)

    def image(self, index: int) -> np.ndarray:
        image = self.poisons.get(int(index))
        if image is not None:
            return image
        return self.clean.image(int(self.sources[index]))

    def image_size(self, index: int) -> tuple[int, int]:
        image = self.poisons.get(int(index))
        if image is not None:
            return int(image.shape[0]), int(image.shape[1])
        return self.clean.image_size(int(self.sources[index]))

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    @property
    def class_names(self) -> list[str]:
        return self.clean.class_names

    def source_key(self, index: int) -> str:
        key = self._poison_keys.get(int(index))
        if key is not None:
            return key
        return self.clean.source_key(int(self.sources[index]))

    def as_array(self) -> Optional[np.ndarray]:
        """One (N, H, W, 3) array when the clean source has one and every poison has its size
        (patch, CTRL on CIFAR), so stores load without a per-image loop; else None."""
        base = self.clean.as_array()
        if base is None or any(img.shape != base.shape[1:] for img in self.poisons.values()):
            return None
        out = base[np.maximum(self.sources, 0)]
        for index, img in self.poisons.items():
            out[index] = img
        return out

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "size": len(self), "attack": self.attack, "clean": self.clean.describe()}


@dataclass
class CraftResult:
    """A crafted (poisoned) training set and the record of what was done to it."""

    dataset: ImageDataset
    ground_truth: dict

    @property
    def poison_mask(self) -> np.ndarray:
        """bool over ``dataset``: True where the sample is a poison."""
        return poison_mask(self.ground_truth)

    @property
    def poison_indices(self) -> np.ndarray:
        return np.flatnonzero(self.poison_mask)


def poison_mask(ground_truth: dict) -> np.ndarray:
    """bool array over the crafted dataset from a ground truth record (e.g. read back from JSON)."""
    return np.array([s["kind"] == "poison" for s in ground_truth["samples"]], dtype=bool)


def _settings_json(settings: Any) -> dict:
    out = {}
    for key, value in dataclasses.asdict(settings).items():
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


@dataclass(frozen=True)
class PoisonSettings:
    """What every attack's settings start with: the ``target`` class and how many poisons: ``rate``
    (#poisons / #training images; for the attacks that add poisons, / #pre-training images),
    ignored when ``num_poisons`` is set."""

    target: int = 0
    rate: float = 0.05
    num_poisons: Optional[int] = None


@dataclass(frozen=True)
class PatchTriggerSettings(PoisonSettings):
    """The settings of an attack that pastes a visible trigger patch (SSL-Backdoor, Noisy Alignment,
    CorruptEncoder): which trigger, its side in pixels and its opacity."""

    trigger: str = "blocks-14"
    trigger_size: int = 8
    opacity: float = 1.0


class Attack:
    """Base class: ``settings`` (a dataclass), ``craft``, ``apply_test_trigger``, ``target_class``."""

    name: ClassVar[str] = ""
    Settings: ClassVar[type] = object

    def __init__(self, settings: Any = None, **overrides: Any) -> None:
        if settings is None:
            values: dict = {}
        else:
            values = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings) if f.init}
        values.update(overrides)
        # one strict loader for every settings dataclass: unknown keys and values of the wrong type are named
        self.settings = settings_from_dict(self.Settings, values, f"attack {self.name!r}")
        self.validate()
        if getattr(self.settings, "trigger", None) is not None:
            # read (and cached) now: a misspelt trigger file was said after eval had embedded both sets, and after
            # reproduce had made its --out (a bad-input probe, session 30)
            self.trigger  # noqa: B018

    # -- to override ----------------------------------------------------------------------
    def validate(self) -> None:
        s = self.settings
        rate = getattr(s, "rate", None)
        # rate 0, no poisons and an invisible trigger crafted a "poisoned" set with nothing in it (a sweep, session 18)
        if rate is not None and not 0.0 < rate < 1.0:
            raise NaviewerError(f"poison rate must be in (0, 1), got {rate}" + (": it would craft no poison" if rate == 0
                                                                                  else ""))
        count = getattr(s, "num_poisons", None)
        if count is not None and count < 1:
            raise NaviewerError(f"num_poisons must be at least 1, got {count}")
        size = getattr(s, "trigger_size", None)
        if size is not None and size < 1:
            raise NaviewerError(f"trigger size must be at least 1 px, got {size}")
        opacity = getattr(s, "opacity", None)
        if opacity is not None and not 0.0 < opacity <= 1.0:
            raise NaviewerError(f"opacity must be in (0, 1], got {opacity}" + (": the trigger would be invisible"
                                                                                if opacity == 0 else ""))

    def craft(self, clean: ImageDataset, rng: np.random.Generator, ctx: Optional[JobContext] = None) -> CraftResult:
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------
    @property
    def target_class(self) -> int:
        return int(self.settings.target)

    @property
    def trigger(self) -> Trigger:
        """The trigger at its training size (patch attacks)."""
        cached = getattr(self, "_trigger", None)
        if cached is None:
            cached = resolve_trigger(self.settings.trigger, self.settings.trigger_size)
            self._trigger = cached
        return cached

    #: named test-time protocols (how ASR pastes the trigger on clean test images) -> what each does.
    #: ``uniform`` is naviewer's own and the default; attacks add their authors' rules.
    test_protocols: ClassVar[dict[str, str]] = {
        "uniform": "opaque trigger at a uniform top-left in [0.15 W, 0.85 W - w] (the SSL-Backdoor toolbox's "
                   "test set; naviewer's default)",
    }
    default_test_protocol: ClassVar[str] = "uniform"

    def check_test_protocol(self, protocol: Optional[str]) -> str:
        """The protocol name to use (``None``: the attack's default); a NaviewerError for an unknown one."""
        name = self.default_test_protocol if protocol in (None, "") else str(protocol)
        if name not in self.test_protocols:
            raise NaviewerError(f"attack {self.name!r} has no test-time protocol {name!r}; choose from "
                                f"{', '.join(self.test_protocols)}")
        return name

    def apply_test_trigger(self, images: np.ndarray, rng: np.random.Generator,
                           protocol: Optional[str] = None) -> np.ndarray:
        """The test-time trigger (for ASR) on a uint8 batch (N, H, W, 3), placed by ``protocol``
        (:attr:`test_protocols`; ``uniform``: opaque, uniform top-left in ``[int(0.15 W), int(0.85 W) - w]``)."""
        images = _check_batch(images)
        name = self.check_test_protocol(protocol)
        return self._test_trigger(images, rng, name)

    def _test_trigger(self, images: np.ndarray, rng: np.random.Generator, protocol: str) -> np.ndarray:
        """Override to add protocols; the base knows ``uniform`` and the banded ``paste-LO-HI`` rules."""
        low, high, opacity = self._protocol_band(protocol)
        trig = self.trigger
        n, height, width = images.shape[:3]
        tops = random_corners(rng, n, height, trig.size[0], low, high)
        lefts = random_corners(rng, n, width, trig.size[1], low, high)
        return paste_trigger(images, trig, tops, lefts, opacity=opacity)

    #: (low, high, opacity) of the attack's ``paper`` protocol when it is a banded one (None: it has none, or
    #: its own ``_test_trigger`` places it)
    paper_band: ClassVar[Optional[tuple[float, float, float]]] = None

    def _protocol_band(self, protocol: str) -> tuple[float, float, float]:
        """(low, high, opacity) of a banded protocol: the trigger's top-left uniform in [low W, high W - w]."""
        if protocol == "uniform":
            return 0.15, 0.85, 1.0
        if protocol == "paper" and self.paper_band is not None:
            return self.paper_band
        raise NaviewerError(f"attack {self.name!r}: protocol {protocol!r} has no placement rule")

    def test_trigger_fn(self, protocol: Optional[str] = None):
        """``fn(images, rng)`` applying the trigger with ``protocol`` (checked now, not at first use)."""
        name = self.check_test_protocol(protocol)

        def apply(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
            return self.apply_test_trigger(images, rng, name)

        apply.protocol = name  # type: ignore[attr-defined]
        return apply

    def settings_json(self) -> dict:
        return _settings_json(self.settings)

    def _header(self, clean: ImageDataset) -> dict:
        names = clean.class_names
        target = self.target_class
        return {
            "schema": GROUND_TRUTH_SCHEMA,
            "attack": self.name,
            "settings": self.settings_json(),
            "target_class": target,
            "target_name": names[target] if 0 <= target < len(names) else str(target),
            "clean": {"size": len(clean), "describe": clean.describe()},
        }


def _check_batch(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
        raise NaviewerError(f"test images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    return images


def target_indices(clean: ImageDataset, target: int) -> np.ndarray:
    """Indices of the target class; NaviewerError for an unknown or empty class."""
    labels = np.asarray(clean.labels)
    names = clean.class_names
    if target < 0 or (names and target >= len(names)):
        raise NaviewerError(f"target class {target} is not a class of this dataset ({len(names)} classes)")
    idx = np.flatnonzero(labels == target)
    if len(idx) == 0 and not (labels >= 0).any():  # "no images of the target class 0" read as a missing class
        raise NaviewerError("the dataset has no class labels; crafting needs labelled images (a file list with "
                            "'path label' lines, or one folder a class)")
    if len(idx) == 0:
        raise NaviewerError(f"the dataset has no images of the target class {target}; crafting needs labelled target images")
    if len(idx) == int((labels >= 0).sum()):  # accepted with exit 0, an ASR with nothing to measure on (a sweep)
        raise NaviewerError(f"every labelled image is of the target class {target}: an attack's success is measured on "
                            "images of the other classes, and there are none; give a dataset of two classes or more")
    return idx


class TargetShortfall(NaviewerError):
    """More target-class images asked for (poisons, references) than the attack was given: a workspace adds how
    many of that class went to the DIFT anchors first (typed, not matched by its words)."""


def resolve_target(value: Any, class_names: Sequence[str], where: Any = None) -> Any:
    """A target class given by its index or by its name (exact, else ignoring case): ``--target dog`` was argparse's
    "invalid int value" while the window looked the names up (a bad-input corpus, session 23). None stays None."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        pass
    names = [str(n) for n in class_names or []]
    found = [i for i, n in enumerate(names) if n == text] or [i for i, n in enumerate(names) if n.lower() == text.lower()]
    if len(found) == 1:
        return found[0]
    listed = ", ".join(f"{n}={i}" for i, n in enumerate(names[:12])) + (", ..." if len(names) > 12 else "")
    raise NaviewerError(f"target class {text!r} is not one of the dataset's classes" +
                        (f" ({listed}); give its name or its number" if names else " (it has no class names: give "
                         "the class number)"), where)


def sample_ref(clean: ImageDataset, index: int) -> dict:
    return {"id": int(index), "key": clean.source_key(int(index))}


def clean_record(clean: ImageDataset, index: int) -> dict:
    return {"kind": "clean", "source": int(index), "source_key": clean.source_key(int(index))}


def in_place_selection(attack: Attack, clean: ImageDataset, label: str) -> tuple[np.ndarray, int]:
    """(target-class candidates, #poisons) for an attack whose poisons replace target images in place.

    Shared by patch and CTRL so the count rule and its error stay one rule: ``num_poisons`` wins,
    else ``rate`` of the training set; more poisons than target images is a user error.
    """
    s = attack.settings
    candidates = target_indices(clean, s.target)
    count = s.num_poisons if s.num_poisons is not None else count_from_rate(s.rate, len(clean), added=False)
    if count > len(candidates):
        fewer = "ask for fewer poisons" if s.num_poisons is not None else "lower the rate"
        raise TargetShortfall(
            f"{count} {label} poisons requested but the target class has only {len(candidates)} images; {fewer}"
        )
    return candidates, count


def in_place_record(attack: Attack, clean: ImageDataset, index: int, trigger: dict, layout: dict) -> dict:
    """The ground-truth record of one in-place poison (its source is also its target image)."""
    return {
        "kind": "poison",
        "attack": attack.name,
        "source": int(index),
        "source_key": clean.source_key(index),
        "sources": {"target_image": sample_ref(clean, index)},
        "trigger": trigger,
        "layout": layout,
    }


def in_place_result(
    attack: Attack,
    clean: ImageDataset,
    poisoned: dict[int, np.ndarray],
    records: dict[int, dict],
    extra: dict,
) -> CraftResult:
    """A crafted set where each poison replaces its clean source in place (patch, CTRL)."""
    n = len(clean)
    sources = np.arange(n, dtype=np.int64)
    keys = {i: f"poison/{attack.name}/{clean.source_key(i)}" for i in poisoned}
    dataset = CraftedDataset(clean, sources, poisoned, np.asarray(clean.labels).copy(), keys, attack.name)
    samples = []
    for i in range(n):
        rec = records.get(i)
        samples.append(rec if rec is not None else clean_record(clean, i))
    gt = attack._header(clean)
    gt.update(extra)
    gt.update({"size": n, "num_poisons": len(poisoned), "poison_rate": len(poisoned) / max(n, 1), "removed": [], "samples": samples})
    return CraftResult(dataset, gt)


def appended_result(
    attack: Attack,
    clean: ImageDataset,
    poisons: Sequence[np.ndarray],
    poison_records: Sequence[dict],
    removed: Sequence[int],
    extra: dict,
) -> CraftResult:
    """A crafted set = clean minus ``removed``, in clean order, then the poisons (NA, CorruptEncoder)."""
    n = len(clean)
    keep = np.ones(n, dtype=bool)
    removed_arr = np.unique(np.asarray(list(removed), dtype=np.int64))
    keep[removed_arr] = False
    kept = np.flatnonzero(keep)
    sources = np.concatenate([kept, np.full(len(poisons), -1, dtype=np.int64)])
    base = len(kept)
    held = {base + k: img for k, img in enumerate(poisons)}
    keys = {base + k: f"poison/{attack.name}/{k:06d}" for k in range(len(poisons))}
    labels = np.concatenate([np.asarray(clean.labels)[kept], np.full(len(poisons), attack.target_class, dtype=np.int64)])
    dataset = CraftedDataset(clean, sources, held, labels, keys, attack.name)
    samples = [clean_record(clean, int(i)) for i in kept]
    for k, rec in enumerate(poison_records):
        samples.append(dict(rec, poison_key=keys[base + k]))
    total = len(sources)
    gt = attack._header(clean)
    gt.update(extra)
    gt.update(
        {
            "size": total,
            "num_poisons": len(poisons),
            "poison_rate": len(poisons) / max(total, 1),
            "removed": [sample_ref(clean, int(i)) for i in removed_arr],
            "samples": samples,
        }
    )
    return CraftResult(dataset, gt)


def count_from_rate(rate: float, base: int, added: bool) -> int:
    """#poisons so that #poisons / #total pre-training images == rate.

    ``added``: poisons are added to ``base`` clean images (total = base + P); otherwise they replace
    clean images one for one (total = base).
    """
    if added:
        return int(round(rate * base / (1.0 - rate)))
    return int(round(rate * base))


# -- registry -------------------------------------------------------------------------------

#: name -> attack class. Filled by ``@register_attack`` in each attack module, all of which the package
#: ``naviewer/attacks/__init__.py`` imports; Python runs that ``__init__`` before this module whenever
#: anything imports ``naviewer.attacks.base``, so the registry is full before any caller can reach it
#: (and this module never imports the package back: no import cycle, see tools/import_cycles.py).
ATTACKS: dict[str, Callable[..., Attack]] = {}


def register_attack(cls: type) -> type:
    ATTACKS[cls.name] = cls
    return cls


def attack_key(name: str) -> str:
    """The registry name an attack is known by (``Noisy-Alignment`` and ``NA`` are both ``na``)."""
    key = name.strip().lower().replace("-", "").replace("_", "")
    aliases = {"noisyalignment": "na", "sslbkd": "patch", "sslbackdoor": "patch", "ce": "corruptencoder"}
    return aliases.get(key, key)


def make_attack(name: str, **settings: Any) -> Attack:
    """An attack by registry name (``na``, ``patch``, ``ctrl``, ``corruptencoder``) with its settings."""
    key = attack_key(name)
    if key not in ATTACKS:
        raise NaviewerError(f"unknown attack {name!r}; choose one of {', '.join(sorted(ATTACKS))}")
    settings = {k: v for k, v in settings.items() if v is not None}
    return ATTACKS[key](**settings)


def settings_fields(name: str) -> list[dataclasses.Field]:
    """The typed settings of an attack (for forms and CLI help)."""
    return list(dataclasses.fields(ATTACKS[name].Settings))


__all__ = [
    "ATTACKS",
    "Attack",
    "CraftResult",
    "CraftedDataset",
    "IMAGENET_MEAN_RGB",
    "PatchTriggerSettings",
    "PoisonSettings",
    "make_attack",
    "poison_mask",
    "register_attack",
    "settings_fields",
]


def map_in_batches(
    clean: ImageDataset,
    indices: np.ndarray,
    fn: Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, list[dict]]],
    rng: np.random.Generator,
    ctx: JobContext,
    message: str,
    batch: int = 256,
) -> dict[int, tuple[np.ndarray, dict]]:
    """Apply a batched image function to ``clean`` images at ``indices``, grouped by size.

    ``fn(images (n, H, W, 3), rng) -> (new images, n per-image info dicts)``. Returns
    {clean index: (new image, info)}. Reports progress and honours cancel between batches; the
    order of ``rng`` draws depends only on ``indices`` and the image sizes (deterministic).
    """
    out: dict[int, tuple[np.ndarray, dict]] = {}
    total = len(indices)
    ctx.progress(0, total, message)
    for start in range(0, total, batch):
        ctx.check()
        chunk = [int(i) for i in indices[start : start + batch]]
        groups: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = {}
        for i in chunk:
            image = np.asarray(clean.image(i), dtype=np.uint8)
            groups.setdefault(image.shape, []).append((i, image))
        for shape in sorted(groups):
            items = groups[shape]
            try:
                result, infos = fn(np.stack([img for _, img in items]), rng)
            except NaviewerError as exc:
                if exc.path is not None:
                    raise
                # "a 4 px trigger does not fit in a 1 px image" named no image (a bad-input probe, session 30)
                many = f" (and {len(items) - 1} more of that size)" if len(items) > 1 else ""
                advice = ("; leave such images out of the clean set, or choose a smaller trigger"
                          if "does not fit" in exc.message else "")  # (an opacity or a setting: no size advice)
                raise NaviewerError(f"{exc.message}: the chosen image is {shape[1]}x{shape[0]} px{many}{advice}",
                                    clean.source_key(items[0][0])) from None
            for (i, _), img, info in zip(items, result, infos):
                out[i] = (img, info)
        ctx.progress(min(start + batch, total), total, message)
    return out
