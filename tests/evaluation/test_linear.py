import numpy as np

from naviewer.evaluation.linear import LinearProbeSettings, train_linear_probe


def test_probe_learns_separable_classes_and_is_deterministic():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    feats = rng.normal(size=(300, 16)).astype(np.float32)
    feats[np.arange(300), labels] += 3.0
    settings = LinearProbeSettings(epochs=30, lr=0.1, milestones=(20, 25))
    probe = train_linear_probe(feats, labels, 3, settings)
    assert (probe.predict(feats) == labels).mean() > 0.9
    again = train_linear_probe(feats, labels, 3, settings)
    assert np.array_equal(probe.predict(feats), again.predict(feats))


def test_defaults_follow_spec():
    s = LinearProbeSettings()
    assert (s.epochs, s.lr, s.momentum, s.weight_decay, tuple(s.milestones)) == (40, 0.01, 0.9, 1e-4, (15, 30, 40))
