"""kNN accuracy and ASR_nt (uniform and paper protocols) of every checkpoint of a run on the CIFAR subset."""
import sys, json, glob, numpy as np, torch
from naviewer.cli._sslargs import open_store
from naviewer.evaluation import evaluate_encoder
from naviewer.ssl.checkpoints import load_encoder
from naviewer.attacks import make_attack
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
run, attack_name = sys.argv[1], sys.argv[2]
train = open_store("/work/shared/data/cifar10-subset", "train", None)
test = open_store("/work/shared/data/cifar10-subset", "test", None)
attack = make_attack(attack_name, target=0)
import os
out = json.load(open(run + "/asr_by_epoch.json")) if os.path.exists(run + "/asr_by_epoch.json") else {}
for ck in sorted(glob.glob(run + "/checkpoints/epoch_*.pt")) + [run + "/checkpoints/last.pt"]:
    if ck.endswith("last.pt") or ck.split("/")[-1] in out:
        if not ck.endswith("last.pt"):
            continue
    enc = load_encoder(ck)
    row = {}
    for protocol in ("uniform", "paper"):
        fn = lambda images, rng, p=protocol: attack.apply_test_trigger(images, rng, p)
        r = evaluate_encoder(enc.backbone, train, test, fn, 0, image_size=enc.image_size, device=torch.device("cpu"), linear=False, seed=0)
        row["knn_acc"] = r["knn_acc"]; row[protocol] = r["knn_asr_nt"]
    out[ck.split("/")[-1]] = row
    print(ck.split("/")[-1], {k: round(v, 3) for k, v in row.items()}, flush=True)
    json.dump(out, open(run + "/asr_by_epoch.json", "w"), indent=1)
json.dump(out, open(run + "/asr_by_epoch.json", "w"), indent=1)
