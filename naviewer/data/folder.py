"""Image-folder trees: ``root/<class>/<image>``, the torchvision ``ImageFolder`` layout.

Class names are the sorted names of the sub-folders of ``root`` (label = position in that list);
images are every file with an extension Pillow can open, found recursively under each class
folder, in sorted order. Hidden files and folders (``.name``) and files directly in ``root`` are
ignored. An *empty class folder* keeps its place in ``class_names`` (so labels stay the indices a
torchvision ``ImageFolder`` would give, minus its refusal) and emits a :class:`DatasetWarning`;
a tree with no images at all is a ``NaviewerError``.

Images are decoded lazily, one at a time, through :mod:`naviewer.data.imageio`: the header is
size-checked before any pixel is decoded, and a corrupt file is a ``NaviewerError`` naming it when
it is first read. :meth:`ImageFolderDataset.verify` reads every file up front.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from naviewer.data.base import DatasetWarning
from naviewer.data.files import FileBackedDataset
from naviewer.data.imageio import DEFAULT_MAX_PIXELS, image_extensions
from naviewer.errors import NaviewerError


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _images_under(folder: Path, extensions: frozenset[str]) -> list[Path]:
    """Image files below ``folder`` (recursive, sorted, hidden entries skipped, symlinks followed)."""
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()  # (device, inode) of folders walked: symlink loops end here
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        stat = os.stat(dirpath)
        if (stat.st_dev, stat.st_ino) in seen:
            dirnames[:] = []
            continue
        seen.add((stat.st_dev, stat.st_ino))
        dirnames[:] = sorted(d for d in dirnames if _visible(d))
        base = Path(dirpath)
        found.extend(base / f for f in sorted(filenames) if _visible(f) and Path(f).suffix.lower() in extensions)
    return found


class ImageFolderDataset(FileBackedDataset):
    """``root/<class>/<image>`` with lazy, size-checked decoding."""

    kind = "image-folder"

    def __init__(self, root: "str | Path", max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        root = Path(root)
        if not root.exists():
            raise NaviewerError("folder not found", root)
        if not root.is_dir():
            raise NaviewerError("expected a folder of class folders, found a file", root)
        root = root.resolve()
        class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and _visible(p.name))
        if not class_dirs:
            raise NaviewerError("no class folders here (expected root/<class>/<image>)", root)
        extensions = image_extensions()
        paths: list[Path] = []
        labels: list[int] = []
        empty: list[str] = []
        for label, class_dir in enumerate(class_dirs):
            files = _images_under(class_dir, extensions)
            if not files:
                empty.append(class_dir.name)
            paths.extend(files)
            labels.extend([label] * len(files))
        if not paths:
            raise NaviewerError(
                "the image folder has no images (no file with an image extension in any class folder)", root
            )
        if empty:
            warnings.warn(
                f"{root}: class folder(s) without images: {', '.join(empty)} (kept as classes with no samples)",
                DatasetWarning,
                stacklevel=2,
            )
        #: names of class folders that hold no image (kept in ``class_names``)
        self.empty_classes = empty
        keys = [p.relative_to(root).as_posix() for p in paths]
        super().__init__(root, paths, keys, labels, [d.name for d in class_dirs], max_pixels)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"kind": self.kind, "root": str(self.root), "size": len(self)}
        if self.max_pixels != DEFAULT_MAX_PIXELS:
            info["max_pixels"] = self.max_pixels
        return info
