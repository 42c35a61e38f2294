"""Anchor separation of the newcomer's external trusted anchors (50 images, 5 classes) under each encoder."""
import sys, json
import numpy as np, torch
torch.set_num_threads(1)
from naviewer.data import open_dataset
from naviewer.data.store import ImageStore
from naviewer.ssl.checkpoints import load_encoder
from naviewer.ssl.embed import extract_embeddings
from naviewer.defense.sanity import anchor_report
ds = open_dataset(sys.argv[1]); store = ImageStore.from_dataset(ds)
for c in sys.argv[2:]:
    enc = load_encoder(c)
    z = extract_embeddings(enc.backbone, store, device=torch.device("cpu"), image_size=enc.image_size)
    r = anchor_report(z, np.asarray(store.labels))
    print(json.dumps({"ckpt": c, "anchor_separation": r.figures.get("anchor_separation"), "warned": bool(r.warnings)}), flush=True)
