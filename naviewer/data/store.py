"""A fast in-memory image store: every image of a dataset decoded once into uint8 arrays.

Images of the same size share one contiguous (n, H, W, 3) array (a *bucket*): CIFAR-10 is a single
150 MB bucket, and a CIFAR set with Noisy Alignment composites has three (32x32, 32x64, 64x32).
Batched augmentation crops each bucket at its true size, so 2:1 composites are never squashed and
no per-image Python loop runs in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np

from naviewer.data.base import ImageDataset
from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context


@dataclass(frozen=True)
class SizeBucket:
    """All samples of one (height, width): ``images[k]`` is sample ``indices[k]`` of the store."""

    height: int
    width: int
    indices: np.ndarray  # int64, ascending sample indices
    images: np.ndarray  # uint8 (len(indices), height, width, 3)


class ImageStore:
    """Decoded images grouped by size, with labels; indexable like a dataset."""

    def __init__(self, buckets: Sequence[SizeBucket], labels: np.ndarray, class_names: Sequence[str]) -> None:
        self.buckets: list[SizeBucket] = list(buckets)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.class_names = list(class_names)
        n = len(self.labels)
        self.bucket_of = np.full(n, -1, dtype=np.int64)
        self.position = np.full(n, -1, dtype=np.int64)
        for b, bucket in enumerate(self.buckets):
            self.bucket_of[bucket.indices] = b
            self.position[bucket.indices] = np.arange(len(bucket.indices))
        if n and (self.bucket_of < 0).any():
            raise ValueError("every sample must belong to exactly one size bucket")
        heights = np.array([bk.height for bk in self.buckets], dtype=np.int64)
        widths = np.array([bk.width for bk in self.buckets], dtype=np.int64)
        self.sizes = (
            np.stack([heights[self.bucket_of], widths[self.bucket_of]], axis=1) if n else np.zeros((0, 2), np.int64)
        )

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_images(
        cls, images: Iterable[np.ndarray], labels: Sequence[int] | np.ndarray, class_names: Sequence[str]
    ) -> "ImageStore":
        groups: dict[tuple[int, int], list[tuple[int, np.ndarray]]] = {}
        count = 0
        for index, image in enumerate(images):
            image = np.asarray(image, dtype=np.uint8)
            if image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f"image {index} has shape {image.shape}, expected (H, W, 3)")
            groups.setdefault((image.shape[0], image.shape[1]), []).append((index, image))
            count += 1
        buckets = []
        for (h, w), items in sorted(groups.items()):
            idx = np.array([i for i, _ in items], dtype=np.int64)
            arr = np.stack([img for _, img in items]).astype(np.uint8, copy=False)
            buckets.append(SizeBucket(h, w, idx, arr))
        labels_arr = np.asarray(labels, dtype=np.int64)
        if len(labels_arr) != count:
            raise ValueError(f"{count} images but {len(labels_arr)} labels")
        return cls(buckets, labels_arr, class_names)

    @classmethod
    def from_array(cls, images: np.ndarray, labels: Sequence[int] | np.ndarray, class_names: Sequence[str]) -> "ImageStore":
        """A fixed-size store from an (N, H, W, 3) uint8 array, without copying."""
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
            raise ValueError(f"expected uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
        bucket = SizeBucket(images.shape[1], images.shape[2], np.arange(len(images), dtype=np.int64), images)
        return cls([bucket] if len(images) else [], labels, class_names)

    @classmethod
    def from_dataset(cls, dataset: ImageDataset, ctx: Optional[JobContext] = None,
                     message: str = "loading images") -> "ImageStore":
        """Decode every image of ``dataset`` once (with progress named ``message``, and cancel)."""
        ctx = ensure_context(ctx)
        n = len(dataset)
        if n == 0:
            raise NaviewerError("the dataset has no images", getattr(dataset, "root", None))
        whole = dataset.as_array()
        if whole is not None and len(whole) == n:
            # the source already holds one (N, H, W, 3) array (CIFAR, demo): no per-image loop
            ctx.check()
            ctx.progress(n, n, message)
            return cls.from_array(whole, dataset.labels, dataset.class_names)

        def decoded():
            for index in range(n):
                if index % 256 == 0:
                    ctx.check()
                    ctx.progress(index, n, message)
                yield dataset.image(index)
            ctx.progress(n, n, message)

        return cls.from_images(decoded(), dataset.labels, dataset.class_names)

    # -- access ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.labels)

    def image(self, index: int) -> np.ndarray:
        bucket = self.buckets[self.bucket_of[index]]
        return bucket.images[self.position[index]]

    @property
    def fixed_size(self) -> Optional[tuple[int, int]]:
        """(H, W) when every image has the same size, else None."""
        return (self.buckets[0].height, self.buckets[0].width) if len(self.buckets) == 1 else None

    @property
    def nbytes(self) -> int:
        return int(sum(b.images.nbytes for b in self.buckets))

    def subset(self, indices: Sequence[int] | np.ndarray) -> "ImageStore":
        """A new store with samples ``indices`` (renumbered 0..len-1, in the given order)."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"subset indices out of range for a store of {len(self)} samples")
        bucket_of = self.bucket_of[indices]
        buckets = []
        for b, bucket in enumerate(self.buckets):  # one fancy-indexing copy per size bucket
            new_indices = np.flatnonzero(bucket_of == b).astype(np.int64)
            if new_indices.size:
                images = bucket.images[self.position[indices[new_indices]]]
                buckets.append(SizeBucket(bucket.height, bucket.width, new_indices, images))
        return ImageStore(buckets, self.labels[indices], self.class_names)


DEFAULT_DECODE_MB = 512


class LazyImageStore:
    """A dataset's images decoded only when asked for, a bounded chunk at a time.

    An :class:`ImageStore` decodes everything once, which is what training wants but makes a single
    pass over 10M file-list images need the whole decoded set in RAM. Passes that visit each image
    once (embedding extraction, sharded or not) take this instead: :meth:`chunks` decodes about
    ``decode_mb`` of images at a time (peak about twice that while a chunk is stacked), and
    :meth:`subset` decodes only the rows asked for, so peak RSS is bounded by the setting, not by N.
    """

    def __init__(self, dataset: ImageDataset, decode_mb: float = DEFAULT_DECODE_MB) -> None:
        if not decode_mb > 0:
            raise NaviewerError(f"the decode budget must be > 0 MB, got {decode_mb}")
        self.dataset = dataset
        self.decode_bytes = int(float(decode_mb) * 2**20)
        self.labels = np.asarray(dataset.labels, dtype=np.int64)
        self.class_names = list(dataset.class_names)

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, index: int) -> np.ndarray:
        return np.asarray(self.dataset.image(int(index)), dtype=np.uint8)

    def subset(self, indices: Sequence[int] | np.ndarray) -> ImageStore:
        """The rows ``indices`` decoded (renumbered 0..len-1, in the given order), like ImageStore.subset."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"subset indices out of range for a store of {len(self)} samples")
        return ImageStore.from_images((self.image(i) for i in indices), self.labels[indices], self.class_names)

    def rows(self, begin: int, end: int) -> "LazyImageStore":
        """Rows [begin, end) as a lazy store of their own (a shard), with the same decode budget."""
        from naviewer.data.base import SubsetDataset

        return LazyImageStore(SubsetDataset(self.dataset, np.arange(begin, end)), self.decode_bytes / 2**20)

    def chunks(self, ctx: Optional[JobContext] = None) -> Iterator[tuple[int, ImageStore]]:
        """(offset, the decoded rows offset..offset+len-1) in order, each about ``decode_mb``."""
        ctx = ensure_context(ctx)
        n = len(self)
        begin, held, images = 0, 0, []
        for index in range(n):
            if index % 256 == 0:
                ctx.check()
            image = self.image(index)
            images.append(image)
            held += image.nbytes
            if held >= self.decode_bytes or index == n - 1:
                yield begin, ImageStore.from_images(images, self.labels[begin:index + 1], self.class_names)
                begin, held, images = index + 1, 0, []

    def materialize(self, ctx: Optional[JobContext] = None, message: str = "loading images") -> ImageStore:
        """Everything decoded (for the detectors that revisit images at random)."""
        return ImageStore.from_dataset(self.dataset, ctx, message)


def streaming_store(dataset: ImageDataset, decode_mb: float = DEFAULT_DECODE_MB) -> "ImageStore | LazyImageStore":
    """The store a one-visit pass should read: the dataset's own array when it holds one in memory
    already (CIFAR, the demo: a view, no copy), else a :class:`LazyImageStore`."""
    if len(dataset) == 0:
        raise NaviewerError("the dataset has no images", getattr(dataset, "root", None))
    whole = dataset.as_array()
    if whole is not None and len(whole) == len(dataset):
        return ImageStore.from_array(whole, dataset.labels, dataset.class_names)
    return LazyImageStore(dataset, decode_mb)


def store_rows(store: "ImageStore | LazyImageStore", begin: int, end: int) -> "ImageStore | LazyImageStore":
    """Rows [begin, end) of either kind of store (a lazy one stays lazy)."""
    if isinstance(store, LazyImageStore):
        return store.rows(begin, end)
    return store.subset(np.arange(begin, end))
