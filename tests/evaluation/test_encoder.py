import numpy as np
import torch

from naviewer.data.store import ImageStore
from naviewer.evaluation.encoder import evaluate_encoder, triggered_store
from naviewer.evaluation.linear import LinearProbeSettings
from naviewer.ssl.backbones import build_backbone


def _store(n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    images = rng.integers(0, 100, (n, 16, 16, 3))
    images[np.arange(n), :, :, labels] += 150  # the class is the dominant colour
    return ImageStore.from_array(images.astype(np.uint8), labels, ["r", "g", "b"])


def _red_trigger(images, rng):
    out = images.copy()
    out[:, :, :, 0] = 255
    out[:, :, :, 1:] = 0
    return out


def test_evaluate_encoder_reports_accuracy_and_asr():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    backbone = build_backbone({"arch": "resnet10", "width": 8})
    train, test = _store(90, 0), _store(30, 1)
    result = evaluate_encoder(backbone, train, test, trigger_fn=_red_trigger, target=0, k=20,
                              linear_settings=LinearProbeSettings(epochs=30, lr=0.1))
    for key in ("knn_acc", "linear_acc", "knn_asr_nt", "knn_asr_all", "linear_asr_nt", "linear_asr_all"):
        assert 0.0 <= result[key] <= 1.0, key
    assert result["knn_acc"] > 0.6  # colour is easy even for a random encoder
    assert result["knn_asr_nt"] > 0.8  # an all-red image looks like class 0


def test_triggered_store_keeps_sizes_and_labels():
    store = _store(5, 0)
    trig = triggered_store(store, _red_trigger, np.random.default_rng(0))
    assert np.array_equal(trig.labels, store.labels) and trig.sizes.tolist() == store.sizes.tolist()
    assert (trig.image(0)[..., 0] == 255).all() and not (store.image(0)[..., 0] == 255).all()


def test_a_trigger_that_does_not_fit_names_the_images_it_does_not_fit():
    """eval --attack patch over a set holding a 1x1 image said "a 8 px trigger does not fit in a 1 px image" and no
    image (a fuzz, session 34)."""
    import pytest

    from naviewer.data.store import ImageStore
    from naviewer.errors import NaviewerError
    from naviewer.evaluation.encoder import triggered_store

    store = ImageStore.from_images([np.zeros((16, 16, 3), np.uint8), np.zeros((1, 1, 3), np.uint8)],
                                   np.array([0, 1]), ["a", "b"])

    def trigger(images, _rng):
        if images.shape[1] < 8:
            raise NaviewerError(f"a 8 px trigger does not fit in a {images.shape[1]} px image")
        return images

    with pytest.raises(NaviewerError, match=r"does not fit in a 1 px image: the image is 1x1 px \(sample 1 of the set\); "
                                            "leave such images out of the set"):
        triggered_store(store, trigger, np.random.default_rng(0))

    def opacity(images, _rng):  # another problem of the trigger: said as it is, no size advice
        raise NaviewerError("opacity must be in (0, 1]")

    with pytest.raises(NaviewerError, match=r"^opacity must be in \(0, 1\]$"):
        triggered_store(store, opacity, np.random.default_rng(0))
