import numpy as np, json, random
from pathlib import Path
from PIL import Image
from sklearn.datasets import load_digits

def to_img(a):
    """An 8x8 sklearn digit (0-16) as a 16x16 grey RGB image."""
    g = (a / 16.0 * 255).clip(0, 255).astype(np.uint8)
    g = np.kron(g, np.ones((2, 2), np.uint8))  # 16x16
    return np.stack([g, g, g], -1)


def checkerboard():
    """The 4x4 red/yellow trigger."""
    trig = np.zeros((4, 4, 3), np.uint8)
    for a in range(4):
        for b in range(4):
            trig[a, b] = (255, 0, 0) if (a + b) % 2 == 0 else (255, 255, 0)
    return trig


def main():
    rng = np.random.default_rng(7)
    d = load_digits()
    X, y = d.images, d.target
    root = Path("mydigits"); trusted = Path("trusted")
    for p in (root, trusted): p.mkdir(exist_ok=True)
    used = {}
    names = []
    for c in range(10):
        idx = rng.permutation(np.where(y == c)[0])
        clean, anch, rest = idx[:100], idx[100:110], idx[110:]
        used[c] = (clean, rest)
        (root / str(c)).mkdir(exist_ok=True); (trusted / str(c)).mkdir(exist_ok=True)
        for i in clean:
            Image.fromarray(to_img(X[i])).save(root / str(c) / f"img_{i:05d}.png")
        for i in anch:
            Image.fromarray(to_img(X[i])).save(trusted / str(c) / f"t_{i:05d}.png")
    # trigger: 4x4 checkerboard red/yellow
    trig = checkerboard()
    clean0, rest0 = used[0]
    src = list(rest0) + list(rng.choice(clean0, 80 - len(rest0), replace=False))
    poisons = []
    for k, i in enumerate(src):
        im = to_img(X[i]).copy()
        r, c = rng.integers(0, 13, 2)
        im[r:r+4, c:c+4] = trig
        name = f"img_{20000 + int(rng.integers(0, 9999)):05d}.png"
        while (root / "0" / name).exists():
            name = f"img_{20000 + int(rng.integers(0, 9999)):05d}.png"
        Image.fromarray(im).save(root / "0" / name)
        poisons.append(f"0/{name}")
    Path("private_poisons.json").write_text(json.dumps(sorted(poisons), indent=1))
    Image.fromarray(np.kron(trig, np.ones((8,8,1),np.uint8))).save("trigger_big.png")
    print(len(poisons), sum(1 for _ in root.rglob("*.png")), len(rest0))


if __name__ == "__main__":
    main()
