"""CorruptEncoder (Zhang et al., CVPR'24): a reference object at one side of a background twice its
width, the trigger in the other part, so that one crop holding the object and another holding the
trigger become a positive pair.

Adaptations (documented choices, not the paper's data):

* No object masks: the whole reference image is the object (CIFAR images are mostly object);
  it spans the full height, so it is pasted as a rectangle (no soft mask edge).
* Backgrounds are random non-target training images (the paper uses Places365 scenes), scaled up to
  cover the poison and cropped bottom-aligned at a random horizontal offset, as the code does.
* References are ``num_references`` (default 3, as in the paper) random target-class images; they
  stay in the clean set. Poisons are ADDED, so ``rate`` = #poisons / (N + #poisons).

Layout per poison (the released code's ``generate_poisoned_images.py``): object width o_w = min(w, ``max_object_width``), poison
p_w = ``area_ratio`` * o_w by p_h = o_h; object left (o_x ~ U[0, 0.05 p_w]) or right with probability
1/2; trigger x in the free part with 0.125 p_w margins, y in [0.25 p_h, 0.75 p_h - t].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from naviewer.attacks.base import (
    Attack,
    CraftResult,
    PatchTriggerSettings,
    appended_result,
    count_from_rate,
    register_attack,
    sample_ref,
    target_indices,
)
from naviewer.attacks.layout import Layout, corruptencoder_trigger_range
from naviewer.attacks.noisy_alignment import resize
from naviewer.attacks.triggers import paste_trigger
from naviewer.data.base import ImageDataset
from naviewer.data.crops import Box
from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context


@dataclass(frozen=True)
class CorruptEncoderSettings(PatchTriggerSettings):
    """``rate`` = #poisons / #pre-training images (poisons are added)."""

    num_references: int = 3
    area_ratio: float = 2.0
    max_object_width: int = 400


@register_attack
class CorruptEncoderAttack(Attack):
    name = "corruptencoder"
    Settings = CorruptEncoderSettings
    test_protocols = {
        **Attack.test_protocols,
        "paper": "CorruptEncoder's evaluation: opaque trigger at a uniform top-left in [0.25 W, 0.75 W - w]",
    }
    paper_band = (0.25, 0.75, 1.0)

    def validate(self) -> None:
        super().validate()
        s = self.settings
        if s.area_ratio <= 1.0:
            raise NaviewerError(f"area_ratio must be > 1 (background wider than the object), got {s.area_ratio}")
        if s.num_references < 1 or s.max_object_width < 1:
            raise NaviewerError("num_references and max_object_width must be at least 1")

    def compose(
        self, reference: np.ndarray, background: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, Layout]:
        s = self.settings
        trig = self.trigger
        h, w = reference.shape[:2]
        o_w = min(w, s.max_object_width)
        o_h = max(1, int(round(h * o_w / w)))
        obj = resize(reference, o_h, o_w)
        p_h, p_w = o_h, int(round(s.area_ratio * o_w))
        if trig.size[0] > p_h or trig.size[1] > p_w - o_w:
            raise NaviewerError(f"a {trig.size[1]} px trigger does not fit beside a {o_w}x{o_h} object")
        bh, bw = background.shape[:2]
        f = max(p_w / bw, p_h / bh)
        if f > 1:
            bh, bw = max(p_h, math.ceil(bh * f)), max(p_w, math.ceil(bw * f))
            background = resize(background, bh, bw)
        x0 = int(rng.integers(0, bw - p_w + 1))
        canvas = background[bh - p_h : bh, x0 : x0 + p_w].copy()
        side = "left" if rng.random() < 0.5 else "right"
        slack = int(0.05 * p_w)
        if side == "left":
            o_x = int(rng.integers(0, slack + 1))
        else:
            o_x = int(rng.integers(p_w - o_w - slack, p_w - o_w + 1))
        o_x = min(max(o_x, 0), p_w - o_w)
        canvas[:, o_x : o_x + o_w] = obj
        lo_x, hi_x = corruptencoder_trigger_range(p_w, o_w, o_x, trig.size[1], side)
        lo_y = int(0.25 * p_h)
        hi_y = min(max(int(0.75 * p_h) - trig.size[0], lo_y), p_h - trig.size[0])
        lo_y = min(lo_y, hi_y)
        tx = int(rng.integers(lo_x, hi_x + 1))
        ty = int(rng.integers(lo_y, hi_y + 1))
        canvas = paste_trigger(canvas[None], trig, ty, tx, s.opacity)[0]
        regions = {
            "background": Box(0, 0, p_h, p_w),
            "object": Box(0, o_x, p_h, o_w),
            "trigger": Box(ty, tx, trig.size[0], trig.size[1]),
        }
        return canvas, Layout(p_h, p_w, regions, f"object-{side}")

    def craft(self, clean: ImageDataset, rng: np.random.Generator, ctx: Optional[JobContext] = None) -> CraftResult:
        ctx = ensure_context(ctx)
        s = self.settings
        targets = target_indices(clean, s.target)
        if s.num_references > len(targets):
            from naviewer.attacks.base import TargetShortfall

            raise TargetShortfall(f"{s.num_references} references requested but the target class has only "
                                  f"{len(targets)} images; set fewer num_references")
        count = s.num_poisons if s.num_poisons is not None else count_from_rate(s.rate, len(clean), added=True)
        if count < 1:
            raise NaviewerError(f"the rate {s.rate} gives no poisons for {len(clean)} images")
        pool = np.flatnonzero(np.asarray(clean.labels) != s.target)
        if len(pool) == 0:
            raise NaviewerError("no background images available (every image is of the target class)")
        refs = np.sort(rng.choice(targets, size=s.num_references, replace=False))
        ref_per_poison = refs[rng.integers(0, len(refs), size=count)]
        bg_per_poison = pool[rng.integers(0, len(pool), size=count)]
        trig = self.trigger
        ref_images = {int(i): np.asarray(clean.image(int(i)), dtype=np.uint8) for i in refs}
        poisons, records = [], []
        message = "crafting CorruptEncoder poisons"
        ctx.progress(0, count, message)
        for k in range(count):
            if k % 64 == 0:
                ctx.check()
            ref, bg = int(ref_per_poison[k]), int(bg_per_poison[k])
            canvas, layout = self.compose(ref_images[ref], np.asarray(clean.image(bg), dtype=np.uint8), rng)
            poisons.append(canvas)
            records.append(
                {
                    "kind": "poison",
                    "attack": self.name,
                    "sources": {"reference": sample_ref(clean, ref), "background": sample_ref(clean, bg)},
                    "trigger": {"name": trig.name, "box": layout.regions["trigger"].as_list(), "opacity": s.opacity},
                    "layout": layout.to_json(),
                }
            )
            if (k + 1) % 64 == 0 or k + 1 == count:
                ctx.progress(k + 1, count, message)
        extra = {"trigger": trig.describe(), "references": [sample_ref(clean, int(i)) for i in refs]}
        return appended_result(self, clean, poisons, records, [], extra)
