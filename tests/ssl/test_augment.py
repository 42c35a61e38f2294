import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF

from naviewer.data.store import ImageStore
from naviewer.ssl.augment import (
    AugmentSettings, BatchAugment, EvalTransform, adjust_contrast, adjust_hue, adjust_saturation, gaussian_blur,
)
from sslkit import make_store


def test_output_shape_dtype_and_range():
    store = make_store(n=20, wide=4)
    aug = BatchAugment(AugmentSettings(image_size=16))
    v1, v2 = aug.two_views(store, np.arange(24), np.random.default_rng(0))
    assert v1.shape == v2.shape == (24, 3, 16, 16) and v1.dtype == torch.float32
    raw = BatchAugment(AugmentSettings(image_size=16, normalize=False))(store, np.arange(24), np.random.default_rng(0))
    assert float(raw.min()) >= 0.0 and float(raw.max()) <= 1.0
    assert not torch.equal(v1, v2)


def test_per_sample_parameters_differ():
    aug = BatchAugment()
    p = aug.sample_params(np.full((64, 2), 32), np.random.default_rng(0))
    assert len(np.unique(p.boxes.as_array(), axis=0)) > 50
    assert len(np.unique(p.brightness)) == 64 and len(np.unique(p.sigma)) == 64
    assert 0 < p.flip.sum() < 64 and 0 < p.grayscale.sum() < 64 and 0 < p.blur.sum() < 64
    assert len({tuple(o) for o in p.order}) > 5  # per-sample jitter order


def test_crops_respect_true_size_of_wide_composites():
    aug = BatchAugment()
    sizes = np.tile([[32, 64]], (2000, 1))
    boxes = aug.sample_params(sizes, np.random.default_rng(1)).boxes
    assert (boxes.bottom <= 32).all() and (boxes.right <= 64).all()
    assert (boxes.left >= 32).any()  # a crop can come entirely from the right half
    assert (boxes.width > 32).any()


def test_wide_composite_right_half_crop_sees_right_half_pixels():
    left = np.zeros((16, 16, 3), np.uint8)
    right = np.full((16, 16, 3), 255, np.uint8)
    store = ImageStore.from_images([np.concatenate([left, right], axis=1)], [0], ["a"])
    aug = BatchAugment(AugmentSettings(image_size=8, normalize=False, jitter_p=0, grayscale_p=0, blur_p=0))
    params = aug.sample_params(store.sizes[[0]], np.random.default_rng(0))
    from naviewer.data.crops import CropBoxes

    params.boxes = CropBoxes(np.array([2]), np.array([18]), np.array([10]), np.array([12]))
    out = aug.apply(store, np.array([0]), params)
    assert torch.allclose(out, torch.ones_like(out))


def test_colour_ops_match_torchvision():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 8, 8)
    f = torch.tensor([0.6, 1.4, 1.0, 0.8])
    h = torch.tensor([0.1, -0.05, 0.0, 0.3])
    ref_c = torch.stack([TF.adjust_contrast(x[i], float(f[i])) for i in range(4)])
    ref_s = torch.stack([TF.adjust_saturation(x[i], float(f[i])) for i in range(4)])
    ref_h = torch.stack([TF.adjust_hue(x[i], float(h[i])) for i in range(4)])
    assert torch.allclose(adjust_contrast(x.clone(), f), ref_c, atol=1e-4)
    assert torch.allclose(adjust_saturation(x.clone(), f), ref_s, atol=1e-4)
    assert torch.allclose(adjust_hue(x, h), ref_h, atol=1e-4)


def test_blur_per_sample_sigma():
    x = torch.zeros(2, 3, 9, 9)
    x[:, :, 4, 4] = 1.0
    out = gaussian_blur(x, torch.tensor([0.1, 2.0]), 5)
    assert out[0, 0, 4, 4] > 0.99 and out[1, 0, 4, 4] < 0.2
    assert torch.allclose(out.sum(dim=(2, 3)), torch.ones(2, 3), atol=1e-5)


def test_reproducible_from_generator_state():
    store = make_store(n=10)
    aug = BatchAugment(AugmentSettings(image_size=16))
    a = aug(store, np.arange(10), np.random.default_rng(5))
    b = aug(store, np.arange(10), np.random.default_rng(5))
    assert torch.equal(a, b)


def test_eval_transform_resizes_composites():
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (3, 16, 32, 3), dtype=np.uint8))
    out = EvalTransform(16)(images)
    assert out.shape == (3, 3, 16, 16)
    same = EvalTransform(16, normalize=False)(images[:, :, :16])
    assert torch.allclose(same * 255, images[:, :, :16].permute(0, 3, 1, 2).float(), atol=1e-3)


def test_device_cache_path_matches_host_path():
    """The CUDA path keeps the store on the device and gathers with index_select; emulate it on the CPU."""
    from naviewer.ssl.augment import _BucketCache

    store = make_store(n=12, wide=3)
    aug = BatchAugment(AugmentSettings(image_size=16))
    idx = np.array([0, 13, 5, 5, 14])
    params = aug.sample_params(store.sizes[idx], np.random.default_rng(2))
    host = aug.apply(store, idx, params)
    aug._cache = _BucketCache(store, torch.device("cpu"), on_device=True)
    cached = aug.apply(store, idx, params)
    assert torch.equal(host, cached)


def test_cpu_augmentation_runs_on_its_own_thread_count_and_restores_the_process_one():
    """On the CPU the augmentation runs single-threaded (it collapses under load with more) and leaves
    torch's thread count as it found it; the views are the same as with the process's threads."""
    import numpy as np
    import torch

    from naviewer.data.store import ImageStore
    from naviewer.ssl.augment import BatchAugment

    rng = np.random.default_rng(0)
    store = ImageStore.from_array(rng.integers(0, 256, size=(20, 24, 24, 3), dtype=np.uint8),
                                  np.zeros(20, dtype=np.int64), ["x"])
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        one = BatchAugment(image_size=16).two_views(store, np.arange(20), np.random.default_rng(1), "cpu")
        assert torch.get_num_threads() == 2
        proc = BatchAugment(image_size=16, cpu_threads=None).two_views(store, np.arange(20),
                                                                       np.random.default_rng(1), "cpu")
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(one, proc))
    finally:
        torch.set_num_threads(before)


def test_a_very_thin_image_is_resized_without_exhausting_memory():
    """A 60,000,000 x 1 PNG (under the 64 Mpx limit) made roi_align's adaptive grid precompute 3.75M points a bin
    (std::bad_alloc in embed and detect). Its box gets a capped grid; the other boxes of the batch keep the adaptive
    one, so an ordinary crop does not depend on its batch-mates."""
    import torch

    from naviewer.ssl.augment import _oversized, crop_resize

    images = torch.zeros((2, 2_000_000, 8, 3), dtype=torch.uint8)
    images[0] = 200
    images[1, :64, :, :] = torch.arange(64, dtype=torch.uint8).view(64, 1, 1) * 3
    boxes = torch.tensor([[0.0, 0.0, 0.0, 1.0, 2_000_000.0], [1.0, 0.0, 0.0, 8.0, 64.0]])
    assert _oversized(boxes, 16).tolist() == [True, False]
    out = crop_resize(images, boxes, 16)
    assert out.shape == (2, 3, 16, 16) and torch.isfinite(out).all()
    alone = crop_resize(images[1:], torch.tensor([[0.0, 0.0, 0.0, 8.0, 64.0]]), 16)
    assert torch.equal(out[1], alone[0])  # the same crop as without the huge batch-mate
