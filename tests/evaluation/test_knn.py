import numpy as np
import pytest

from naviewer.errors import NaviewerError
from naviewer.evaluation.knn import knn_accuracy, knn_predict, knn_scores


def test_scores_match_direct_formula():
    rng = np.random.default_rng(0)
    bank, labels, queries = rng.normal(size=(30, 5)), rng.integers(0, 3, 30), rng.normal(size=(4, 5))
    got = knn_scores(bank, labels, queries, 3, k=7, temperature=0.1, chunk=3)
    b = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    for i in range(4):
        sim = b @ q[i]
        top = np.argsort(-sim)[:7]
        expected = np.zeros(3)
        np.add.at(expected, labels[top], np.exp(sim[top] / 0.1))
        assert np.allclose(got[i], expected, rtol=1e-4)


def test_separable_clusters_and_leave_one_out():
    rng = np.random.default_rng(1)
    centres = np.eye(4)[:, :4] * 5
    labels = np.repeat(np.arange(4), 25)
    feats = centres[labels] + rng.normal(scale=0.3, size=(100, 4))
    assert knn_accuracy(feats, labels, feats, labels, k=10, exclude_self=True) == 1.0
    pred = knn_predict(feats, labels, feats[:3] + 0.01, k=200)
    assert (pred == labels[:3]).all()


def test_unlabelled_bank_rejected():
    with pytest.raises(NaviewerError):
        knn_scores(np.ones((3, 2)), np.full(3, -1), np.ones((1, 2)))
