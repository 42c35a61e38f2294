"""``open_dataset``: one entry point that recognises every supported source.

A *spec* is what a user types or a workspace stored:

- ``"demo"``: the built-in digits set (:mod:`naviewer.data.demo`);
- a folder that is or contains ``cifar-10-batches-py/`` or ``cifar-100-python/``;
- a folder of class folders (``root/<class>/<image>``); if its only sub-folders are split names
  (``train``, ``test``, ``val``...), the one named by ``split`` is opened;
- a ``.csv`` manifest, or a ``.txt`` / ``.lst`` / ``.list`` file as a ``path label`` list;
- the dict from ``dataset.describe()`` (how a workspace re-opens its dataset). When the dict holds
  a ``size`` and the source now has a different number of samples, that is an error: sample ids
  would no longer point at the same images.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Mapping, Optional

from naviewer.data.base import DatasetWarning, ImageDataset, SubsetDataset
from naviewer.data.imageio import DEFAULT_MAX_PIXELS
from naviewer.errors import NaviewerError

SPLIT_FOLDERS = frozenset({"train", "test", "val", "valid", "validation"})
_FILE_KINDS = ("filelist", "csv-manifest")
#: file suffixes read as ``path label`` lists (``.csv``: CSV manifest)
LIST_SUFFIXES = frozenset({".txt", ".lst", ".list", ".csv"})

#: the built-in datasets a command line names (no path): "demo", the digits tinted at 32 px (the original demo
#: set), and "digits", the demo's recipe data: grey digits at 16 px, on which the demo's small encoder learns (a
#: newcomer typed "digits", then got the tinted set from "demo", on which it stays at 15 % kNN; session 22)
BUILTIN_DATASETS = {"demo": {"tint": True}, "digits": {"tint": False, "image_size": 16}}


def is_builtin(spec: Any) -> bool:
    """Whether ``spec`` names a built-in dataset ("demo", "digits")."""
    return isinstance(spec, str) and spec.strip().lower() in BUILTIN_DATASETS



def _split_subfolder(root: Path, split: str) -> Path:
    """``root/<split>`` when ``root`` holds only split folders (ImageNet-style layout; any letter case:
    ``Train/`` and ``Test/`` used to become two classes named after the splits), else ``root``; split-named
    folders beside others are read as classes, with a warning."""
    subdirs = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    by_lower = {name.lower(): name for name in subdirs}
    if subdirs and set(by_lower) <= SPLIT_FOLDERS and len(by_lower) == len(subdirs):
        if split not in by_lower:
            raise NaviewerError(f"no {split!r} folder here (found: {', '.join(sorted(subdirs))})", root)
        return root / by_lower[split]
    splits = sorted(name for name in subdirs if name.lower() in SPLIT_FOLDERS)
    if splits:
        warnings.warn(f"{root}: {', '.join(splits)} read as class folder(s) beside the others; if they are "
                      f"splits, give the split's folder itself (e.g. {root / splits[0]})", DatasetWarning, stacklevel=3)
    return root


def _folder_list(root: Path, split: str) -> Optional[Path]:
    """``root/<split>.txt`` (else ``root/train.txt``) when ``root`` holds a ``train.txt`` file list: the
    layout naviewer craft writes. Read as an image folder it would be one class named "images"."""
    if not (root / "train.txt").is_file():
        return None
    own = root / f"{split}.txt"
    chosen = own if own.is_file() else root / "train.txt"
    others = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "images")
    if others:  # a stray train.txt beside class folders turned an image folder into a 2-line list, unsaid
        warnings.warn(f"{root}: read as the file list {chosen.name}, not as the folders beside it "
                      f"({', '.join(others[:5])}{', ...' if len(others) > 5 else ''}); to read the folders as "
                      "classes, move the list away", DatasetWarning, stacklevel=3)
    return chosen


def has_split(spec: "str | Path", split: str) -> bool:
    """Whether the source ``spec`` (as a command line names it) has a ``split`` of its own: the demo and CIFAR
    have train and test, a folder of split folders has those, a crafted set has ``<split>.txt``. Every other
    source has one split, train, and :func:`open_dataset` reads it whatever ``split`` asks for, so a command
    asking for another split checks here first (``embed --split test`` of a plain folder wrote the train
    images' embeddings, unsaid)."""
    from naviewer.data.cifar import find_cifar_dir

    if split == "train" or is_builtin(str(spec)):
        return True
    path = Path(str(spec).strip()).expanduser()
    if not path.exists():
        return True  # let opening it say "no such file or folder", not "no test split"
    if not path.is_dir():
        return False
    if find_cifar_dir(path) is not None:
        return True
    if (path / "train.txt").is_file():
        return (path / f"{split}.txt").is_file()
    subdirs = {p.name.lower() for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")}
    return bool(subdirs) and subdirs <= SPLIT_FOLDERS and split in subdirs


def _open_path(path: Path, split: str, options: Mapping[str, Any]) -> ImageDataset:
    from naviewer.data.cifar import CIFAR10_DIR, CIFAR100_DIR, CifarDataset, find_cifar_dir

    max_pixels = int(options.get("max_pixels", DEFAULT_MAX_PIXELS))
    if not path.exists():
        raise NaviewerError("no such file or folder", path)
    if path.is_dir():
        try:  # an unreadable folder read "t/cifar-10-batches-py: permission denied", a folder it never had (a sweep)
            with os.scandir(path) as entries:
                next(entries, None)
        except PermissionError:
            raise NaviewerError("permission denied: this folder cannot be read", path) from None
        if find_cifar_dir(path) is not None:
            return CifarDataset(path, split=split, coarse=bool(options.get("coarse", False)))
        listing = _folder_list(path, split)
        if listing is not None:  # naviewer craft's output and a workspace's dataset/: images/ + train.txt
            from naviewer.data.filelist import FileListDataset

            return FileListDataset(listing, root=options.get("root"), class_names=options.get("class_names"),
                                   max_pixels=max_pixels)
        from naviewer.data.folder import ImageFolderDataset

        return ImageFolderDataset(_split_subfolder(path, split), max_pixels=max_pixels)
    if path.is_file():
        from naviewer.data.filelist import FileListDataset

        if path.suffix.lower() not in LIST_SUFFIXES:
            hint = ""
            if path.parent.name in (CIFAR10_DIR, CIFAR100_DIR):
                hint = f"; to read CIFAR, open the folder {path.parent}"
            raise NaviewerError(
                f"not a dataset naviewer can read: expected a folder, 'demo', or a file list "
                f"({', '.join(sorted(LIST_SUFFIXES))}){hint}",
                path,
            )
        if path.stat().st_size == 0:
            raise NaviewerError("the file is empty", path)
        return FileListDataset(
            path, root=options.get("root"), class_names=options.get("class_names"), max_pixels=max_pixels
        )
    raise NaviewerError("not a file or folder naviewer can read", path)


def peek_class_names(spec: "str | Path") -> Optional[list[str]]:
    """The class names of a dataset path without reading its images, where that is cheap: ``demo``, a CIFAR
    folder (its meta file), a folder of class folders (their names, sorted as the loader sorts them). None for
    anything else (a file list, a crafted set) or anything unreadable: a hint, never an error.

    Why: the New workspace dialog asked for the target class as a number ("0" for a set whose class 0 is
    "airplane"; a newcomer, session 19)."""
    from naviewer.data.cifar import cifar_class_names, find_cifar_dir
    from naviewer.data.demo import CLASS_NAMES

    if is_builtin(str(spec)):
        return list(CLASS_NAMES)
    try:
        path = Path(spec).expanduser()
        if not path.is_dir():
            return None
        found = find_cifar_dir(path)
        if found is not None:
            return cifar_class_names(*found)
        if _folder_list(path, "train") is not None:
            return None
        with warnings.catch_warnings():  # a layout's warning is the loader's to give, when the set is opened
            warnings.simplefilter("ignore")
            folder = _split_subfolder(path, "train")
        names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        return names or None
    except (OSError, NaviewerError, ValueError, KeyError):
        return None


def _open_description(spec: Mapping[str, Any], split: str, options: Mapping[str, Any]) -> ImageDataset:
    kind = spec.get("kind")
    merged = {**{k: v for k, v in spec.items() if k not in ("kind", "size")}, **options}
    if kind == "demo":
        from naviewer.data.demo import DEMO_SIZE, DigitsDemoDataset

        return DigitsDemoDataset(
            split=str(spec.get("split", split)), tint=bool(merged.get("tint", True)),
            size=int(merged.get("image_size", DEMO_SIZE)),
        )
    if kind in ("cifar10", "cifar100"):
        from naviewer.data.cifar import CifarDataset

        if "root" not in spec:
            raise NaviewerError(f"dataset description of kind {kind!r} has no 'root'")
        dataset: ImageDataset = CifarDataset(spec["root"], split=str(spec.get("split", split)),
                                             coarse=bool(merged.get("coarse", False)))
        if dataset.kind != kind:
            raise NaviewerError(f"expected a {kind} folder, found {dataset.kind}", spec["root"])
        return dataset
    if kind == "image-folder":
        from naviewer.data.folder import ImageFolderDataset

        if "root" not in spec:
            raise NaviewerError("dataset description of kind 'image-folder' has no 'root'")
        return ImageFolderDataset(spec["root"], max_pixels=int(merged.get("max_pixels", DEFAULT_MAX_PIXELS)))
    if kind in _FILE_KINDS:
        from naviewer.data.filelist import FileListDataset

        if "path" not in spec:
            raise NaviewerError(f"dataset description of kind {kind!r} has no 'path'")
        return FileListDataset(spec["path"], root=merged.get("root"), class_names=merged.get("class_names"),
                               max_pixels=int(merged.get("max_pixels", DEFAULT_MAX_PIXELS)))
    if kind == "subset":
        if "base" not in spec or "indices" not in spec:
            raise NaviewerError("subset description needs 'base' and 'indices'")
        base = open_dataset(spec["base"], split=split)
        try:
            return SubsetDataset(base, spec["indices"])
        except (IndexError, ValueError, TypeError) as exc:
            raise NaviewerError(f"subset description does not fit its base dataset: {exc}") from None
    if kind == "memory":
        raise NaviewerError("this dataset was built in memory and cannot be re-opened from its description")
    raise NaviewerError(f"unknown dataset kind {kind!r} in description")


def open_dataset(spec: "str | Path | Mapping[str, Any]", split: str = "train", **options: Any) -> ImageDataset:
    """Open any supported dataset source; ``NaviewerError`` when it is unknown, empty or broken.

    ``options``: ``max_pixels`` (image files), ``root`` and ``class_names`` (file lists),
    ``coarse`` (CIFAR-100 superclasses), ``tint`` (demo). ``split`` picks train/test where the
    source has splits (CIFAR, demo, split folders) and is ignored otherwise.
    """
    if isinstance(spec, Mapping):
        dataset = _open_description(spec, split, options)
        expected = spec.get("size")
        where = spec.get("root") or spec.get("path")
        if expected is not None and (not isinstance(expected, int) or isinstance(expected, bool) or expected < 0):
            raise NaviewerError(f"the dataset description's size must be a whole number, found {expected!r}", where)
        if expected is not None and int(expected) != len(dataset):
            raise NaviewerError(
                f"the dataset changed: it was recorded with {int(expected)} samples but now has {len(dataset)}", where
            )
        return dataset
    if isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise NaviewerError("no dataset given (empty path)")
        # "demo" always names the built-in set, even beside a folder called demo (reach that as ./demo),
        # so a workspace recorded as "demo" reopens the same data wherever it is opened from.
        if text.lower() in BUILTIN_DATASETS:
            from naviewer.data.demo import DEMO_SIZE, DigitsDemoDataset

            builtin = BUILTIN_DATASETS[text.lower()]
            if os.path.lexists(text):  # the user's own ./digits trained the built-in set without a word (a sweep)
                warnings.warn(f"'{text}' names naviewer's built-in {text.lower()} set; the {text} here in "
                              f"{Path.cwd()} is not read: give ./{text} (or its full path) for it",
                              DatasetWarning, stacklevel=2)
            return DigitsDemoDataset(split=split, tint=bool(options.get("tint", builtin["tint"])),
                                     size=int(options.get("image_size", builtin.get("image_size", DEMO_SIZE))))
        spec = Path(text).expanduser()
    if isinstance(spec, Path):
        dataset = _open_path(spec, split, options)
    else:
        raise NaviewerError(f"cannot open a dataset from a {type(spec).__name__}")
    if len(dataset) == 0:
        raise NaviewerError("the dataset has no images", spec)
    return dataset


def inside_dataset_folder(out: Any, dataset: Optional[str]) -> bool:
    """Whether ``out`` is the dataset's folder or lies inside it: a workspace there became a class of its own
    dataset, a training's checkpoints and metrics became part of its images. ``new``, ``train`` and the window's
    New workspace dialog refuse it. A path that cannot be resolved is not inside (the real use says what is wrong)."""
    if not dataset:
        return False
    if is_builtin(str(dataset)):  # "demo" is the built-in set even beside a ./demo folder
        return False
    try:
        source = Path(str(dataset)).expanduser()
        if not source.is_dir():
            return False
        folder, where = source.resolve(), Path(out).expanduser().absolute().resolve()
    except (OSError, ValueError, RuntimeError):
        return False
    return where == folder or folder in where.parents
