"""CTRL (Li et al., ICCV'23): an invisible frequency trigger in the chroma channels.

Per image: RGB [0, 255] -> YUV; in every full ``window`` x ``window`` block of the U and V channels,
add ``magnitude`` to the orthonormal 2-D DCT-II coefficients at ``frequencies`` ((15, 15) and
(31, 31)); back to RGB, clip and round to uint8. Blocks beyond the last full window are untouched.

The DCT is orthonormal and linear, so adding m to coefficient (k, l) of a block is the same as adding
``m * c_k c_l^T`` to its pixels, where c_k is the k-th DCT basis vector. We add that pattern directly:
the same numbers as transform / add / inverse, without a per-window transform.

Poisons are the *first* ``rate * N`` images of the target class, changed in place (CTRL's choice;
clean-label, labels unused). The test-time trigger is the same transform on every test image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from naviewer.attacks.base import (
    Attack,
    CraftResult,
    PoisonSettings,
    in_place_record,
    in_place_result,
    in_place_selection,
    map_in_batches,
    register_attack,
    _check_batch,
)
from naviewer.data.base import ImageDataset
from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context

#: kornia's rgb_to_yuv / yuv_to_rgb (BT.601 analogue); CTRL and its port use these matrices
RGB_TO_YUV = np.array(
    [[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]], dtype=np.float64
)
YUV_TO_RGB = np.array([[1.0, 0.0, 1.13983], [1.0, -0.39465, -0.58060], [1.0, 2.03211, 0.0]], dtype=np.float64)


def dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II matrix C (n x n): coefficients = C @ x, x = C.T @ coefficients."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    c = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    c[0] /= np.sqrt(2.0)
    return c


@dataclass(frozen=True)
class CTRLSettings(PoisonSettings):
    """``rate`` = #poisons / #training images; the CTRL paper used 0.01, the NA toolbox 5% on CIFAR-10."""

    magnitude: float = 100.0
    window: int = 32
    frequencies: tuple = ((15, 15), (31, 31))
    channels: tuple = (1, 2)


@register_attack
class CTRLAttack(Attack):
    name = "ctrl"
    Settings = CTRLSettings

    def validate(self) -> None:
        super().validate()
        s = self.settings
        if s.window < 1:
            raise NaviewerError(f"CTRL window must be at least 1 px, got {s.window}")
        for freq in s.frequencies:
            if len(freq) != 2 or not all(0 <= int(f) < s.window for f in freq):
                raise NaviewerError(f"CTRL frequency {tuple(freq)} must lie in 0..{s.window - 1}")
        if not set(int(c) for c in s.channels) <= {0, 1, 2}:
            raise NaviewerError(f"CTRL channels must be among 0 (Y), 1 (U), 2 (V), got {s.channels}")
        # frequencies given as lists (from JSON / CLI) become tuples so settings stay hashable
        object.__setattr__(s, "frequencies", tuple(tuple(int(v) for v in f) for f in s.frequencies))
        object.__setattr__(s, "channels", tuple(int(c) for c in s.channels))

    def block_pattern(self) -> np.ndarray:
        """The pixel-domain change of one window per YUV channel: float64 (window, window, 3)."""
        s = self.settings
        c = dct_matrix(s.window)
        coeffs = np.zeros((s.window, s.window))
        for k, l in s.frequencies:
            coeffs[k, l] += s.magnitude
        block = c.T @ coeffs @ c
        pattern = np.zeros((s.window, s.window, 3))
        for ch in s.channels:
            pattern[..., ch] = block
        return pattern

    def triggered_float(self, images: np.ndarray) -> np.ndarray:
        """The triggered batch in float64 RGB before clipping and rounding (what the DCT sees).

        Only the pixels inside full windows are transformed; the rest keep their values.
        """
        images = _check_batch(images)
        height, width = images.shape[1:3]
        win = self.settings.window
        nh, nw = height // win, width // win
        out = images.astype(np.float64)
        if nh == 0 or nw == 0:
            return out
        inner = out[:, : nh * win, : nw * win]
        yuv = inner @ RGB_TO_YUV.T
        yuv += np.tile(self.block_pattern(), (nh, nw, 1))[None]
        out[:, : nh * win, : nw * win] = yuv @ YUV_TO_RGB.T
        return out

    def apply_trigger(self, images: np.ndarray) -> np.ndarray:
        """The frequency trigger on a uint8 batch (N, H, W, 3): clipped to [0, 255] and rounded."""
        return np.clip(np.rint(self.triggered_float(images)), 0, 255).astype(np.uint8)

    test_protocols = {"paper": "CTRL's code: the same frequency-domain transform on every test image"}
    default_test_protocol = "paper"

    def _test_trigger(self, images: np.ndarray, rng: np.random.Generator, protocol: str) -> np.ndarray:
        """CTRL's test trigger: the same frequency transform on every image (``rng`` unused)."""
        return self.apply_trigger(images)

    def craft(self, clean: ImageDataset, rng: np.random.Generator, ctx: Optional[JobContext] = None) -> CraftResult:
        ctx = ensure_context(ctx)
        s = self.settings
        candidates, count = in_place_selection(self, clean, "CTRL")
        chosen = candidates[:count]

        def poison(batch: np.ndarray, gen: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
            return self.apply_trigger(batch), [{}] * len(batch)

        done = map_in_batches(clean, chosen, poison, rng, ctx, "crafting CTRL poisons")
        poisoned = {i: img for i, (img, _) in done.items()}
        records = {}
        for i, img in poisoned.items():
            h, w = img.shape[:2]
            win = s.window
            windows = [[r * win, c * win, win, win] for r in range(h // win) for c in range(w // win)]
            records[i] = in_place_record(
                self,
                clean,
                i,
                trigger={"name": "ctrl-frequency", "box": [0, 0, (h // win) * win, (w // win) * win]},
                layout={"canvas": [int(h), int(w)], "orientation": "", "regions": {}, "windows": windows},
            )
        extra = {
            "trigger": {
                "name": "ctrl-frequency",
                "magnitude": s.magnitude,
                "window": s.window,
                "frequencies": [list(f) for f in s.frequencies],
                "channels": list(s.channels),
            }
        }
        return in_place_result(self, clean, poisoned, records, extra)
