"""issue 17 item 1, session 10: peak RSS of `naviewer embed` over a folder of PNGs, against N.

For each N: write N random 64x64 PNGs (10 class folders; cached between runs), then in fresh child
processes (peak RSS = the child's ru_maxrss) time
  * old: the path before session 10, every image decoded into one ImageStore, then extract_embeddings;
  * new: `naviewer embed --decode-mb 64`, the images decoded a 64 MB chunk at a time;
  * floor: import torch, load the encoder, one forward pass of 256 images (no dataset).
Usage: python embed_rss.py CHECKPOINT SCRATCH_DIR N1 N2 ...   (writes embed_rss.json beside SCRATCH_DIR)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

FLOOR = """
import sys, torch
from naviewer.ssl.checkpoints import load_encoder
enc = load_encoder(sys.argv[1])
enc.backbone(torch.zeros(256, 3, enc.image_size or 32, enc.image_size or 32))
"""

OLD = """
import sys
from naviewer.data import open_dataset
from naviewer.data.store import ImageStore
from naviewer.ssl.checkpoints import load_encoder
from naviewer.ssl.embed import extract_embeddings
enc = load_encoder(sys.argv[1])
store = ImageStore.from_dataset(open_dataset(sys.argv[2]))
extract_embeddings(enc.backbone, store, image_size=enc.image_size, out_path=sys.argv[3])
"""


def write_folder(root: Path, n: int) -> Path:
    from PIL import Image

    folder = root / f"png{n}"
    done = folder / ".complete"
    if done.is_file():
        return folder
    rng = np.random.default_rng(0)
    for i in range(n):
        cls = folder / f"c{i % 10}"
        cls.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(cls / f"{i:07d}.png", compress_level=1)
    done.touch()
    return folder


def main() -> None:
    checkpoint, scratch = sys.argv[1], Path(sys.argv[2])
    sizes = [int(a) for a in sys.argv[3:]]
    rows = []
    for n in sizes:
        folder = write_folder(scratch, n)
        # each measurement in its own grandchild so ru_maxrss is that process's alone
        for kind in ("floor", "new", "old"):
            out = scratch / f"e{n}-{kind}.npy"
            out.unlink(missing_ok=True)
            if kind == "floor":
                cmd = [sys.executable, "-c", FLOOR, checkpoint]
            elif kind == "old":
                cmd = [sys.executable, "-c", OLD, checkpoint, str(folder), str(out)]
            else:
                cmd = [sys.executable, "-m", "naviewer", "embed", "--checkpoint", checkpoint, "--dataset", str(folder),
                       "--out", str(out), "--decode-mb", "64", "--device", "cpu"]
            wrapper = [sys.executable, "-c", "import json,resource,subprocess,sys,time;t=time.perf_counter();"
                       "subprocess.run(sys.argv[1:],check=True,capture_output=True);"
                       "r=resource.getrusage(resource.RUSAGE_CHILDREN);"
                       "print(json.dumps({'wall_s':round(time.perf_counter()-t,1),'cpu_s':round(r.ru_utime+r.ru_stime,1),"
                       "'peak_rss_mb':round(r.ru_maxrss/1024,1)}))", *cmd]
            proc = subprocess.run(wrapper, capture_output=True, text=True)
            if proc.returncode:
                raise SystemExit(f"{kind} {n} failed:\n{proc.stderr[-3000:]}")
            row = {"n": n, "path": kind, **json.loads(proc.stdout.strip().splitlines()[-1])}
            if kind != "floor":
                row["rows"] = int(np.load(out, mmap_mode="r").shape[0])
            rows.append(row)
            print(json.dumps(row), flush=True)
        new = np.load(scratch / f"e{n}-new.npy").astype(np.float32)
        old = np.load(scratch / f"e{n}-old.npy").astype(np.float32)
        print(f"n={n}: max |new - old| = {float(np.abs(new - old).max()):.2e}", flush=True)
    (scratch.parent / f"embed_rss_{'_'.join(map(str, sizes))}.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
