"""Dataset sources: CIFAR pickles, image folders, file lists, CSV manifests, the built-in demo set.

Every source returns the :class:`~naviewer.data.base.ImageDataset` interface; ``open_dataset``
recognises them from a path, ``"demo"`` or a ``describe()`` dict. Heavy modules load lazily.
"""

from naviewer.data.base import UNLABELED, ArrayDataset, DatasetWarning, ImageDataset, SubsetDataset, pixel_hash
from naviewer.data.sources import open_dataset

__all__ = [
    "UNLABELED",
    "ArrayDataset",
    "DatasetWarning",
    "ImageDataset",
    "SubsetDataset",
    "open_dataset",
    "pixel_hash",
]
