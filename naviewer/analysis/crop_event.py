"""The Noisy Alignment crop event of a composite layout, for the crop-layout view.

The probability itself is ``naviewer.attacks.layout.na_event_probability`` (the attacks module's
Monte-Carlo estimate over the training crop sampler ``naviewer.data.crops.sample_crop_boxes``); this
module adds the slider-friendly parameter set (:class:`CropLayout`), a small sample of concrete crop
pairs for drawing (classified by the same ``na_view_tests``), and the reconstruction of a crafted
sample's layout from its ground-truth record. The view
shows exactly :func:`estimate_event_probability` (tested), so what the analyst sees is what the
encoder saw.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional

import numpy as np

from naviewer.attacks.layout import ORIENTATIONS, Layout, na_event_probability, na_layout, na_view_tests
from naviewer.data.crops import DEFAULT_RATIO, DEFAULT_SCALE, CropBoxes, as_generator, sample_crop_boxes
from naviewer.errors import NaviewerError


@dataclass(frozen=True)
class CropLayout:
    """Slider parameters of an NA composite: two ``size`` px halves ``gap`` px apart, a ``trigger`` square."""

    size: int = 32
    gap: int = 0
    trigger: int = 8
    trigger_x: float = 0.5  # trigger centre as a fraction of the shadow image width (0 = left edge)
    trigger_y: float = 0.5
    orientation: str = "ref-left"
    extra_height: int = 0
    scale: tuple[float, float] = DEFAULT_SCALE
    ratio: tuple[float, float] = DEFAULT_RATIO

    def __post_init__(self) -> None:
        if self.orientation not in ORIENTATIONS:
            raise NaviewerError(f"unknown orientation {self.orientation!r}; expected one of {', '.join(ORIENTATIONS)}")
        if self.size < 2 or self.gap < 0 or self.extra_height < 0 or not (1 <= self.trigger <= self.size):
            raise NaviewerError(f"bad layout: size {self.size}, gap {self.gap}, trigger {self.trigger}")
        if not (0 < self.scale[0] <= self.scale[1] <= 1.0):
            raise NaviewerError(f"crop scale range {self.scale} must satisfy 0 < low <= high <= 1")

    def with_(self, **changes: Any) -> "CropLayout":
        return replace(self, **changes)

    @property
    def trigger_position(self) -> tuple[int, int]:
        """Top-left of the trigger inside the shadow image, clamped so it fits."""
        t, r = self.trigger, self.size
        ty = int(np.clip(round(self.trigger_y * r - t / 2), 0, r - t))
        tx = int(np.clip(round(self.trigger_x * r - t / 2), 0, r - t))
        return ty, tx

    def to_layout(self) -> Layout:
        return na_layout(self.size, self.trigger, self.trigger_position, self.gap, self.extra_height, self.orientation)

    @classmethod
    def from_layout(cls, layout: Layout, **kwargs: Any) -> "CropLayout":
        """Slider parameters of a crafted sample's layout (as recorded in its ground truth)."""
        ref, shadow, trig = (layout.regions.get(k) for k in ("reference", "shadow", "trigger"))
        if ref is None or shadow is None or trig is None:
            raise NaviewerError("the layout has no reference/shadow/trigger regions")
        size = int(min(shadow.height, shadow.width))
        horizontal = shadow.top == ref.top
        gap = int(abs(shadow.left - ref.left) - size) if horizontal else int(abs(shadow.top - ref.top) - size)
        extra = int(layout.height - size) if horizontal else int(layout.width - size)
        orientation = layout.orientation if layout.orientation in ORIENTATIONS else (
            ("ref-left" if ref.left < shadow.left else "ref-right") if horizontal else ("ref-top" if ref.top < shadow.top else "ref-bottom")
        )
        t = int(max(1, min(trig.height, trig.width, size)))
        return cls(
            size=size, gap=max(gap, 0), trigger=t,
            trigger_x=((trig.left - shadow.left) + t / 2) / size, trigger_y=((trig.top - shadow.top) + t / 2) / size,
            orientation=orientation, extra_height=max(extra, 0), **kwargs,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "size": self.size, "gap": self.gap, "trigger": self.trigger, "trigger_x": self.trigger_x, "trigger_y": self.trigger_y,
            "orientation": self.orientation, "extra_height": self.extra_height, "scale": list(self.scale), "ratio": list(self.ratio),
        }


@dataclass(frozen=True)
class NAEstimate:
    """P(NA event) per pair of views with its parts (per single view)."""

    probability: float
    stderr: float
    p_reference: float  # P(a view lies inside the reference image)
    p_shadow_trigger: float  # P(a view lies inside the shadow image and covers the trigger)
    n_pairs: int


def estimate_event_probability(
    layout: CropLayout | Layout,
    n_pairs: int = 20_000,
    seed: Optional[int] = 0,
    scale: Optional[tuple[float, float]] = None,
    ratio: Optional[tuple[float, float]] = None,
) -> NAEstimate:
    """The NA event probability of ``layout`` (the attacks module's Monte-Carlo estimate, seeded)."""
    if n_pairs < 1:
        raise NaviewerError(f"n_pairs must be positive, got {n_pairs}")
    if isinstance(layout, CropLayout):
        scale = scale or layout.scale
        ratio = ratio or layout.ratio
        layout = layout.to_layout()
    est = na_event_probability(layout, pairs=n_pairs, rng=seed, scale=scale or DEFAULT_SCALE, ratio=ratio or DEFAULT_RATIO)
    return NAEstimate(
        probability=est.event.value,
        stderr=est.event.se,
        p_reference=est.parts["view_in_reference"].value,
        p_shadow_trigger=est.parts["view_in_shadow_with_trigger"].value,
        n_pairs=est.pairs,
    )


@dataclass(frozen=True)
class CropPairs:
    """Concrete view pairs for drawing: ``event[i]`` says whether pair i is a noisy-alignment pair."""

    view1: CropBoxes
    view2: CropBoxes
    event: np.ndarray

    def __len__(self) -> int:
        return len(self.event)


def sample_pairs(
    layout: CropLayout | Layout,
    n_pairs: int,
    rng: np.random.Generator | int | None = None,
    scale: Optional[tuple[float, float]] = None,
    ratio: Optional[tuple[float, float]] = None,
) -> CropPairs:
    """``n_pairs`` pairs of RandomResizedCrop views drawn by the training sampler, classified by the NA event."""
    if isinstance(layout, CropLayout):
        scale = scale or layout.scale
        ratio = ratio or layout.ratio
        layout = layout.to_layout()
    boxes = sample_crop_boxes(layout.height, layout.width, as_generator(rng), n=2 * n_pairs, scale=scale or DEFAULT_SCALE, ratio=ratio or DEFAULT_RATIO)
    v1, v2 = boxes.split(n_pairs)
    in_shadow_with_trigger, in_reference = na_view_tests(layout)
    event = (in_shadow_with_trigger(v1) & in_reference(v2)) | (in_shadow_with_trigger(v2) & in_reference(v1))
    return CropPairs(v1, v2, event)


def layout_of_record(record: Optional[dict], height: int, width: int) -> Optional[Layout]:
    """The layout a ground-truth record gives a crafted sample (``record["layout"]``), else None."""
    if not record or not isinstance(record.get("layout"), dict):
        return None
    try:
        layout = Layout.from_json(record["layout"])
    except (KeyError, TypeError, ValueError):
        return None
    if (layout.height, layout.width) != (height, width):
        return None
    return layout if {"reference", "shadow", "trigger"} <= layout.regions.keys() else None


def guess_orientation(image: np.ndarray) -> tuple[str, float]:
    """Which half of a two-image composite holds the trigger, guessed from the image alone (no ground
    truth): the half with more edge energy (a trigger is a small high-contrast patch). Returns the
    orientation (where the *reference* half sits: ``ref-left`` means the trigger is on the right)
    and a 0..1 confidence (how lopsided the energy is; near 0: no idea, it is a template).

    The energy is summed over the colour channels, not taken on the grey image: averaging a colourful trigger's
    channels flattened it, and the demo's own composites were guessed wrong 97 times in 113 (the reference "0"
    had the stronger grey edges); per channel 111 of 113, and 82 of 100 NA composites on CIFAR (grey: 73)."""
    image = np.asarray(image, dtype=np.float64)
    channels = image if image.ndim == 3 else image[..., None]
    h, w = channels.shape[:2]
    energy = (np.abs(np.diff(channels, axis=0))[:, :-1] + np.abs(np.diff(channels, axis=1))[:-1, :]).sum(axis=2)
    if w >= h:
        half = energy.shape[1] // 2
        first, second = energy[:, :half].sum(), energy[:, half:].sum()
        names = ("ref-right", "ref-left")   # trigger in the first (left) half -> reference on the right
    else:
        half = energy.shape[0] // 2
        first, second = energy[:half].sum(), energy[half:].sum()
        names = ("ref-bottom", "ref-top")
    total = first + second
    if total <= 0:
        return names[1], 0.0
    return (names[0] if first > second else names[1]), float(abs(first - second) / total)


def guess_trigger(image: np.ndarray, orientation: str, size: int, gap: int = 0) -> tuple[int, float, float, float]:
    """The trigger square in a composite's shadow half, guessed from the image alone: (side in px, centre x and y as
    fractions of the half, a 0..1 confidence). A trigger is a small patch of strong edges: the square whose mean edge
    energy stands furthest above the rest of the half's is taken, over every side from 2 px to half the image and
    every position (integral images). On a half with no patch the answer is a guess and the confidence low.

    The template assumed the paper's side, a quarter of the image: on the demo's 8 px triggers in 16 px digits its
    box covered the middle 4 px only (a newcomer, session 26)."""
    image = np.asarray(image, dtype=np.float64)
    channels = image if image.ndim == 3 else image[..., None]
    r = int(size)
    if orientation in ("ref-left", "ref-right"):
        x0 = r + gap if orientation == "ref-left" else 0
        half = channels[:r, x0:x0 + r]
    else:
        y0 = r + gap if orientation == "ref-top" else 0
        half = channels[y0:y0 + r, :r]
    if half.shape[0] < 4 or half.shape[1] < 4:
        return max(1, r // 4), 0.5, 0.5, 0.0
    energy = np.zeros(half.shape[:2])  # each step between two pixels counts half to each (a patch's own border too)
    for axis in (0, 1):
        step = np.abs(np.diff(half, axis=axis)).sum(axis=2) / 2.0
        lead = (slice(None, -1), slice(None)) if axis == 0 else (slice(None), slice(None, -1))
        tail = (slice(1, None), slice(None)) if axis == 0 else (slice(None), slice(1, None))
        energy[lead] += step
        energy[tail] += step
    h, w = energy.shape
    background, peak = float(np.median(energy)), float(np.percentile(energy, 99))
    if peak <= background:
        return max(1, r // 4), 0.5, 0.5, 0.0
    # the square holding the most energy above a level halfway from the half's typical pixel to its strongest: it
    # grows while the pixels it takes in are a patch's, and stops at the patch's edge
    level = background + 0.5 * (peak - background)
    excess = energy - level
    integral = np.zeros((h + 1, w + 1))
    integral[1:, 1:] = excess.cumsum(0).cumsum(1)
    best = (-np.inf, max(1, r // 4), 0, 0)
    for t in range(2, max(3, min(h, w) // 2 + 1)):
        inside = integral[t:, t:] - integral[:-t, t:] - integral[t:, :-t] + integral[:-t, :-t]
        y, x = np.unravel_index(int(np.argmax(inside)), inside.shape)
        if inside[y, x] > best[0]:
            best = (float(inside[y, x]), t, int(y), int(x))
    score, t, y, x = best
    # how far the square's pixels stand above the rest of the half: near 0 on a half without a patch
    inner = energy[y:y + t, x:x + t].mean()
    outer = (energy.sum() - energy[y:y + t, x:x + t].sum()) / max(1, h * w - t * t)
    confidence = float(np.clip((inner - outer) / (inner + 1e-12), 0.0, 1.0)) if score > 0 else 0.0
    return t, (x + t / 2) / r, (y + t / 2) / r, confidence

