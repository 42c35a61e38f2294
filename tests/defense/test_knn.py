from __future__ import annotations

import numpy as np
import pytest

from naviewer.defense.config import DiftConfig
from naviewer.defense.knn import KnnIndex, exact_knn, faiss_available, knn_density, remove_self
from naviewer.defense.synthetic import make_embeddings, planted_cluster
from naviewer.errors import NaviewerError


#: every backend answers the same tests (FAISS IVF-PQ where faiss is installed, as the package requires)
BACKENDS = ("exact", "hnsw") + (("ivfpq",) if faiss_available() else ())


def _recall(approx: np.ndarray, exact: np.ndarray) -> float:
    hits = sum(len(np.intersect1d(a, e)) for a, e in zip(approx, exact))
    return hits / exact.size


def test_remove_self_by_id_not_by_column_and_cast_to_int64():
    labels = np.array([[5, 0, 7], [1, 2, 3], [9, 8, 2]], dtype=np.uint64)  # row 0: self (0) in column 1
    dist = np.array([[0.0, 0.0, 0.5], [0.0, 0.1, 0.2], [0.1, 0.2, 0.3]], dtype=np.float32)
    ids, d = remove_self(labels, dist, np.array([0, 1, 2]), k=2)
    assert ids.dtype == np.int64
    assert ids.tolist() == [[5, 7], [2, 3], [9, 8]]  # row 2: self present in the last column
    assert np.allclose(d, [[0.0, 0.5], [0.1, 0.2], [0.1, 0.2]])
    # self absent from a row: the last column is dropped
    ids, _ = remove_self(np.array([[4, 5, 6]], dtype=np.uint64), dist[:1], np.array([0]), k=2)
    assert ids.tolist() == [[4, 5]]
    mixed = np.concatenate([ids.ravel(), np.arange(2, dtype=np.int64)])
    assert mixed.dtype == np.int64


def test_exact_knn_matches_brute_force_and_excludes_self():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    x[7] = x[3]  # an exact duplicate: distance 0 must survive, self must not
    ids, d = exact_knn(x, x, 5, query_ids=np.arange(300))
    full = np.linalg.norm(x[:, None] - x[None], axis=2)
    np.fill_diagonal(full, np.inf)
    want = np.sort(full, axis=1)[:, :5]
    assert np.allclose(d, want, atol=1e-5)
    assert (ids != np.arange(300)[:, None]).all()
    assert ids[3, 0] == 7 and d[3, 0] == pytest.approx(0.0, abs=1e-6)


def test_planted_tight_cluster_ranks_first():
    x, mask = planted_cluster(n=1500, dim=24, cluster=40, seed=3)
    for backend in BACKENDS:
        knn, _ = knn_density(x, DiftConfig(k=10, knn_backend=backend, num_threads=2))
        assert set(np.flatnonzero(knn.rank < 40)) == set(np.flatnonzero(mask))
        assert knn.rank.min() == 0 and np.unique(knn.rank).size == 1500
        assert (knn.density[mask].min() > knn.density[~mask].max())


@pytest.mark.parametrize("dims", [None, 32])
def test_hnsw_recall_vs_exact_on_clustered_embeddings(dims):
    s = make_embeddings(4000, 128, n_classes=20, intrinsic_dim=16, seed=2)
    config = DiftConfig(k=20, knn_backend="hnsw", knn_dims=dims, num_threads=2)
    knn, index = knn_density(s.features, config)
    exact_ids, exact_d = exact_knn(index.features, index.features, 20, query_ids=np.arange(4000))
    assert _recall(knn.neighbors, exact_ids) >= 0.98
    assert np.median(np.abs(knn.kth_distance - exact_d[:, -1])) < 1e-3
    assert knn.neighbors.dtype == np.int64


@pytest.mark.slow  # over 6 s on 2 shared cores
@pytest.mark.skipif(not faiss_available(), reason="faiss is not installed")
def test_ivfpq_recall_vs_exact_is_measured_and_reported():
    s = make_embeddings(4000, 128, n_classes=20, intrinsic_dim=16, seed=2)
    config = DiftConfig(k=20, knn_backend="ivfpq", num_threads=2, recall_sample=400)
    knn, index = knn_density(s.features, config)
    exact_ids, exact_d = exact_knn(index.features, index.features, 20, query_ids=np.arange(4000))
    measured = _recall(knn.neighbors, exact_ids)
    assert measured >= 0.95
    assert knn.backend == "ivfpq" and abs(knn.recall - measured) < 0.03  # the sample's estimate holds
    assert np.median(np.abs(knn.kth_distance - exact_d[:, -1])) < 1e-3  # re-ranked: exact distances
    assert index.ivf["code_bytes"] == 32 and index.ivf["nlist"] >= 1


@pytest.mark.skipif(not faiss_available(), reason="faiss is not installed")
def test_auto_picks_ivfpq_above_the_hnsw_size_and_exact_reports_no_recall():
    x, _ = planted_cluster(n=3000, dim=16, cluster=20, seed=0)
    index = KnnIndex(x, DiftConfig(exact_max_n=100, approx_max_n=1000))
    assert index.backend == "ivfpq"
    assert KnnIndex(x, DiftConfig(exact_max_n=100)).backend == "hnsw"
    assert knn_density(x, DiftConfig(k=5, knn_backend="exact"))[0].recall is None


def test_hnsw_recall_on_real_cifar_features_of_a_random_resnet(cifar10_root):
    torch = pytest.importorskip("torch")
    from naviewer.data.cifar import CifarDataset
    from naviewer.ssl.backbones import BackboneConfig, build_backbone

    data = CifarDataset(cifar10_root, "train")
    images = np.stack([data.image(i) for i in range(1000)])
    torch.manual_seed(0)
    net = build_backbone(BackboneConfig(arch="resnet18", cifar_stem=True, width=8)).eval()
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        feats = torch.cat([net((x[i:i + 250] - 0.5) / 0.25) for i in range(0, 1000, 250)]).numpy()
    config = DiftConfig(k=20, knn_backend="hnsw", num_threads=2)
    knn, index = knn_density(feats, config)
    exact_ids, _ = exact_knn(index.features, index.features, 20, query_ids=np.arange(1000))
    assert _recall(knn.neighbors, exact_ids) >= 0.98


def test_index_answers_single_sample_queries():
    x, _ = planted_cluster(n=500, dim=8, cluster=10, seed=1)
    for backend in BACKENDS:
        index = KnnIndex(x, DiftConfig(knn_backend=backend, num_threads=1))
        ids, d = index.neighbors_of(42, 5)
        assert ids.shape == (1, 5) and 42 not in ids[0]
        q_ids, q_d = index.query(x[42], 5)
        assert q_ids[0, 0] == 42 and q_d[0, 0] == pytest.approx(0.0, abs=1e-5)
        assert np.all(np.diff(d[0]) >= 0)
    with pytest.raises(NaviewerError):
        index.neighbors_of(10_000, 3)


def test_bad_embeddings_are_user_errors():
    with pytest.raises(NaviewerError):
        knn_density(np.zeros((0, 4)))
    bad = np.ones((50, 4), dtype=np.float32)
    bad[3, 1] = np.nan
    with pytest.raises(NaviewerError):
        knn_density(bad)
    with pytest.raises(NaviewerError):
        knn_density(np.random.rand(10, 4), DiftConfig(k=20))
