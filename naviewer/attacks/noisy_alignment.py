"""Noisy Alignment (Chen et al., ICCV'25): a triggered shadow image joined edge to edge with a
target-class reference image, so that two random crops of the composite often form the malicious
positive pair (trigger view, reference view).

Two layouts:

* ``paper`` (Theorems 1-2): both images resized to r x r (r = ``resolution`` or, per pair, the
  longer side of the larger-area image), a 2r x r (or r x 2r) canvas, the trigger exactly centred in
  the shadow image. An optional ``gap`` (fraction of r, filled with ``gap_color``) is for ablations.
* ``code`` (the released ``utils.py``): the trigger is pasted on the raw shadow image at top-left
  ``randint(int(0.45 W), max(int(0.55 W - w), int(0.45 W)))`` (same for y); if one image has more
  than twice the other's area the smaller one is scaled up by sqrt(area ratio); the shared side is
  matched by resizing both to the smaller one (anisotropic); no padding. ``gap`` is a fraction of
  the shared side.

Per poison one of the four orientations is drawn uniformly (or fixed by ``orientation``).
Reference images are real target-class training images and are REMOVED from the clean set (the
poisons replace them, as in the authors' toolbox); by default #references = #poisons and
#poisons = ``rate`` * N, so the poison rate is #poisons / #pre-training images. Shadow images are
drawn from non-target images (the toolbox does not say; excluding the target is the sensible
default), cycling through a shuffled pool of ``shadow_pool`` distinct images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from naviewer.attacks.base import (
    IMAGENET_MEAN_RGB,
    Attack,
    CraftResult,
    PatchTriggerSettings,
    TargetShortfall,
    appended_result,
    count_from_rate,
    register_attack,
    sample_ref,
    target_indices,
)
from naviewer.attacks.layout import ORIENTATIONS, Layout
from naviewer.attacks.triggers import paste_trigger, random_corners
from naviewer.data.base import ImageDataset
from naviewer.data.crops import Box
from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context

#: the released code's choice index -> our orientation name (img1 = shadow, img2 = reference)
CODE_CHOICES = ("ref-bottom", "ref-right", "ref-top", "ref-left")


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Lanczos resize of a uint8 (H, W, 3) image (no-op at the same size)."""
    if image.shape[0] == height and image.shape[1] == width:
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((int(width), int(height)), Image.LANCZOS))


@dataclass(frozen=True)
class NASettings(PatchTriggerSettings):
    """Noisy Alignment recipe. Defaults are the CIFAR-10 ones of the authors' toolbox."""

    num_references: Optional[int] = None
    shadow_pool: Optional[int] = None
    shadow_include_target: bool = False
    layout: str = "paper"
    resolution: Optional[int] = None
    orientation: str = "random"
    gap: float = 0.0
    gap_color: tuple = IMAGENET_MEAN_RGB
    loc_min: float = 0.45
    loc_max: float = 0.55


@register_attack
class NoisyAlignmentAttack(Attack):
    name = "na"
    Settings = NASettings
    test_protocols = {
        **Attack.test_protocols,
        "code": "the released code's watermark rule: top-left randint(int(0.45 W), max(int(0.55 W - w), int(0.45 W))) "
                "(loc_min/loc_max), trigger blended at 80 % opacity (utils.py's default alpha 0.2 keeps 20 % of the base)",
        "paper": "the trigger opaque and exactly centred (the paper's Theorem 1 setting)",
    }
    #: the released code's patch-mode alpha 0.2 = the fraction of the base image kept under the trigger
    CODE_TEST_OPACITY = 0.8

    def _test_trigger(self, images: np.ndarray, rng: np.random.Generator, protocol: str) -> np.ndarray:
        s = self.settings
        trig = self.trigger
        n, height, width = images.shape[:3]
        if protocol == "code":
            tops = random_corners(rng, n, height, trig.size[0], s.loc_min, s.loc_max)
            lefts = random_corners(rng, n, width, trig.size[1], s.loc_min, s.loc_max)
            return paste_trigger(images, trig, tops, lefts, opacity=self.CODE_TEST_OPACITY)
        if protocol == "paper":
            top, left = max(0, (height - trig.size[0]) // 2), max(0, (width - trig.size[1]) // 2)
            return paste_trigger(images, trig, np.full(n, top), np.full(n, left), opacity=1.0)
        return super()._test_trigger(images, rng, protocol)

    def validate(self) -> None:
        super().validate()
        s = self.settings
        if s.layout not in ("paper", "code"):
            raise NaviewerError(f"NA layout must be 'paper' or 'code', got {s.layout!r}")
        if s.orientation != "random" and s.orientation not in ORIENTATIONS:
            raise NaviewerError(f"NA orientation must be 'random' or one of {', '.join(ORIENTATIONS)}")
        if s.gap < 0:
            raise NaviewerError(f"gap must be >= 0, got {s.gap}")
        if len(s.gap_color) != 3 or not all(0 <= int(c) <= 255 for c in s.gap_color):
            raise NaviewerError(f"gap colour must be three values in 0..255, got {s.gap_color}")
        object.__setattr__(s, "gap_color", tuple(int(c) for c in s.gap_color))
        for name in ("num_poisons", "num_references", "shadow_pool", "resolution"):
            value = getattr(s, name)
            if value is not None and value < 1:
                raise NaviewerError(f"{name} must be at least 1, got {value}")

    # -- selection ------------------------------------------------------------------------
    def _plan(self, clean: ImageDataset, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(reference per poison, shadow per poison, distinct references removed)."""
        s = self.settings
        targets = target_indices(clean, s.target)
        n = len(clean)
        if s.num_poisons is not None:
            count = s.num_poisons
            n_refs = s.num_references if s.num_references is not None else count
        elif s.num_references is None:
            count = count_from_rate(s.rate, n, added=False)
            n_refs = count
        else:
            n_refs = s.num_references
            count = count_from_rate(s.rate, n - n_refs, added=True)
        if count < 1:
            raise NaviewerError(f"the rate {s.rate} gives no poisons for {n} images")
        if n_refs > len(targets):
            fewer = "ask for fewer poisons" if s.num_poisons is not None else "lower the rate"
            raise TargetShortfall(
                f"{n_refs} reference images needed but the target class has only {len(targets)}; "
                f"{fewer} or set num_references (fewer references, each reused)"
            )
        refs = rng.choice(targets, size=n_refs, replace=False)
        ref_per_poison = np.resize(rng.permutation(refs), count)
        if s.shadow_include_target:
            pool = np.setdiff1d(np.arange(n), refs)
        else:
            pool = np.flatnonzero(np.asarray(clean.labels) != s.target)
        if len(pool) == 0:
            raise NaviewerError("no shadow images available (every image is of the target class)")
        if s.shadow_pool is not None:
            pool = rng.choice(pool, size=min(s.shadow_pool, len(pool)), replace=False)
        shadow_per_poison = np.resize(rng.permutation(pool), count)
        return ref_per_poison, shadow_per_poison, np.sort(refs)

    # -- composites -----------------------------------------------------------------------
    def compose_paper(
        self, shadow: np.ndarray, reference: np.ndarray, orientation: str
    ) -> tuple[np.ndarray, Layout]:
        """Theorem 1-2 composite: both r x r, trigger centred in the shadow, optional gap."""
        s = self.settings
        if s.resolution is not None:
            r = s.resolution
        else:
            larger = shadow if shadow.shape[0] * shadow.shape[1] >= reference.shape[0] * reference.shape[1] else reference
            r = int(max(larger.shape[:2]))
        trig = self.trigger
        if trig.size[0] > r or trig.size[1] > r:
            raise NaviewerError(f"a {trig.size[1]} px trigger does not fit in {r} px images")
        gap = int(round(s.gap * r))
        shadow_r = resize(shadow, r, r)
        ty, tx = (r - trig.size[0]) // 2, (r - trig.size[1]) // 2
        shadow_r = paste_trigger(shadow_r[None], trig, ty, tx, s.opacity)[0]
        ref_r = resize(reference, r, r)
        horizontal = orientation in ("ref-left", "ref-right")
        ref_first = orientation in ("ref-left", "ref-top")
        first, second = (ref_r, shadow_r) if ref_first else (shadow_r, ref_r)
        return self._join(first, second, horizontal, gap, ref_first, Box(ty, tx, trig.size[0], trig.size[1]), orientation)

    def compose_code(
        self, shadow: np.ndarray, reference: np.ndarray, orientation: str, rng: np.random.Generator
    ) -> tuple[np.ndarray, Layout]:
        """The released-code composite: trigger near the centre of the raw shadow, area equalisation,
        anisotropic matching of the shared side, no padding (plus the optional gap)."""
        s = self.settings
        trig = self.trigger
        h1, w1 = shadow.shape[:2]
        if trig.size[0] > h1 or trig.size[1] > w1:
            raise NaviewerError(f"a {trig.size[1]} px trigger does not fit in a {w1}x{h1} shadow image")
        tx = int(random_corners(rng, 1, w1, trig.size[1], s.loc_min, s.loc_max)[0])
        ty = int(random_corners(rng, 1, h1, trig.size[0], s.loc_min, s.loc_max)[0])
        img1 = paste_trigger(shadow[None], trig, ty, tx, s.opacity)[0]
        img2 = reference
        trig_box = Box(ty, tx, trig.size[0], trig.size[1])
        # (a) area equalisation: scale the smaller image up when the areas differ by more than 2x
        a1, a2 = h1 * w1, img2.shape[0] * img2.shape[1]
        if a1 > 2 * a2:
            f = math.sqrt(a1 / a2)
            img2 = resize(img2, int(round(img2.shape[0] * f)), int(round(img2.shape[1] * f)))
        elif a2 > 2 * a1:
            f = math.sqrt(a2 / a1)
            nh, nw = int(round(h1 * f)), int(round(w1 * f))
            trig_box = trig_box.scaled(nh / img1.shape[0], nw / img1.shape[1])
            img1 = resize(img1, nh, nw)
        # (c) match the shared side (anisotropic)
        horizontal = orientation in ("ref-left", "ref-right")
        if horizontal:
            side = min(img1.shape[0], img2.shape[0])
            new1 = (side, img1.shape[1])
            img2 = resize(img2, side, img2.shape[1])
        else:
            side = min(img1.shape[1], img2.shape[1])
            new1 = (img1.shape[0], side)
            img2 = resize(img2, img2.shape[0], side)
        trig_box = trig_box.scaled(new1[0] / img1.shape[0], new1[1] / img1.shape[1])
        img1 = resize(img1, *new1)
        gap = int(round(s.gap * side))
        ref_first = orientation in ("ref-left", "ref-top")
        first, second = (img2, img1) if ref_first else (img1, img2)
        return self._join(first, second, horizontal, gap, ref_first, trig_box, orientation)

    def _join(
        self,
        first: np.ndarray,
        second: np.ndarray,
        horizontal: bool,
        gap: int,
        ref_first: bool,
        trig_in_shadow: Box,
        orientation: str,
    ) -> tuple[np.ndarray, Layout]:
        color = np.asarray(self.settings.gap_color, dtype=np.uint8)
        if horizontal:
            height = first.shape[0]
            width = first.shape[1] + gap + second.shape[1]
            box1 = Box(0, 0, height, first.shape[1])
            box2 = Box(0, first.shape[1] + gap, height, second.shape[1])
            gap_box = Box(0, first.shape[1], height, gap)
        else:
            width = first.shape[1]
            height = first.shape[0] + gap + second.shape[0]
            box1 = Box(0, 0, first.shape[0], width)
            box2 = Box(first.shape[0] + gap, 0, second.shape[0], width)
            gap_box = Box(first.shape[0], 0, gap, width)
        canvas = np.empty((height, width, 3), dtype=np.uint8)
        canvas[...] = color
        canvas[box1.top : box1.bottom, box1.left : box1.right] = first
        canvas[box2.top : box2.bottom, box2.left : box2.right] = second
        ref_box, shadow_box = (box1, box2) if ref_first else (box2, box1)
        regions = {
            "reference": ref_box,
            "shadow": shadow_box,
            "trigger": trig_in_shadow.shifted(shadow_box.top, shadow_box.left),
        }
        if gap:
            regions["gap"] = gap_box
        return canvas, Layout(height, width, regions, orientation)

    # -- crafting -------------------------------------------------------------------------
    def craft(self, clean: ImageDataset, rng: np.random.Generator, ctx: Optional[JobContext] = None) -> CraftResult:
        ctx = ensure_context(ctx)
        s = self.settings
        refs, shadows, removed = self._plan(clean, rng)
        count = len(refs)
        if s.orientation == "random":
            orientations = [ORIENTATIONS[k] for k in rng.integers(0, 4, size=count)]
        else:
            orientations = [s.orientation] * count
        trig = self.trigger
        poisons: list[np.ndarray] = []
        records: list[dict] = []
        message = "crafting Noisy Alignment poisons"
        ctx.progress(0, count, message)
        for k in range(count):
            if k % 64 == 0:
                ctx.check()
            shadow = np.asarray(clean.image(int(shadows[k])), dtype=np.uint8)
            reference = np.asarray(clean.image(int(refs[k])), dtype=np.uint8)
            if s.layout == "paper":
                canvas, layout = self.compose_paper(shadow, reference, orientations[k])
            else:
                canvas, layout = self.compose_code(shadow, reference, orientations[k], rng)
            poisons.append(canvas)
            records.append(
                {
                    "kind": "poison",
                    "attack": self.name,
                    "sources": {"shadow": sample_ref(clean, int(shadows[k])), "reference": sample_ref(clean, int(refs[k]))},
                    "trigger": {"name": trig.name, "box": layout.regions["trigger"].as_list(), "opacity": s.opacity},
                    "layout": layout.to_json(),
                }
            )
            if (k + 1) % 64 == 0 or k + 1 == count:
                ctx.progress(k + 1, count, message)
        extra = {"trigger": trig.describe(), "layout_mode": s.layout, "distinct_shadows": int(len(np.unique(shadows)))}
        return appended_result(self, clean, poisons, records, removed, extra)
