"""k-th-neighbour distance (DIFT Eq. 4-5) with hnswlib, and an exact torch path.

Why two paths: hnswlib (HNSW, as in the paper) scales to ImageNet sizes; the exact path (blocked
matrix products + top-k in torch, on CUDA when available) is the oracle the tests check HNSW
against, the right choice for small sets, and a user option.

Pitfalls handled here (docs/dift.md, kNN density): hnswlib's ``'l2'`` space returns *squared* distances; its
labels are uint64 (cast to int64 before mixing with int64 arrays); and the first hit is not
always the query itself, so self is removed by id, falling back to dropping the last column.

Memory-mapped embeddings (``np.load(path, mmap_mode="r")``, float16 or float32) are never copied into
RAM whole: :func:`as_float32` writes their normalised float32 rows to an unlinked scratch memmap,
and every pass over all rows (PCA projection, index building, queries, re-ranking, the recall check)
runs in chunks sized by ``DiftConfig.knn_memory_mb``, releasing the mapped pages it touched once
that much has been read (``madvise(MADV_DONTNEED)``: the file stays in the page cache, the process's
RSS does not keep it). What stays in RAM grows with N only through the index (HNSW: the vectors and
graph; IVF: the codes) and the (N, k) answer.
"""

from __future__ import annotations

import mmap
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from naviewer.defense.config import DiftConfig
from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context

_BLOCK_ELEMENTS = 1 << 25  # ~128 MB of float32 distances per exact block
# On a GPU the 128 MB blocks are launch-bound: at 1M x 1M on an H200 the exact pass took 42 s in
# 30,000 blocks of 33 queries (docs/performance.md, GPU check). Up to 4 GB (a sixteenth of the
# free memory) gives ~1,000 queries a block.
_GPU_BLOCK_ELEMENTS = 1 << 30
_MAX_BLOCK_ROWS = 4096
IVF_HNSW_ABOVE = 8192      # ivf_quantizer auto: an HNSW coarse quantiser above this many lists


@dataclass
class KnnResult:
    """Neighbours of every sample (self excluded), nearest first."""

    neighbors: np.ndarray      # (N, k) int64
    distances: np.ndarray      # (N, k) float32, unsquared L2
    backend: str
    timings: dict[str, float] = field(default_factory=dict)
    recall: Optional[float] = None  # approximate backends: recall@k against exact on a seeded row sample

    @property
    def k(self) -> int:
        return int(self.neighbors.shape[1])

    @property
    def kth_distance(self) -> np.ndarray:
        """d_k (Eq. 4)."""
        return self.distances[:, -1]

    @property
    def density(self) -> np.ndarray:
        """rho = 1/d_k (Eq. 5); exact duplicates give +inf, which still ranks densest."""
        with np.errstate(divide="ignore"):
            return (1.0 / self.kth_distance.astype(np.float64)).astype(np.float32)

    @property
    def rank(self) -> np.ndarray:
        """0 = densest (smallest d_k); ties broken by id so the order is reproducible."""
        return density_rank(self.kth_distance)


#: the FAISS inverted-file backends (codes, not vectors, in RAM; every answer re-ranked in full dims)
IVF_BACKENDS = ("ivfpq", "ivfsq", "ivffs")
#: ``ivffs`` fetches this many times ``knn_rerank`` extra candidates for the exact re-rank
FAST_SCAN_RERANK_FACTOR = 3


def faiss_available() -> bool:
    """True when FAISS imports (the ``ivfpq`` / ``ivfsq`` / ``ivffs`` backends; ``pip install faiss-cpu``)."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def density_rank(kth_distance: np.ndarray) -> np.ndarray:
    order = np.argsort(kth_distance, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return rank


def is_mapped(array) -> bool:
    """True for a memory-mapped array (``np.memmap``, or a view of one)."""
    return isinstance(array, np.memmap) and getattr(array, "_mmap", None) is not None


def release_pages(array) -> None:
    """Drop the pages of a memory-mapped array from this process's RSS (they stay in the page cache)."""
    handle = getattr(array, "_mmap", None) if isinstance(array, np.memmap) else None
    if handle is not None and hasattr(handle, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        try:
            handle.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):  # pragma: no cover - a closed map or an unsupported platform
            pass


def chunk_rows(memory_mb: int, bytes_per_row: int) -> int:
    """Rows that fit ``memory_mb`` at ``bytes_per_row`` (at least 256)."""
    return max(256, int(memory_mb) * (1 << 20) // max(1, int(bytes_per_row)))


def scratch_array(shape: tuple[int, int], directory: Optional[str] = None) -> np.memmap:
    """A float32 memmap on an unlinked temporary file: disk-backed, gone when the array is."""
    handle = tempfile.NamedTemporaryFile(prefix="naviewer-knn-", suffix=".f32", dir=directory, delete=False)
    try:
        handle.truncate(int(np.prod(shape)) * 4)
        handle.close()
        out = np.memmap(handle.name, dtype=np.float32, mode="r+", shape=shape)
    finally:
        try:
            os.unlink(handle.name)  # the mapping keeps the data; nothing is left behind on exit or crash
        except OSError:  # pragma: no cover - Windows keeps mapped files: removed at exit instead
            pass
    return out


def _normalise_block(block: np.ndarray) -> np.ndarray:
    # direction only: scale each row first, so 1e30-sized embeddings neither overflow nor vanish
    block = block.astype(np.float64)
    block /= np.maximum(np.abs(block).max(axis=1, keepdims=True), 1e-300)
    block /= np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)
    return block.astype(np.float32)


def as_float32(features: np.ndarray, normalize: bool, path: Optional[str] = None,
               memory_mb: int = 512) -> np.ndarray:
    """C-contiguous float32 copy (works on memory-mapped float16), optionally L2-normalised.

    Memory-mapped input gives a memory-mapped result (an unlinked scratch file in the temporary
    directory, ``TMPDIR``), written ``memory_mb`` at a time: RSS stays bounded whatever N."""
    if is_mapped(features) and features.ndim == 2 and features.shape[0] and features.shape[1]:
        out = scratch_array(features.shape)
        step = chunk_rows(memory_mb, features.shape[1] * 24)
        for start in range(0, features.shape[0], step):
            block = np.asarray(features[start:start + step])
            if not np.isfinite(block).all():
                raise NaviewerError("embeddings contain NaN or infinite values", path)
            out[start:start + step] = _normalise_block(block) if normalize else block
            release_pages(features)
            release_pages(out)
        return out
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[0] == 0 or features.shape[1] == 0:
        raise NaviewerError(f"embeddings must be a non-empty (N, D) array, got shape {features.shape}", path)
    out = np.empty(features.shape, dtype=np.float32)
    step = max(1, (1 << 24) // features.shape[1])
    for start in range(0, features.shape[0], step):
        block = np.asarray(features[start:start + step])
        if not np.isfinite(block).all():
            raise NaviewerError("embeddings contain NaN or infinite values", path)
        if normalize:  # direction only: scale each row first, so 1e30-sized embeddings neither overflow nor vanish
            block = block.astype(np.float64)
            block /= np.maximum(np.abs(block).max(axis=1, keepdims=True), 1e-300)
        out[start:start + step] = block
    if normalize:
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.maximum(norms, 1e-12, out=norms)
        out /= norms
    return out


def remove_self(labels: np.ndarray, distances: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Drop each row's own id from a (n, k+1) answer; where self is absent, drop the last column."""
    labels = labels.astype(np.int64, copy=False)
    is_self = labels == np.asarray(ids, dtype=np.int64)[:, None]
    # stable argsort moves the self column (True) behind the others and keeps the rest in order;
    # rows without self keep their first k columns, i.e. lose the last one
    order = np.argsort(is_self, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(labels, order, axis=1), np.take_along_axis(distances, order, axis=1)


def _pick_device(config: DiftConfig):
    import torch

    if config.exact_device:
        return torch.device(config.exact_device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _block_rows(n: int, device) -> int:
    """Queries per exact block: 128 MB of distances on the CPU, up to 4 GB on a GPU with the room."""
    import torch

    elements = _BLOCK_ELEMENTS
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        elements = max(_BLOCK_ELEMENTS, min(_GPU_BLOCK_ELEMENTS, free // 64))  # distances + top-k's workspace
    return max(1, min(_MAX_BLOCK_ROWS, elements // max(n, 1)))


def exact_knn(base: np.ndarray, queries: np.ndarray, k: int, query_ids: Optional[np.ndarray] = None,
              device=None, ctx: Optional[JobContext] = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours of ``queries`` in ``base`` by blocked matrix products in torch.

    ``query_ids`` (ids of the queries inside ``base``) excludes each query's own row by id. The
    returned distances are recomputed directly as ||q - x|| so they carry no cancellation error.
    """
    import torch

    ctx = ensure_context(ctx)
    device = device or torch.device("cpu")
    n, nq = base.shape[0], queries.shape[0]
    k_eff = min(k, n - (1 if query_ids is not None else 0))
    if k_eff < 1:
        raise NaviewerError(f"need more than {k} samples for {k} neighbours, got {n}")
    xb = torch.from_numpy(np.ascontiguousarray(base, dtype=np.float32)).to(device)
    sq = (xb * xb).sum(1)
    block = _block_rows(n, device)
    out_ids = np.empty((nq, k_eff), dtype=np.int64)
    out_d = np.empty((nq, k_eff), dtype=np.float32)
    for start in range(0, nq, block):
        ctx.check()
        stop = min(nq, start + block)
        q = torch.from_numpy(np.ascontiguousarray(queries[start:stop], dtype=np.float32)).to(device)
        d2 = (q * q).sum(1, keepdim=True) + sq[None, :] - 2.0 * (q @ xb.T)
        if query_ids is not None:
            rows = torch.arange(stop - start, device=device)
            cols = torch.from_numpy(np.asarray(query_ids[start:stop], dtype=np.int64)).to(device)
            d2[rows, cols] = float("inf")
        _, idx = torch.topk(d2, k_eff, dim=1, largest=False, sorted=True)
        exact = torch.linalg.vector_norm(q[:, None, :] - xb[idx], dim=2)
        exact, order = torch.sort(exact, dim=1, stable=True)
        out_ids[start:stop] = torch.gather(idx, 1, order).cpu().numpy()
        out_d[start:stop] = exact.cpu().numpy()
        ctx.progress(stop, nq, "exact kNN")
    return out_ids, out_d


def pca_project(x: np.ndarray, dims: int, fit_rows: int = 20000, seed: int = 0
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project onto the top principal axes: (projected, mean, axes).

    The axes come from the D x D covariance of at most ``fit_rows`` random rows (plenty to pin down
    a few dozen axes of a low-intrinsic-dimension embedding, and O(D^2) memory at any N).
    """
    rng = np.random.default_rng(seed)
    rows = x if x.shape[0] <= fit_rows else x[np.sort(rng.choice(x.shape[0], size=fit_rows, replace=False))]
    mean = rows.mean(axis=0, dtype=np.float64).astype(np.float32)
    centred = rows - mean
    cov = (centred.T @ centred).astype(np.float64)
    _, vectors = np.linalg.eigh(cov)
    axes = np.ascontiguousarray(vectors[:, ::-1][:, :dims], dtype=np.float32)
    return project(x, mean, axes), mean, axes


def project(x: np.ndarray, mean: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """(x - mean) @ axes, computed as x @ axes - mean @ axes to avoid an N x D temporary."""
    return np.ascontiguousarray(x @ axes - (mean @ axes)[None, :], dtype=np.float32)


class KnnIndex:
    """A kNN index over one embedding matrix: built once per epoch, queried for all samples,
    for a buffer's neighbours (label-spreading pool) or for one sample (the GUI inspector).

    ``features`` are used as given (normalise first with :func:`as_float32`). Ids are row numbers.
    A memory-mapped ``features`` is read in chunks (``config.knn_memory_mb``), never copied whole.
    """

    def __init__(self, features: np.ndarray, config: Optional[DiftConfig] = None,
                 ctx: Optional[JobContext] = None) -> None:
        self.config = (config or DiftConfig()).validate()
        ctx = ensure_context(ctx)
        self.mapped = is_mapped(features)
        self._touched = 0  # bytes of mapped pages read since the last release (an upper bound)
        if self.mapped and features.ndim == 2:
            self.features = features  # float16 or float32 rows, cast per chunk
        else:
            self.features = np.ascontiguousarray(features, dtype=np.float32)
        self.n, self.dim = self.features.shape
        if self.n < 2:
            raise NaviewerError(f"need at least 2 samples for a kNN index, got {self.n}")
        backend = self.config.knn_backend
        if backend == "auto":
            exact = self.n <= self.config.exact_max_n or (self.n <= self.config.exact_max_n_gpu and self._has_cuda())
            large = self.n > self.config.approx_max_n and faiss_available()
            backend = "exact" if exact else ("ivffs" if large else "hnsw")
        if backend in IVF_BACKENDS and not faiss_available():
            raise NaviewerError(f"knn_backend {backend} needs FAISS: pip install faiss-cpu (or faiss-gpu)")
        self.backend = backend
        self.timings: dict[str, float] = {}
        self.ivf: dict = {}
        self._mean = self._axes = None
        self._space = None if self.mapped else self.features
        if (backend == "hnsw" or backend in IVF_BACKENDS) and self.config.knn_dims and self.config.knn_dims < self.dim:
            start = time.perf_counter()
            if self.mapped:  # axes from a sample; rows projected chunk by chunk when needed
                rng = np.random.default_rng(self.config.seed)
                rows = np.sort(rng.choice(self.n, size=min(self.n, 20000), replace=False))
                _, self._mean, self._axes = pca_project(self._take(rows), int(self.config.knn_dims),
                                                        seed=self.config.seed)
            else:
                self._space, self._mean, self._axes = pca_project(self.features, int(self.config.knn_dims),
                                                                  seed=self.config.seed)
            self.timings["pca"] = time.perf_counter() - start
        self._index = None
        if backend == "hnsw":
            self._build_hnsw(ctx)
        elif backend in IVF_BACKENDS:
            self._build_ivf(ctx)

    @staticmethod
    def _has_cuda() -> bool:
        try:
            import torch

            return bool(torch.cuda.is_available())
        except Exception:  # pragma: no cover - torch is a dependency
            return False

    @property
    def projected(self) -> bool:
        return self._axes is not None

    # -- row access: in RAM, or chunks of a memmap ------------------------------------------
    def _rows(self, begin: int, end: int) -> np.ndarray:
        return np.ascontiguousarray(self.features[begin:end], dtype=np.float32)

    def _take(self, ids: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.features[ids], dtype=np.float32)

    def _space_rows(self, begin: int, end: int) -> np.ndarray:
        """Rows in the index's space (the PCA projection when ``knn_dims`` is set)."""
        if self._space is not None:
            return self._space[begin:end]
        rows = self._rows(begin, end)
        return project(rows, self._mean, self._axes) if self.projected else rows

    def _to_space(self, rows: np.ndarray) -> np.ndarray:
        return project(rows, self._mean, self._axes) if self.projected else rows

    def _chunk(self, per_row_floats: int) -> int:
        return chunk_rows(self.config.knn_memory_mb, 4 * max(1, per_row_floats))

    def _release(self) -> None:
        if self.mapped:
            release_pages(self.features)
        self._touched = 0

    def _build_hnsw(self, ctx: JobContext) -> None:
        import hnswlib

        cfg = self.config
        start = time.perf_counter()
        dim = int(self._axes.shape[1]) if self.projected else self.dim
        index = hnswlib.Index(space="l2", dim=dim)
        index.init_index(max_elements=self.n, M=int(cfg.hnsw_m), ef_construction=int(cfg.hnsw_ef_construction),
                         random_seed=int(cfg.seed))
        index.set_num_threads(cfg.threads)
        chunk = min(20000, self._chunk(2 * self.dim))
        for begin in range(0, self.n, chunk):
            ctx.check()
            end = min(self.n, begin + chunk)
            index.add_items(self._space_rows(begin, end), np.arange(begin, end, dtype=np.int64))
            self._release()
            ctx.progress(end, self.n, "building HNSW index")
        self._index = index
        self.timings["build"] = time.perf_counter() - start

    def _build_ivf(self, ctx: JobContext) -> None:
        """FAISS IVF (flat coarse quantiser, or HNSW over two-level k-means centroids when the lists are
        many: ``ivf_quantizer``): ``ivfsq`` 8-bit scalar codes (one byte a dimension),
        ``ivffs`` 4-bit product codes, one sub-quantiser a dimension (d / 2 bytes a vector), scanned
        with FAISS's SIMD fast-scan kernels (about a quarter of SQ8's scan time at the same recall@10), ``ivfpq`` 8-bit product codes (d / pq_dims_per_code
        bytes a vector); the quantisers are
        trained on a seeded sample, vectors added chunk by chunk; every answer is re-ranked in full
        dims (:meth:`_rerank`)."""
        import faiss

        cfg = self.config
        start = time.perf_counter()
        faiss.omp_set_num_threads(cfg.threads)
        d = int(self._axes.shape[1]) if self.projected else self.dim
        nlist = int(cfg.ivf_nlist or round(max(4 * np.sqrt(self.n), self.n / 256)))
        nlist = max(1, min(nlist, self.n // 39))
        nprobe = min(int(cfg.ivf_nprobe), nlist)
        hnsw = cfg.ivf_quantizer == "hnsw" or (cfg.ivf_quantizer == "auto" and nlist > IVF_HNSW_ABOVE)
        rng = np.random.default_rng(cfg.seed)
        # flat k-means wants ~39 rows a list; the two-level k-means behind the HNSW quantiser makes do with 16
        size = min(self.n, max(int(cfg.ivf_train_size), (16 if hnsw else 39) * nlist, 256))
        sample = np.sort(rng.choice(self.n, size=size, replace=False)) if size < self.n else np.arange(self.n)
        train = self._space[sample] if self._space is not None else self._to_space(self._take(sample))
        train = np.ascontiguousarray(train, dtype=np.float32)
        self._release()
        if hnsw:  # assigning to a list costs an HNSW search, not nlist distances: lists can stay small at any N
            from faiss.contrib.clustering import two_level_clustering

            ctx.progress(0, None, f"two-level k-means: {nlist} lists from {size} rows")
            centroids, _ = two_level_clustering(train, max(2, int(round(np.sqrt(nlist)))), nlist, seed=int(cfg.seed))
            quantizer = faiss.IndexHNSWFlat(d, 32)
            quantizer.hnsw.efConstruction = 40
            quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
            quantizer.hnsw.efSearch = int(cfg.ivf_add_ef)  # adding: one list a row (queries: below)
        else:
            quantizer = faiss.IndexFlatL2(d)
        if self.backend == "ivfsq":
            codes = d
            index = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit)
            name = "IVF-SQ8"
        elif self.backend == "ivffs":
            codes = (d + 1) // 2  # one 4-bit sub-quantiser a dimension (FAISS pads an odd count)
            index = faiss.IndexIVFPQFastScan(quantizer, d, nlist, d, 4)
            name = "IVF-PQ4 fast scan"
        else:
            codes = max(1, d // int(cfg.pq_dims_per_code))
            while d % codes:  # PQ needs a divisor of d
                codes -= 1
            index = faiss.IndexIVFPQ(quantizer, d, nlist, codes, 8)
            name = "IVF-PQ"
        self._quantizer = quantizer  # the IVF index does not own it
        ctx.progress(0, None, f"training {name} ({nlist} lists, {codes} bytes a vector) on {size} rows")
        index.train(train)  # with an HNSW quantiser already holding nlist centroids: the codes only
        del train
        chunk = min(100_000, self._chunk(2 * self.dim))
        for begin in range(0, self.n, chunk):
            ctx.check()
            end = min(self.n, begin + chunk)
            index.add(np.ascontiguousarray(self._space_rows(begin, end), dtype=np.float32))
            self._release()
            ctx.progress(end, self.n, f"building {name} index")
        if hnsw:
            quantizer.hnsw.efSearch = max(64, 2 * nprobe)  # a query's nprobe lists
        index.nprobe = nprobe
        self._index = index
        self.ivf = {"codec": {"ivfsq": "sq8", "ivffs": "pq4fs"}.get(self.backend, "pq"), "nlist": nlist, "code_bytes": codes,
                    "nprobe": int(index.nprobe), "train_rows": int(size), "quantizer": "hnsw" if hnsw else "flat",
                    **({"add_ef": int(cfg.ivf_add_ef)} if hnsw else {})}
        self.timings["build"] = time.perf_counter() - start

    # -- queries -------------------------------------------------------------------------
    def _raw_query(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The approximate index's answer in its space: (int64 ids, -1 = none; unsquared distances)."""
        k = min(k, self.n)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.backend in IVF_BACKENDS:
            d2, lab = self._index.search(vectors, k)
        else:
            self._index.set_ef(max(self.config.ef, k + 1))
            lab, d2 = self._index.knn_query(vectors, k=k, num_threads=self.config.threads)
        return lab.astype(np.int64), np.sqrt(np.maximum(d2, 0.0)).astype(np.float32)

    def _rerank(self, queries: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact full-dimension distances for the candidate ids, re-sorted, first k kept.

        (numpy measured faster than a torch gather here: the cost is the memory traffic of the gather.)
        Candidate rows of memory-mapped features are read from the map, its pages released as it goes.
        """
        out_l = np.empty((queries.shape[0], k), dtype=np.int64)
        out_d = np.empty((queries.shape[0], k), dtype=np.float32)
        elements = min(1 << 22, self.config.knn_memory_mb * (1 << 18) // 4)  # float32s gathered at a time
        step = max(1, elements // max(1, labels.shape[1] * self.dim))
        for begin in range(0, queries.shape[0], step):
            end = min(queries.shape[0], begin + step)
            lab = labels[begin:end]
            missing = lab < 0  # FAISS pads with -1 when the visited lists hold fewer than k
            flat = np.where(missing, 0, lab).ravel()
            if self.mapped:  # sorted reads touch each page once
                order = np.argsort(flat, kind="stable")
                diff = np.empty((flat.size, self.dim), dtype=np.float32)
                diff[order] = self._take(flat[order])
                diff = diff.reshape(lab.shape + (self.dim,))
                self._touched += flat.size * max(mmap.PAGESIZE, 4 * self.dim)  # random rows: a page each, at worst
                if self._touched > self.config.knn_memory_mb << 20:
                    self._release()
            else:
                diff = self.features[np.where(missing, 0, lab)]
            diff -= queries[begin:end, None, :]
            d = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
            d[missing] = np.inf
            order = np.argsort(d, axis=1, kind="stable")[:, :k]
            out_l[begin:end] = np.take_along_axis(lab, order, axis=1)
            out_d[begin:end] = np.take_along_axis(d, order, axis=1)
        return out_l, out_d

    def _search(self, queries, k: int, ids: Optional[np.ndarray], ctx: JobContext
                ) -> tuple[np.ndarray, np.ndarray]:
        """Answer ``queries`` (rows, in RAM or mapped) chunk by chunk; ``ids``: their own ids (self excluded)."""
        if self.backend == "exact":
            base = self.features if not self.mapped else self._rows(0, self.n)
            return exact_knn(base, np.asarray(queries, dtype=np.float32), k, query_ids=ids,
                             device=_pick_device(self.config), ctx=ctx)
        extra = 1 if ids is not None else 0
        rerank = self.projected or self.backend in IVF_BACKENDS  # codes are approximate: always re-rank
        # 4-bit codes order candidates more coarsely than 8-bit ones: fetch more of them (recall: docs/performance.md)
        more = FAST_SCAN_RERANK_FACTOR if self.backend == "ivffs" else 1
        k_fetch = min(self.n, k + extra + (more * int(self.config.knn_rerank) if rerank else 0))
        k_eff = min(k, self.n - extra)
        every = ids is not None and ids.size == self.n and bool((ids == np.arange(self.n)).all())
        nq = queries.shape[0]
        out_l = np.empty((nq, k_eff), dtype=np.int64)
        out_d = np.empty((nq, k_eff), dtype=np.float32)
        chunk = min(20000, self._chunk(k_fetch * (self.dim + 2) + 2 * self.dim))
        name = {"hnsw": "HNSW query", "ivfpq": "IVF-PQ query", "ivfsq": "IVF-SQ8 query",
                "ivffs": "IVF-PQ4 fast-scan query"}[self.backend]
        for begin in range(0, nq, chunk):
            ctx.check()
            end = min(nq, begin + chunk)
            rows = np.ascontiguousarray(queries[begin:end], dtype=np.float32)
            space = self._space_rows(begin, end) if every else self._to_space(rows)
            labels, dist = self._raw_query(space, k_fetch)
            if rerank:
                labels, dist = self._rerank(rows, labels, k_fetch)
            if ids is not None:
                labels, dist = remove_self(labels, dist, ids[begin:end], k_eff)
            out_l[begin:end] = labels[:, :k_eff]
            out_d[begin:end] = dist[:, :k_eff]
            self._release()
            ctx.progress(end, nq, name)
        return out_l, out_d

    def query(self, vectors: np.ndarray, k: int, ctx: Optional[JobContext] = None) -> tuple[np.ndarray, np.ndarray]:
        """k nearest indexed samples of arbitrary vectors (same space as the index): (ids, distances)."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if vectors.shape[1] != self.dim:
            raise NaviewerError(f"query has {vectors.shape[1]} dims, the index has {self.dim}")
        return self._search(vectors, int(k), None, ensure_context(ctx))

    def neighbors_of(self, ids, k: int, ctx: Optional[JobContext] = None) -> tuple[np.ndarray, np.ndarray]:
        """k nearest neighbours of indexed samples, each sample itself excluded by id."""
        ids = np.atleast_1d(np.asarray(ids, dtype=np.int64))
        if ids.size and (ids.min() < 0 or ids.max() >= self.n):
            raise NaviewerError(f"sample id out of range 0..{self.n - 1}")
        every = ids.size == self.n and bool((ids == np.arange(self.n)).all())
        queries = self.features if every else self._take(ids)
        return self._search(queries, int(k), ids, ensure_context(ctx))

    def all_neighbors(self, k: int, ctx: Optional[JobContext] = None) -> KnnResult:
        """Neighbours of every sample: what d_k, density and rank are computed from."""
        start = time.perf_counter()
        labels, dist = self.neighbors_of(np.arange(self.n, dtype=np.int64), k, ctx)
        timings = dict(self.timings)
        timings["query"] = time.perf_counter() - start
        recall = None
        if self.backend != "exact" and self.config.recall_sample > 0:
            start = time.perf_counter()
            recall = self.recall_at_k(k, labels, self.config.recall_sample, ctx)
            timings["recall_check"] = time.perf_counter() - start
        return KnnResult(neighbors=labels, distances=dist, backend=self.backend, timings=timings, recall=recall)

    def exact_neighbors_of(self, ids: np.ndarray, k: int, ctx: Optional[JobContext] = None) -> np.ndarray:
        """Exact k nearest neighbours (ids) of indexed samples, self excluded, the base read in chunks:
        a running top-k over blocks of rows (one matrix product and one partition each), so a mapped
        base is never held whole."""
        ctx = ensure_context(ctx)
        ids = np.asarray(ids, dtype=np.int64)
        q2 = 2.0 * self._take(ids)
        k_eff = min(k, self.n - 1)
        best_d = np.empty((ids.size, 0), dtype=np.float32)
        best_i = np.empty((ids.size, 0), dtype=np.int64)
        step = self._chunk(self.dim + 4 * ids.size)  # the block, its distances, the partition's indices
        rows = np.arange(ids.size)
        for begin in range(0, self.n, step):
            ctx.check()
            end = min(self.n, begin + step)
            block = self._rows(begin, end)
            d2 = np.einsum("ij,ij->i", block, block)[None, :] - q2 @ block.T  # ||x||^2 - 2 q.x: same order as ||q-x||^2
            mine = (ids >= begin) & (ids < end)
            d2[rows[mine], ids[mine] - begin] = np.inf
            take = min(k_eff, d2.shape[1])
            part = np.argpartition(d2, take - 1, axis=1)[:, :take] if take < d2.shape[1] else \
                np.broadcast_to(np.arange(d2.shape[1]), d2.shape)
            cand_d = np.concatenate([best_d, np.take_along_axis(d2, part, axis=1)], axis=1)
            cand_i = np.concatenate([best_i, part + begin], axis=1)
            keep = np.argsort(cand_d, axis=1, kind="stable")[:, :k_eff]
            best_d = np.take_along_axis(cand_d, keep, axis=1)
            best_i = np.take_along_axis(cand_i, keep, axis=1)
            del block, d2
            self._release()
        return best_i

    def recall_at_k(self, k: int, labels: np.ndarray, sample: int, ctx: Optional[JobContext] = None) -> float:
        """Mean |approximate ∩ exact| / k over a seeded sample of rows (``labels``: the approximate
        neighbours of every row), the exact answer over all rows (:meth:`exact_neighbors_of`)."""
        rng = np.random.default_rng(self.config.seed)
        ids = np.sort(rng.choice(self.n, size=min(int(sample), self.n), replace=False))
        if self.mapped:
            exact = self.exact_neighbors_of(ids, k, ctx)
        else:
            exact, _ = exact_knn(self.features, self.features[ids], k, query_ids=ids,
                                 device=_pick_device(self.config), ctx=ensure_context(ctx))
        hits = [np.intersect1d(labels[row, :k], exact[i]).size for i, row in enumerate(ids)]
        return float(np.mean(hits) / max(1, exact.shape[1]))


def knn_density(features: np.ndarray, config: Optional[DiftConfig] = None, ctx: Optional[JobContext] = None,
                normalize: Optional[bool] = None) -> tuple[KnnResult, KnnIndex]:
    """d_k, density and rank of every sample; returns the index too, for later neighbour queries."""
    config = (config or DiftConfig()).validate()
    norm = config.normalize if normalize is None else normalize
    z = as_float32(features, norm, memory_mb=config.knn_memory_mb)
    if z.shape[0] <= config.k:
        raise NaviewerError(f"need more than k={config.k} samples for kNN density, got {z.shape[0]}")
    index = KnnIndex(z, config, ctx)
    return index.all_neighbors(config.k, ctx), index
