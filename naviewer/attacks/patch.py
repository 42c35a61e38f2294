"""SSL-Backdoor (Saha et al., CVPR'22): an opaque trigger patch on target-class training images.

Poisons are target-class images chosen at random (without replacement), each with the trigger at a
uniformly random top-left in ``[int(0.25 W), int(0.75 W) - w]`` (same for y), at native resolution,
replacing the clean image in place (its label is kept; SSL ignores it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from naviewer.attacks.base import (
    Attack,
    CraftResult,
    PatchTriggerSettings,
    in_place_record,
    in_place_result,
    in_place_selection,
    map_in_batches,
    register_attack,
)
from naviewer.data.crops import Box
from naviewer.attacks.triggers import paste_trigger, random_corners
from naviewer.data.base import ImageDataset
from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context


@dataclass(frozen=True)
class PatchSettings(PatchTriggerSettings):
    """``rate`` = #poisons / #training images (ignored when ``num_poisons`` is set); the trigger's
    top-left is uniform in ``[loc_min W, loc_max W - w]``."""

    loc_min: float = 0.25
    loc_max: float = 0.75


@register_attack
class PatchAttack(Attack):
    name = "patch"
    Settings = PatchSettings
    test_protocols = {
        **Attack.test_protocols,
        "paper": "Saha et al.'s evaluation: opaque trigger at a uniform top-left in [0.10 W, 0.90 W - w]",
    }
    paper_band = (0.10, 0.90, 1.0)

    def validate(self) -> None:
        super().validate()
        s = self.settings
        if not 0.0 <= s.loc_min < s.loc_max <= 1.0:
            raise NaviewerError(f"patch location band must satisfy 0 <= loc_min < loc_max <= 1, got {s.loc_min}, {s.loc_max}")

    def craft(self, clean: ImageDataset, rng: np.random.Generator, ctx: Optional[JobContext] = None) -> CraftResult:
        ctx = ensure_context(ctx)
        s = self.settings
        candidates, count = in_place_selection(self, clean, "patch")
        chosen = np.sort(rng.choice(candidates, size=count, replace=False))
        trig = self.trigger

        def poison(batch: np.ndarray, gen: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
            n, height, width = batch.shape[:3]
            tops = random_corners(gen, n, height, trig.size[0], s.loc_min, s.loc_max)
            lefts = random_corners(gen, n, width, trig.size[1], s.loc_min, s.loc_max)
            infos = [{"box": Box(int(t), int(l), trig.size[0], trig.size[1])} for t, l in zip(tops, lefts)]
            return paste_trigger(batch, trig, tops, lefts, s.opacity), infos

        done = map_in_batches(clean, chosen, poison, rng, ctx, "crafting patch poisons")
        poisoned = {i: img for i, (img, _) in done.items()}
        records = {}
        for i, (img, info) in done.items():
            box = info["box"]
            records[i] = in_place_record(
                self,
                clean,
                i,
                trigger={"name": trig.name, "box": box.as_list(), "opacity": s.opacity},
                layout={"canvas": [int(img.shape[0]), int(img.shape[1])], "orientation": "", "regions": {"trigger": box.as_list()}},
            )
        extra = {"trigger": trig.describe()}
        return in_place_result(self, clean, poisoned, records, extra)
