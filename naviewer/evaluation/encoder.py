"""Evaluate a frozen encoder: kNN and linear-probe clean accuracy, and ASR under a test trigger."""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
from torch import nn

from naviewer.data.store import ImageStore, SizeBucket
from naviewer.errors import NaviewerError
from naviewer.evaluation.asr import accuracy, attack_success_rates
from naviewer.evaluation.knn import knn_predict
from naviewer.evaluation.linear import LinearProbeSettings, train_linear_probe
from naviewer.jobs import JobContext, ensure_context

TriggerFn = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def triggered_store(store: ImageStore, trigger_fn: TriggerFn, rng: np.random.Generator) -> ImageStore:
    """``store`` with ``trigger_fn`` applied to every image (bucket by bucket, sizes kept if possible)."""
    buckets = []
    same_size = True
    for bucket in store.buckets:
        try:
            images = np.asarray(trigger_fn(bucket.images.copy(), rng), dtype=np.uint8)
        except NaviewerError as exc:
            if exc.path is not None or "does not fit" not in exc.message:  # (an opacity or a setting: no size advice)
                raise
            # "a 8 px trigger does not fit in a 1 px image" named no image (a fuzz, session 34): which, and what to
            # do, as the crafting's own check says it (attacks.base)
            count = len(bucket.indices)
            many = f" (and {count - 1:,} more of that size)" if count > 1 else ""
            raise NaviewerError(f"{exc.message}: the image is {bucket.width}x{bucket.height} px (sample "
                                f"{int(bucket.indices[0])} of the set){many}; leave such images out of the set, or "
                                "choose a smaller trigger") from None
        if images.shape != bucket.images.shape:
            same_size = False
        buckets.append((bucket, images))
    if same_size:
        return ImageStore([SizeBucket(b.height, b.width, b.indices, im) for b, im in buckets], store.labels,
                          store.class_names)
    images: list[Optional[np.ndarray]] = [None] * len(store)
    for bucket, triggered in buckets:
        for k, index in enumerate(bucket.indices):
            images[index] = triggered[k]
    return ImageStore.from_images(images, store.labels, store.class_names)  # type: ignore[arg-type]


def evaluate_encoder(
    backbone: nn.Module,
    train_store: ImageStore,
    test_store: ImageStore,
    trigger_fn: Optional[TriggerFn] = None,
    target: Optional[int] = None,
    *,
    image_size: Optional[int] = None,
    device: Any = None,
    k: int = 200,
    temperature: float = 0.1,
    linear: bool = True,
    linear_settings: Optional[LinearProbeSettings] = None,
    batch_size: int = 256,
    seed: int = 0,
    ctx: Optional[JobContext] = None,
) -> dict[str, Any]:
    """Clean kNN/linear accuracy on ``test_store`` (bank/probe trained on the clean labelled
    ``train_store``) and, with ``trigger_fn`` and ``target``, ASR_nt / ASR_all / backdoor accuracy
    of both classifiers on the triggered test set.

    The linear probe is trained on ``train_store`` alone and reported after its LAST epoch (no epoch
    is selected on the test set; see :mod:`naviewer.evaluation.linear`).
    """
    from naviewer.ssl.embed import extract_embeddings

    ctx = ensure_context(ctx)
    if (train_store.labels < 0).all() or (test_store.labels < 0).all():
        raise NaviewerError("evaluation needs labelled train and test datasets")
    if trigger_fn is not None and target is None:
        raise NaviewerError("an ASR evaluation needs the target class")
    classes = int(max(train_store.labels.max(), test_store.labels.max()) + 1)
    kw = dict(device=device, batch_size=batch_size, image_size=image_size, ctx=ctx)
    train_f = extract_embeddings(backbone, train_store, message="embedding train set", **kw)
    test_f = extract_embeddings(backbone, test_store, message="embedding test set", **kw)
    trig_f = None
    if trigger_fn is not None:
        trig = triggered_store(test_store, trigger_fn, np.random.default_rng(seed))
        trig_f = extract_embeddings(backbone, trig, message="embedding triggered test set", **kw)

    result: dict[str, Any] = {"n_train": len(train_store), "n_test": len(test_store), "k": k,
                              "temperature": temperature}
    ctx.progress(0, None, "kNN classifier")
    pred = knn_predict(train_f, train_store.labels, test_f, classes, k, temperature)
    result["knn_acc"] = accuracy(pred, test_store.labels)
    if trig_f is not None:
        trig_pred = knn_predict(train_f, train_store.labels, trig_f, classes, k, temperature)
        result.update({f"knn_{key}": v for key, v in
                       attack_success_rates(trig_pred, test_store.labels, int(target)).items()})
        result["target"] = int(target)
    if linear:
        ctx.progress(0, None, "linear probe")
        probe = train_linear_probe(train_f, train_store.labels, classes, linear_settings)
        result["linear_acc"] = accuracy(probe.predict(test_f), test_store.labels)
        if trig_f is not None:
            result.update({f"linear_{key}": v for key, v in
                           attack_success_rates(probe.predict(trig_f), test_store.labels, int(target)).items()})
    return result
