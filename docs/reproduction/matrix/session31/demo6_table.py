import json, sys, glob, os
base = sys.argv[1]
m = lambda v: sum(v) / len(v)
for c in sorted(glob.glob(f"{base}/cells/*")):
    try: r = json.load(open(f"{c}/cell.json"))
    except Exception: print(os.path.basename(c), "not done"); continue
    d = r["dift"]; a = r["after"]
    rets = [a["retrain"]["asr"]["uniform"]] + [x["asr"]["uniform"] for x in a.get("retrain_repeats", [])]
    fl = [r["floor"]["asr"]["uniform"]] + [x["asr"]["uniform"] for x in r.get("floor_repeats", [])]
    pp = [a["retrain"]["asr"].get("paper")] + [x["asr"].get("paper") for x in a.get("retrain_repeats", [])]
    fp = [r["floor"]["asr"].get("paper")] + [x["asr"].get("paper") for x in r.get("floor_repeats", [])]
    knn = [a["retrain"]["knn_acc"]] + [x["knn_acc"] for x in a.get("retrain_repeats", [])]
    tc = d.get("trigger_check")
    clean = d["flagged"] - d.get("true_flags", 0)
    print(f"{os.path.basename(c)} | {d.get('epoch', -1) + 1} | {d['flagged']} ({100*d['precision']:.0f} / {100*d['recall']:.0f}) | {clean} | "
          + (f"{tc['reached']} reached, cleared {tc['cleared']} (poisons {tc.get('cleared_poisons')}), share {100*tc['share']:.0f} %" if tc else "not run")
          + f" | {a['retrain'].get('removed')} | " + " / ".join(f"{100*x:.1f}" for x in rets) + f" ({100*m(rets):.1f}) | "
          + " / ".join(f"{100*x:.1f}" for x in fl) + f" ({100*m(fl):.1f}) | {100*(m(rets)-m(fl)):+.1f} | "
          + (f"{100*m(pp):.1f} / {100*m(fp):.1f}" if None not in pp + fp else "-") + " | " + " / ".join(f"{100*x:.0f}" for x in knn))
