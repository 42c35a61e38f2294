"""``naviewer bench detect``: a full DIFT detection pass against scikit-learn's exact baseline.

What runs: synthetic embeddings with the structure of real ones (``naviewer.defense.synthetic``:
clustered classes on a low-dimensional manifold projected to D dims + noise, post-ReLU, benign
near-duplicate groups, a planted 1% tight poison cluster), L2-normalised; then density (HNSW),
candidates, MinDist, GMM + guard, label spreading (pool) and clusters.

Baseline, measured in the same run: scikit-learn's exact ``NearestNeighbors`` (brute force) for d_k
plus the dense-kernel RBF ``LabelSpreading`` on *all* points (the paper's "sklearn defaults"). The
dense kernel is N x N float64 (20 GB at 50k), so the baseline runs on a subsample (``--baseline-n``)
and its time is extrapolated to N as O(N^2) - both numbers are printed and labelled as such.

``--scale N1,N2 --backends B1,B2`` runs the full pass at each size in a fresh child (wall, CPU, peak
RSS, kNN recall@k, the planted cluster's precision/recall, the growth exponent); with ``--mmap-dir``
each size's embeddings are written block by block to a cached ``.npy`` and detected from the memory
map (RSS bounded by ``--memory-mb``, not by N x D); ``--json F --resume`` keeps the rows F holds.

``--large N`` additionally times label spreading on N points (1.28M = ImageNet-1k scale) in a
child process, with its peak RSS: the sparse kNN-graph variant over all N and the pool variant.
"""

from __future__ import annotations

import argparse

from naviewer.catalogue import DIFT_FAST
from naviewer.outputs import stamp
import json
import os
import resource
import time
from typing import Any


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser("detect", help="DIFT detection pass vs sklearn exact kNN + dense LabelSpreading",
                            description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50000, help="samples (default 50000)")
    parser.add_argument("--dim", type=int, default=512, help="embedding dims (default 512)")
    parser.add_argument("--classes", type=int, default=20, help="classes in the mixture (default 20)")
    parser.add_argument("--intrinsic-dim", type=int, default=16)
    parser.add_argument("--poison-fraction", type=float, default=0.01)
    parser.add_argument("--poison-spread", type=float, default=0.15,
                        help="poison cluster spread relative to a class's (default 0.15)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hnsw-m", type=int, default=DIFT_FAST["hnsw_m"], help="default: DiftConfig.fast()'s")
    parser.add_argument("--ef-construction", type=int, default=DIFT_FAST["hnsw_ef_construction"])
    parser.add_argument("--ef", type=int, default=DIFT_FAST["hnsw_ef"],
                        help="query ef (default: DiftConfig.fast()'s; 0: the spec's max(128, 2k+1))")
    parser.add_argument("--knn-dims", type=int, default=DIFT_FAST["knn_dims"], help="PCA dims before the index (0: none)")
    parser.add_argument("--spread-mode", choices=("pool", "graph"), default="pool")
    parser.add_argument("--baseline-n", type=int, default=10000, help="subsample for the dense baseline")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--large", type=int, default=0, help="also time label spreading on this many points")
    parser.add_argument("--large-dim", type=int, default=128)
    parser.add_argument("--large-knn-dims", type=int, default=32)
    parser.add_argument("--backend", choices=("hnsw", "exact", "ivfpq", "ivfsq", "ivffs", "auto"), default="hnsw",
                        help="kNN backend of the pass (default hnsw; ivfpq / ivfsq / ivffs = FAISS IVF-PQ / IVF-SQ8 / "
                             "IVF-PQ4 fast scan)")
    parser.add_argument("--k", type=int, default=0, help="neighbours of the density (0: DiftConfig's default)")
    parser.add_argument("--nprobe", type=int, default=0, help="IVF lists visited per query (0: DiftConfig's default)")
    parser.add_argument("--memory-mb", type=int, default=512,
                        help="working memory of the chunked kNN passes (DiftConfig.knn_memory_mb)")
    parser.add_argument("--mmap-dir", default="",
                        help="--scale: write each size's embeddings block by block to a cached .npy in this folder and "
                             "detect from it memory-mapped (RSS bounded by --memory-mb, not by N)")
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32", help="--mmap-dir: stored dtype")
    parser.add_argument("--scale", default="", metavar="N1,N2,...",
                        help="instead: the full pass at each size (e.g. 1000000,3000000,10000000) for each of --backends, "
                             "each in a fresh child process (its peak RSS), and the growth exponent of the wall time")
    parser.add_argument("--backends", default="hnsw,ivffs", help="backends of --scale (default hnsw,ivffs)")
    parser.add_argument("--resume", action="store_true",
                        help="--scale with --json: keep the rows already in that file and run only the missing ones")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", dest="json_out", default=None, help="write the figures to this JSON file")
    parser.set_defaults(func=run)
    return parser


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _timed(fn, *args, **kwargs) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _data(n: int, dim: int, args) -> Any:
    from naviewer.defense.synthetic import make_embeddings

    return make_embeddings(n, dim, n_classes=args.classes, intrinsic_dim=args.intrinsic_dim,
                           poison_fraction=args.poison_fraction, poison_spread=args.poison_spread,
                           duplicate_groups=max(1, n // 250), seed=args.seed)


def _config(args, **over):
    from naviewer.defense.config import DiftConfig

    values = dict(knn_backend=getattr(args, "backend", "hnsw"), hnsw_m=args.hnsw_m, hnsw_ef_construction=args.ef_construction,
                  hnsw_ef=args.ef or None, knn_dims=args.knn_dims or None, num_threads=args.threads,
                  spread_mode=args.spread_mode, seed=args.seed, ivf_nprobe=getattr(args, "nprobe", 0) or DiftConfig.ivf_nprobe,
                  knn_memory_mb=getattr(args, "memory_mb", 512))
    if getattr(args, "k", 0):
        values["k"] = args.k
    values.update(over)
    return DiftConfig(**values).validate()


def _ours(data, args, config) -> dict:
    import numpy as np

    from naviewer.defense.anchors import draw_anchors
    from naviewer.defense.pipeline import PosthocDetector

    anchors = draw_anchors(data.clean_labels, 10, seed=args.seed, candidates=np.flatnonzero(~data.poison))
    result, wall, cpu = _timed(PosthocDetector(config).run, data.features, anchors, data.poison)
    dk = result.detection.knn.kth_distance
    ratio = float(np.median(dk[data.poison]) / np.median(dk[~data.poison])) if data.poison.any() else float("nan")
    return {"wall_s": wall, "cpu_s": cpu, "timings": result.timings, "metrics": result.metrics, "dk_ratio": ratio,
            "spread": result.spread.info() if result.spread else None, "guard": result.detection.split.info(),
            "knn_backend": result.detection.knn.backend, "knn_recall": result.detection.knn.recall}


def _baseline(data, args) -> dict:
    """sklearn exact kNN (brute) + dense RBF LabelSpreading over all points, seeded like ours."""
    import warnings

    import numpy as np
    from sklearn.neighbors import NearestNeighbors
    from sklearn.semi_supervised import LabelSpreading

    from naviewer.defense.anchors import draw_anchors
    from naviewer.defense.config import DiftConfig
    from naviewer.defense.dift import gmm_split, min_dist, select_candidates
    from naviewer.defense.knn import as_float32
    from naviewer.defense.spreading import spreading_labels
    from naviewer.evaluation.detection import detection_metrics

    config = DiftConfig(seed=args.seed)
    wall, cpu = time.perf_counter(), time.process_time()
    z = as_float32(data.features, True)
    anchors = draw_anchors(data.clean_labels, 10, seed=args.seed, candidates=np.flatnonzero(~data.poison))
    t0 = time.perf_counter()
    nn = NearestNeighbors(n_neighbors=config.k + 1, algorithm="brute", n_jobs=args.threads).fit(z)
    dist, _ = nn.kneighbors(z)
    t_knn = time.perf_counter() - t0
    dk = dist[:, -1]  # column 0 is (almost always) self: the naive way
    cand = select_candidates(dk, config.n_candidates(z.shape[0]), exclude=anchors.indices)
    mind, _ = min_dist(z[cand], z[anchors.indices], anchors.labels)
    rest = np.setdiff1d(np.arange(z.shape[0]), np.concatenate([cand, anchors.indices]))
    ref_ids = np.random.default_rng(args.seed).choice(rest, size=min(2000, rest.size), replace=False)
    split = gmm_split(mind, config, lambda: min_dist(z[ref_ids], z[anchors.indices], anchors.labels)[0])
    buffer_ids = np.sort(cand[split.selected])
    t0 = time.perf_counter()
    y = spreading_labels(z.shape[0], buffer_ids, anchors.indices)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LabelSpreading(kernel="rbf", gamma=20, alpha=0.2, max_iter=30, tol=1e-3).fit(z, y)
    t_ls = time.perf_counter() - t0
    flagged = np.setdiff1d(np.flatnonzero(model.transduction_ == 1), anchors.indices)
    m = detection_metrics(flagged, data.poison)
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "knn_s": t_knn,
            "spread_s": t_ls, "final_precision": m.precision, "final_recall": m.recall,
            "buffer_recall": detection_metrics(buffer_ids, data.poison).recall}


def _large_child(n: int, dim: int, args, queue) -> None:
    """Runs in a forked child so its peak RSS is its own."""
    import tracemalloc

    import numpy as np

    from naviewer.defense.anchors import draw_anchors
    from naviewer.defense.knn import KnnIndex
    from naviewer.defense.spreading import label_spread
    from naviewer.defense.synthetic import make_embeddings

    out: dict[str, Any] = {"n": n, "dim": dim}
    t0 = time.perf_counter()
    data = make_embeddings(n, dim, n_classes=100, intrinsic_dim=args.intrinsic_dim, poison_fraction=0.01,
                           poison_spread=args.poison_spread, seed=args.seed)
    z = data.features  # normalise in place: one N x D copy, not two
    z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    out["generate_s"] = time.perf_counter() - t0
    out["rss_after_data_mb"] = _rss_mb()
    anchors = draw_anchors(data.clean_labels, 10, seed=args.seed, candidates=np.flatnonzero(~data.poison))
    poisons = np.flatnonzero(data.poison)
    buffer_ids = np.random.default_rng(args.seed).choice(poisons, size=poisons.size // 3, replace=False)
    config = _config(args, knn_dims=args.large_knn_dims or None, k=10, graph_neighbors=10)
    t0 = time.perf_counter()
    index = KnnIndex(z, config)
    out["index_build_s"] = time.perf_counter() - t0
    out["index_timings"] = dict(index.timings)
    out["rss_after_index_mb"] = _rss_mb()
    t0 = time.perf_counter()
    knn = index.all_neighbors(10)
    out["all_neighbors_s"] = time.perf_counter() - t0
    from naviewer.evaluation.detection import detection_metrics

    for mode in ("pool", "graph"):
        cfg = _config(args, knn_dims=args.large_knn_dims or None, k=10, graph_neighbors=10, spread_mode=mode)
        tracemalloc.start()
        t0, c0 = time.perf_counter(), time.process_time()
        res = label_spread(z, buffer_ids, anchors.indices, cfg, index=index, knn=knn, anchor_labels=anchors.labels)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        m = detection_metrics(res.flagged, data.poison)
        out[mode] = {"wall_s": wall, "cpu_s": cpu, "numpy_peak_mb": peak / 2**20, "rss_mb": _rss_mb(),
                     **res.info(), "recall": m.recall, "precision": m.precision}
    queue.put(out)


def _large(n: int, dim: int, args) -> dict:
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_large_child, args=(n, dim, args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    result["child_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return result


def _scale_child(n: int, backend: str, args, queue) -> None:
    """One (N, backend) full pass in a fresh process: generate, detect, report (the parent keeps no data)."""
    t0 = time.perf_counter()
    if args.mmap_dir:
        from naviewer.bench._mapped_data import mapped_embeddings

        data = mapped_embeddings(args.mmap_dir, n, args.dim, n_classes=args.classes, intrinsic_dim=args.intrinsic_dim,
                                 poison_fraction=args.poison_fraction, poison_spread=args.poison_spread,
                                 duplicate_groups=max(1, n // 250), seed=args.seed, dtype=args.dtype)
    else:
        data = _data(n, args.dim, args)
    generate = time.perf_counter() - t0
    rss_data = _rss_mb()
    args.backend = backend
    config = _config(args)
    ours = _ours(data, args, config)
    queue.put({"n": n, "backend": backend, "generate_s": generate, "rss_after_data_mb": rss_data,
               "mapped": bool(args.mmap_dir), "dtype": args.dtype if args.mmap_dir else "float32",
               "knn_memory_mb": config.knn_memory_mb, "knn_dims": config.knn_dims, **ours})


def _scale(args, sizes: list[int], backends: list[str], done=None, save=None) -> dict:
    """The full pass at every size for every backend, each in a fresh child; the growth exponents."""
    import multiprocessing

    import numpy as np

    rows = list(done or [])
    for backend in backends:
        for n in sizes:
            if any(r["n"] == n and r["backend"] == backend for r in rows):
                print(f"  {backend:6s} N={n:>10,d}: kept from the earlier run", flush=True)
                continue
            ctx = multiprocessing.get_context("fork")
            queue = ctx.Queue()
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            proc = ctx.Process(target=_scale_child, args=(n, backend, args, queue))
            proc.start()
            row = queue.get()
            proc.join()
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            # ru_maxrss of children is the largest child so far: exact for increasing sizes, a bound otherwise
            row["peak_rss_mb"] = max(peak, before) / 1024.0
            row["peak_rss_is_bound"] = peak == before  # an earlier, larger child set the maximum
            m = row["metrics"]
            t = row["timings"]
            print(f"  {backend:6s} N={n:>10,d}: {row['wall_s']:8.1f} s wall ({row['cpu_s']:.0f} s CPU) "
                  f"[build {t.get('knn_build', 0):.0f}, query {t.get('knn_query', 0):.0f}, recall check "
                  f"{t.get('knn_recall_check', 0):.0f}, spreading {t.get('spread', 0):.0f}], peak RSS "
                  f"{row['peak_rss_mb'] / 1024:.1f} GB, kNN recall@k {row['knn_recall'] if row['knn_recall'] is not None else 'exact'}, "
                  f"planted cluster precision {m['final_precision']:.3f} recall {m['final_recall']:.3f}", flush=True)
            rows.append(row)
            if save is not None:
                save(rows)
    exponents = {}
    for backend in backends:
        pts = sorted((r["n"], r["wall_s"]) for r in rows if r["backend"] == backend)
        if len(pts) >= 2:
            slope = float(np.polyfit(np.log([p[0] for p in pts]), np.log([p[1] for p in pts]), 1)[0])
            exponents[backend] = slope
            print(f"  {backend}: wall time grows as N^{slope:.2f} over {', '.join(f'{p[0]:,d}' for p in pts)}")
    return {"rows": rows, "exponents": exponents}


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from naviewer.errors import NaviewerError

    if args.resume and not args.json_out:  # ignored: the whole run went ahead (a bad-input sweep, session 26)
        raise NaviewerError("--resume keeps the rows of a --json file: add --json FILE")
    if args.mmap_dir:  # a file or /proc there failed in the scale's child process, a traceback (a probe, session 30)
        from pathlib import Path

        from naviewer.outputs import check_can_create_in, check_output_folder

        mmap = Path(args.mmap_dir).expanduser()
        if mmap.exists() and not mmap.is_dir():
            raise NaviewerError("--mmap-dir is a file, not a folder", mmap)
        if mmap.is_dir():
            check_can_create_in(mmap, "--mmap-dir")
        else:
            check_output_folder(mmap / "x", "--mmap-dir")
    if not args.scale and args.classes > args.n // 10:  # DIFT's "k + anchors" message named a workspace file
        raise NaviewerError(f"--classes {args.classes:,} is too many for --n {args.n:,} samples: DIFT draws its anchors "
                            "from every class; give at most one class per ten samples")
    if args.scale:
        try:
            sizes = sorted(int(v) for v in args.scale.split(",") if v.strip())
        except ValueError:
            raise NaviewerError(f"bench detect: --scale takes sizes like 1000000,3000000, got {args.scale!r}") from None
        backends = [b.strip() for b in args.backends.split(",") if b.strip()]
        bad = [b for b in backends if b not in ("hnsw", "exact", "ivfpq", "ivfsq", "ivffs", "auto")]
        if not sizes or min(sizes) < 1000 or bad or not backends:
            raise NaviewerError("bench detect: --scale needs sizes >= 1000 and --backends from hnsw, exact, ivfpq, "
                                "ivfsq, ivffs, auto")
        torch.set_num_threads(args.threads)
        print(f"DIFT detection pass at scale: {args.dim} dims, {args.threads} threads, {args.poison_fraction:.0%} "
              f"planted cluster (load avg {os.getloadavg()[0]:.1f})", flush=True)
        done = []
        if args.resume and args.json_out and os.path.exists(args.json_out):
            with open(args.json_out, encoding="utf-8") as handle:
                done = json.load(handle).get("rows", [])
        head = {"dim": args.dim, "threads": args.threads, "cpus": os.cpu_count(), "load_avg": os.getloadavg()}

        def save(rows, extra=None):
            if args.json_out:  # after every row: a stopped run resumes with --resume
                tmp = args.json_out + ".tmp"
                with open(tmp, "w", encoding="utf-8") as handle:
                    json.dump(stamp({**head, "rows": rows, **(extra or {})}, "bench detect"), handle, indent=1,
                              default=lambda v: v.tolist() if isinstance(v, np.ndarray) else str(v))
                os.replace(tmp, args.json_out)

        result = _scale(args, sizes, backends, done, save)
        save(result["rows"], {"exponents": result["exponents"]})
        return 0
    if args.n < 1000 or args.dim < 2:
        raise NaviewerError("bench detect: need --n >= 1000 and --dim >= 2")
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    figures: dict[str, Any] = {"n": args.n, "dim": args.dim, "threads": args.threads, "cpus": os.cpu_count(),
                               "load_avg": os.getloadavg()}
    print(f"DIFT detection pass: {args.n} x {args.dim} float32, {args.classes} classes, "
          f"{args.poison_fraction:.0%} planted cluster, {args.threads} threads (load avg {os.getloadavg()[0]:.1f})")
    t0 = time.perf_counter()
    data = _data(args.n, args.dim, args)
    print(f"  data generated in {time.perf_counter() - t0:.1f} s")
    config = _config(args)
    _ours(_data(2000, args.dim, args), args, config)  # warm-up: imports, BLAS threads
    ours = _ours(data, args, config)
    figures["ours"] = ours
    m = ours["metrics"]
    t = ours["timings"]
    print(f"naviewer (hnswlib M={config.hnsw_m} ef_c={config.hnsw_ef_construction} ef={config.ef}, "
          f"PCA {config.knn_dims or 'off'} + re-rank, spread={args.spread_mode}):")
    print(f"  full pass {ours['wall_s']:.2f} s wall, {ours['cpu_s']:.2f} s CPU  "
          f"[pca {t.get('knn_pca', 0):.2f}, build {t.get('knn_build', 0):.2f}, query {t.get('knn_query', 0):.2f}, "
          f"mindist+gmm {t.get('mindist_gmm', 0):.2f}, spreading {t.get('spread', 0):.2f}]")
    print(f"  planted cluster: buffer precision {m['buffer_precision']:.3f} recall {m['buffer_recall']:.3f}; "
          f"final precision {m['final_precision']:.3f} recall {m['final_recall']:.3f}; "
          f"guard {ours['guard']['guard_decision'] or 'no'} (sep {ours['guard']['separation']:.2f}); "
          f"median d_k poison/benign {ours['dk_ratio']:.2f}")
    print(f"  peak RSS so far {_rss_mb():.0f} MB")

    if not args.skip_baseline:
        nb = min(args.baseline_n, args.n)
        sub = _data(nb, args.dim, args)
        base = _baseline(sub, args)
        ours_sub = _ours(sub, args, config)
        scale = (args.n / nb) ** 2
        figures.update({"baseline_n": nb, "baseline": base, "ours_at_baseline_n": ours_sub,
                        "baseline_extrapolated_s": base["wall_s"] * scale})
        print(f"baseline (sklearn NearestNeighbors brute + dense RBF LabelSpreading) at N={nb}:")
        print(f"  {base['wall_s']:.2f} s wall, {base['cpu_s']:.2f} s CPU (kNN {base['knn_s']:.2f}, "
              f"spreading {base['spread_s']:.2f}); final precision {base['final_precision']:.3f} "
              f"recall {base['final_recall']:.3f}")
        print(f"  naviewer at N={nb}: {ours_sub['wall_s']:.2f} s wall, {ours_sub['cpu_s']:.2f} s CPU -> speed-up "
              f"x{base['wall_s'] / ours_sub['wall_s']:.1f} wall, x{base['cpu_s'] / ours_sub['cpu_s']:.1f} CPU "
              f"(measured, same N)")
        print(f"  baseline extrapolated to N={args.n} as O(N^2): {base['wall_s'] * scale:.0f} s wall, "
              f"{base['cpu_s'] * scale:.0f} s CPU (its dense kernel would need {args.n ** 2 * 8 / 2**30:.0f} GB "
              f"per copy) -> speed-up x{base['wall_s'] * scale / ours['wall_s']:.0f} wall, "
              f"x{base['cpu_s'] * scale / ours['cpu_s']:.0f} CPU (extrapolated)")
    if args.large:
        print(f"label spreading at N={args.large} x {args.large_dim} (child process):")
        large = _large(args.large, args.large_dim, args)
        figures["large"] = large
        print(f"  data {large['generate_s']:.0f} s; HNSW index (PCA {args.large_knn_dims}) "
              f"{large['index_build_s']:.0f} s {large['index_timings']}; "
              f"kNN graph of all points (k=10) {large['all_neighbors_s']:.0f} s")
        for mode in ("pool", "graph"):
            r = large[mode]
            print(f"  {mode}: {r['wall_s']:.1f} s wall ({r['cpu_s']:.1f} s CPU), pool {r['pool_size']}, "
                  f"numpy peak {r['numpy_peak_mb']:.0f} MB, recall {r['recall']:.3f} precision {r['precision']:.3f}")
        print(f"  child peak RSS {large['child_peak_rss_mb']:.0f} MB (data {large['rss_after_data_mb']:.0f} MB, "
              f"after index {large['rss_after_index_mb']:.0f} MB)")
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as handle:
            json.dump(stamp(figures, "bench detect"), handle, indent=1,
                      default=lambda v: v.tolist() if isinstance(v, np.ndarray) else str(v))
    return 0
