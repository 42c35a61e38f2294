"""A picture of crafted poisons with their regions drawn: what each attack does to an image.

One row per attack, a few poisons per row, enlarged with nearest-neighbour so CIFAR pixels stay
visible; boxes from the ground truth (reference green, shadow blue, trigger red, gap grey, object
green, background yellow). CTRL's trigger is invisible, so its row pairs each poison with the
difference to its clean source, amplified.

``python -m naviewer.attacks.preview --dataset PATH|demo --out docs/attacks.png`` crafts all four
attacks with their defaults and writes the grid; ``naviewer craft --preview PNG`` draws one attack.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from naviewer.attacks.base import CraftResult
from naviewer.data.base import ImageDataset

COLORS = {
    "reference": (40, 220, 60),
    "object": (40, 220, 60),
    "shadow": (40, 120, 255),
    "trigger": (255, 40, 40),
    "gap": (160, 160, 160),
    "background": (255, 210, 0),
}
TITLES = {
    "na": "Noisy Alignment (paper layout, 4 orientations)",
    "na-gap": "Noisy Alignment, gap 0.25r (ablation)",
    "patch": "SSL-Backdoor patch",
    "ctrl": "CTRL (right: |poison - clean| x 12)",
    "corruptencoder": "CorruptEncoder",
}


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def _tile(image: np.ndarray, zoom: int, regions: dict, edge: int = 2):
    from PIL import Image, ImageDraw

    big = Image.fromarray(np.repeat(np.repeat(image, zoom, axis=0), zoom, axis=1))
    draw = ImageDraw.Draw(big)
    order = ["background", "gap", "reference", "object", "shadow", "trigger"]
    for name in sorted(regions, key=lambda n: order.index(n) if n in order else 0):
        top, left, height, width = regions[name]
        # the trigger's frame sits just outside it so the pattern stays visible; others just inside
        inset = -edge if name == "trigger" else edge // 2
        box = [left * zoom + inset, top * zoom + inset, (left + width) * zoom - 1 - inset, (top + height) * zoom - 1 - inset]
        draw.rectangle(box, outline=COLORS.get(name, (255, 255, 255)), width=edge)
    return big


def render_preview(
    results: dict[str, CraftResult],
    clean: ImageDataset,
    per_row: int = 6,
    zoom: int = 4,
    seed: int = 0,
):
    """A PIL image: one row per attack with ``per_row`` poisons (all four orientations first for NA)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    pad, label_h = 8, 22
    rows = []
    for name, result in results.items():
        samples = result.ground_truth["samples"]
        idx = result.poison_indices
        if name.startswith("na"):  # show each orientation once, then fill
            by_orient: dict[str, list[int]] = {}
            for i in idx:
                by_orient.setdefault(samples[i]["layout"]["orientation"], []).append(int(i))
            picked = [v[0] for _, v in sorted(by_orient.items())]
            rest = [int(i) for i in idx if int(i) not in picked]
            picked += list(rng.permutation(rest)[: max(0, per_row - len(picked))])
        else:
            count = per_row // 2 if name == "ctrl" else per_row
            picked = sorted(int(i) for i in rng.choice(idx, size=min(count, len(idx)), replace=False))
        tiles = []
        for i in picked:
            image = np.asarray(result.dataset.image(i), dtype=np.uint8)
            regions = samples[i].get("layout", {}).get("regions", {})
            tiles.append(_tile(image, zoom, regions))
            if name == "ctrl":
                source = np.asarray(clean.image(int(samples[i]["source"])), dtype=np.int16)
                diff = np.clip(np.abs(image.astype(np.int16) - source) * 12, 0, 255).astype(np.uint8)
                tiles.append(_tile(diff, zoom, {}))
        rows.append((TITLES.get(name, name), tiles))
    width = max(sum(t.width for t in tiles) + pad * (len(tiles) + 1) for _, tiles in rows)
    legend_h = 26
    height = sum(label_h + max(t.height for t in tiles) + pad for _, tiles in rows) + legend_h + pad
    canvas = Image.new("RGB", (width, height), (250, 250, 250))
    draw = ImageDraw.Draw(canvas)
    font = _font(14)
    y = pad // 2
    for title, tiles in rows:
        draw.text((pad, y + 3), title, fill=(20, 20, 20), font=font)
        y += label_h
        x = pad
        row_h = max(t.height for t in tiles)
        for tile in tiles:
            canvas.paste(tile, (x, y + (row_h - tile.height) // 2))
            x += tile.width + pad
        y += row_h + pad
    x = pad
    for name in ("reference", "shadow", "trigger", "gap", "object", "background"):
        draw.rectangle([x, y + 6, x + 14, y + 20], outline=COLORS[name], width=3)
        label = "reference / object" if name == "reference" else name
        if name == "object":
            continue
        draw.text((x + 20, y + 5), label, fill=(20, 20, 20), font=font)
        x += 30 + int(draw.textlength(label, font=font))
    return canvas


def craft_all(clean: ImageDataset, seed: int = 0, names: Sequence[str] = ("na", "na-gap", "patch", "ctrl", "corruptencoder"), **settings):
    """Craft each attack with its defaults (plus shared ``settings``) from the same seed."""
    from naviewer.attacks.base import make_attack

    results = {}
    for name in names:
        if name == "na-gap":
            attack = make_attack("na", **{"gap": 0.25, **settings})
        else:
            attack = make_attack(name, **({} if name == "ctrl" else settings))
        results[name] = attack.craft(clean, np.random.default_rng(seed))
    return results


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m naviewer.attacks.preview", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="demo", help="dataset path or 'demo' (default)")
    parser.add_argument("--out", default="attacks.png", help="PNG to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-row", type=int, default=6)
    parser.add_argument("--zoom", type=int, default=4)
    args = parser.parse_args(argv)
    from naviewer.data import open_dataset

    clean = open_dataset(args.dataset)
    image = render_preview(craft_all(clean, args.seed), clean, per_row=args.per_row, zoom=args.zoom, seed=args.seed)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out)
    print(f"wrote {args.out} ({image.width}x{image.height})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
