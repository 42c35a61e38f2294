"""Independent dataset + poison builder (does NOT use naviewer code).

Clean: sklearn digits 8x8 (0-16) -> 16x16 grey PNG (bilinear), stratified split
  train ~1400, test rest; trusted = 10/class taken out of test.
Attack A (NA-like composite, my design):
  canvas 2r x r (r=16), random orientation of 4 (ref L/R/T/B), reference = random
  training "0" (drawn with replacement), shadow = random non-zero training digit
  carrying a 5x5 checker-with-border trigger ("window" pattern) at ~centre +-2 px jitter,
  80 % opacity; reference gets brightness jitter 0.85-1.0. Stored 32x16 / 16x32 PNG.
Attack B (blend): a fixed low-frequency diagonal grating blended at 20 % over copies of
  training "0"s that are shifted by up to 1 px; stored 16x16 PNG.
Test triggers: A: the 5x5 pattern pasted opaque at uniform position in [0.15W, 0.85W-5];
  B: the same grating blended at 20 %.
"""
import json, os, shutil, sys
import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

ROOT = "/work/exp/s29/indep/data"
R = 16
TARGET = 0
N_POISON = 110  # 110 / (1400+110) = 7.3 %
rng = np.random.default_rng(2929)

def to16(x8):
    im = Image.fromarray(np.uint8(np.clip(x8 * 255.0 / 16.0, 0, 255)), "L")
    return np.asarray(im.resize((R, R), Image.BILINEAR), dtype=np.uint8)

# 5x5 trigger: bright border, dark/bright centre cross -> my own pattern
TRIG = np.array([
    [255, 255, 255, 255, 255],
    [255,   0, 255,   0, 255],
    [255, 255,   0, 255, 255],
    [255,   0, 255,   0, 255],
    [255, 255, 255, 255, 255]], dtype=np.float32)

yy, xx = np.mgrid[0:R, 0:R]
GRATING = (127.5 + 127.5 * np.sin(2 * np.pi * (xx + yy) / 6.0)).astype(np.float32)

def paste(img, x, y, alpha=1.0):
    out = img.astype(np.float32).copy()
    out[y:y + 5, x:x + 5] = (1 - alpha) * out[y:y + 5, x:x + 5] + alpha * TRIG
    return np.uint8(np.clip(np.rint(out), 0, 255))

def blend(img, alpha=0.2):
    return np.uint8(np.clip(np.rint((1 - alpha) * img.astype(np.float32) + alpha * GRATING), 0, 255))

def save(arr, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(arr, "L").save(path)

def main():
    if os.path.exists(ROOT):
        shutil.rmtree(ROOT)
    d = load_digits()
    X = np.stack([to16(x) for x in d.images])
    y = d.target
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, train_size=1400, stratify=y, random_state=29)
    # trusted: 10 per class out of the test part
    te = rng.permutation(te)
    trusted, test = [], []
    cnt = {c: 0 for c in range(10)}
    for i in te:
        if cnt[y[i]] < 10:
            trusted.append(i); cnt[y[i]] += 1
        else:
            test.append(i)
    # innocuous names: random unique 5-digit numbers for every training file (clean and poison)
    names = rng.permutation(np.arange(10000, 99999))[: len(tr) + 2 * N_POISON]
    meta = {"train_clean": {}, "A": [], "B": []}
    for k, i in enumerate(tr):
        meta["train_clean"][f"img_{names[k]}.png"] = int(i)
    tr_names = list(meta["train_clean"].keys())
    for split, ids in (("test", test), ("trusted", trusted)):
        for i in ids:
            save(X[i], f"{ROOT}/clean/{split}/{y[i]}/t_{i:04d}.png")
    for k, i in enumerate(tr):
        save(X[i], f"{ROOT}/clean/train/{y[i]}/{tr_names[k]}")
    zeros = [i for i in tr if y[i] == TARGET]
    others = [i for i in tr if y[i] != TARGET]
    # ---- Attack A
    ga = []
    for p in range(N_POISON):
        ref = X[rng.choice(zeros)].astype(np.float32) * rng.uniform(0.85, 1.0)
        ref = np.uint8(np.rint(ref))
        sh_i = rng.choice(others)
        c = (R - 5) // 2
        x0, y0 = c + rng.integers(-2, 3), c + rng.integers(-2, 3)
        sh = paste(X[sh_i], x0, y0, alpha=0.8)
        o = int(rng.integers(4))
        if o == 0: canvas = np.hstack([ref, sh])
        elif o == 1: canvas = np.hstack([sh, ref])
        elif o == 2: canvas = np.vstack([ref, sh])
        else: canvas = np.vstack([sh, ref])
        name = f"img_{names[len(tr) + p]}.png"
        ga.append({"file": f"{TARGET}/{name}", "shadow_label": int(y[sh_i]), "orientation": ["ref-left", "ref-right", "ref-top", "ref-bottom"][o]})
        save(canvas, f"{ROOT}/A/train/{TARGET}/{name}")
    # ---- Attack B
    gb = []
    for p in range(N_POISON):
        z = X[rng.choice(zeros)]
        dx, dy = rng.integers(-1, 2), rng.integers(-1, 2)
        z = np.roll(np.roll(z, dx, axis=1), dy, axis=0)
        name = f"img_{names[len(tr) + N_POISON + p]}.png"
        gb.append({"file": f"{TARGET}/{name}"})
        save(blend(z, 0.2), f"{ROOT}/B/train/{TARGET}/{name}")
    for atk in ("A", "B"):
        shutil.copytree(f"{ROOT}/clean/train", f"{ROOT}/{atk}/train", dirs_exist_ok=True)
        shutil.copytree(f"{ROOT}/clean/test", f"{ROOT}/{atk}/test")
    # triggered test sets (non-target only, labels kept) for ASR
    trng = np.random.default_rng(7)
    for i in test:
        if y[i] == TARGET:
            continue
        lo, hi = int(0.15 * R), int(0.85 * R) - 5
        x0, y0 = trng.integers(lo, hi + 1), trng.integers(lo, hi + 1)
        save(paste(X[i], x0, y0, 1.0), f"{ROOT}/trigA/test/{y[i]}/t_{i:04d}.png")
        save(blend(X[i], 0.2), f"{ROOT}/trigB/test/{y[i]}/t_{i:04d}.png")
    save(np.uint8(TRIG), f"{ROOT}/trigger_A_5px.png")
    save(np.uint8(GRATING), f"{ROOT}/pattern_B.png")
    json.dump({"A": ga, "B": gb, "n_train_clean": len(tr), "n_test": len(test),
               "n_trusted": len(trusted), "target": TARGET}, open(f"{ROOT}/ground_truth.json", "w"), indent=1)
    print("train", len(tr), "test", len(test), "trusted", len(trusted), "poisons", N_POISON, "zeros in train", len(zeros))

if __name__ == "__main__":
    main()
