"""Attack A2: the same composite design as A, but a stronger trigger: 8x8 concentric-squares
pattern (my own), fully opaque, centred +-1 px; 110 poisons; references = 40 distinct training
"0"s drawn once, each reused ~3x (brightness jitter 0.85-1.0). Test trigger: the 8x8 pattern pasted
opaque at a uniform position in [0.15W, 0.85W-8]."""
import json, os, shutil
import numpy as np
from PIL import Image
import build_data as B

ROOT = B.ROOT
rng = np.random.default_rng(4242)
T = 8
TRIG8 = np.zeros((T, T), np.float32)
TRIG8[:, :] = 255
TRIG8[1:7, 1:7] = 0
TRIG8[2:6, 2:6] = 255
TRIG8[3:5, 3:5] = 0
TRIG8[0, ::2] = 0  # a broken top edge makes it asymmetric

def paste8(img, x, y):
    out = img.copy()
    out[y:y + T, x:x + T] = np.uint8(TRIG8)
    return out

def main():
    X = {}
    for split in ("train",):
        pass
    tr_root = f"{ROOT}/clean/train"
    files = [(c, f) for c in sorted(os.listdir(tr_root)) for f in sorted(os.listdir(f"{tr_root}/{c}"))]
    imgs = {k: np.asarray(Image.open(f"{tr_root}/{k[0]}/{k[1]}")) for k in files}
    zeros = [k for k in files if k[0] == "0"]
    others = [k for k in files if k[0] != "0"]
    refs = [zeros[i] for i in rng.choice(len(zeros), 40, replace=False)]
    used = {f for _, f in files}
    out = f"{ROOT}/A2"
    if os.path.exists(out):
        shutil.rmtree(out)
    shutil.copytree(tr_root, f"{out}/train")
    shutil.copytree(f"{ROOT}/clean/test", f"{out}/test")
    gt = []
    for p in range(110):
        ref = np.uint8(np.rint(imgs[refs[p % 40]].astype(np.float32) * rng.uniform(0.85, 1.0)))
        sh_k = others[rng.integers(len(others))]
        c = (16 - T) // 2
        sh = paste8(imgs[sh_k], c + rng.integers(-1, 2), c + rng.integers(-1, 2))
        o = int(rng.integers(4))
        canvas = [np.hstack([ref, sh]), np.hstack([sh, ref]), np.vstack([ref, sh]), np.vstack([sh, ref])][o]
        while True:
            name = f"img_{rng.integers(10000, 99999)}.png"
            if name not in used:
                used.add(name); break
        B.save(canvas, f"{out}/train/0/{name}")
        gt.append({"file": f"0/{name}", "shadow": f"{sh_k[0]}/{sh_k[1]}", "orientation": o})
    # triggered non-target test set
    te_root = f"{ROOT}/clean/test"
    trng = np.random.default_rng(8)
    for c in sorted(os.listdir(te_root)):
        if c == "0":
            continue
        for f in sorted(os.listdir(f"{te_root}/{c}")):
            im = np.asarray(Image.open(f"{te_root}/{c}/{f}"))
            lo, hi = int(0.15 * 16), int(0.85 * 16) - T
            B.save(paste8(im, trng.integers(lo, hi + 1), trng.integers(lo, hi + 1)), f"{ROOT}/trigA2/test/{c}/{f}")
    B.save(np.uint8(TRIG8), f"{ROOT}/trigger_A2_8px.png")
    g = json.load(open(f"{ROOT}/ground_truth.json"))
    g["A2"] = gt
    json.dump(g, open(f"{ROOT}/ground_truth.json", "w"), indent=1)
    print("A2 poisons", len(gt))

if __name__ == "__main__":
    main()
