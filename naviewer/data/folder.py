"""Image-folder trees: ``root/<class>/<image>``, the torchvision ``ImageFolder`` layout.

Class names are the sorted names of the sub-folders of ``root`` (label = position in that list);
images are every file with an extension Pillow can open, found recursively under each class
folder, in sorted order. Hidden files and folders (``.name``) are ignored, and so are files directly in
``root``, with a :class:`DatasetWarning` that counts the images among them. An *empty class folder* keeps its place in ``class_names`` (so labels stay the indices a
torchvision ``ImageFolder`` would give, minus its refusal) and emits a :class:`DatasetWarning`;
a tree with no images at all is a ``NaviewerError``.

Symlinks are followed, with real paths resolved once per dataset: a folder link back to the root
or to one of its own ancestors, or to a folder already read in the same class, is a loop and is
skipped with a ``DatasetWarning``; a link from one class folder into another (or one file or
outside folder reached from two classes) is refused, since its images would carry two labels; the
same file reached twice within one class is kept once, with a warning. A name that could not be
written as one manifest line (control characters, line separators, non-UTF-8 bytes) is refused
(:mod:`naviewer.data.names`).

Images are decoded lazily, one at a time, through :mod:`naviewer.data.imageio`: the header is
size-checked before any pixel is decoded, and a corrupt file is a ``NaviewerError`` naming it when
it is first read. :meth:`ImageFolderDataset.verify` reads every file up front.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np

from naviewer.data.base import DatasetWarning
from naviewer.data.files import FileBackedDataset, PathKeys
from naviewer.data.imageio import DEFAULT_MAX_PIXELS, image_extensions
from naviewer.data.names import name_problem, shown
from naviewer.errors import NaviewerError


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _metadata(name: str) -> bool:
    """A system's own hidden file (macOS's .DS_Store and ._AppleDouble companions): skipped without a word."""
    return name == ".DS_Store" or name.startswith("._")


def _hidden_images(path: Path, extensions: "frozenset[str] | set[str]", limit: int = 200) -> bool:
    """A hidden entry worth a word: an image file, or a folder holding one (looked at ``limit`` entries deep at
    most). A .gitkeep or a .git/ is not ("rename without the dot" would have made .git a class; a review, session
    27)."""
    if _metadata(path.name):
        return False
    if path.is_file():
        return path.suffix.lower() in extensions
    try:
        for count, (_folder, _dirs, files) in enumerate(os.walk(path)):
            if any(os.path.splitext(f)[1].lower() in extensions and not _metadata(f) for f in files):
                return True
            if count >= limit:
                break
    except OSError:
        return False
    return False


class _TreeWalk:
    """Every image file of every class folder, walked once per dataset with real paths resolved.

    Symlinks are followed, but a folder link that leads back to the root, to one of its own
    ancestors or to a folder already read is a loop: it is skipped with a :class:`DatasetWarning`.
    A link from one class folder into another would give that class's images a second label: it is
    refused. The same file reached twice in one class (a file symlink beside its target, two links
    to one outside folder) is kept once, with a warning; reached from two classes, it is refused.
    """

    def __init__(self, root: Path, class_dirs: list[Path], extensions: frozenset[str]) -> None:
        self.root = root
        self.root_real = os.path.realpath(root)
        self.class_dirs = class_dirs
        self.class_reals = [os.path.realpath(d) for d in class_dirs]
        self.extensions = extensions
        self.warnings: list[str] = []
        #: keys of the files in class folders without an image extension (skipped; counted in one warning)
        self.other_files: list[str] = []
        self.hidden: list[str] = []  # hidden files and folders skipped (said once, metadata aside)
        self._seen_dirs: dict[tuple[int, int], tuple[int, str]] = {}  # folder -> (label, key) where first read
        self._linked: dict[str, tuple[int, str]] = {}  # real path -> (label, key) of files reached through a link
        self._skip_class: set[int] = set()
        for label, real in enumerate(self.class_reals):
            name = class_dirs[label].name
            if _inside(self.root_real, real):
                self.warnings.append(f"skipped the class folder {name}: a link to {real}, a folder above it (a loop)")
                self._skip_class.add(label)
                continue
            for other, other_real in enumerate(self.class_reals[:label]):
                if _inside(real, other_real) or _inside(other_real, real):
                    where = f"both are {real}" if real == other_real else f"{other_real} and {real}"
                    raise NaviewerError(
                        f"the class folders {shown(class_dirs[other].name)} and {shown(name)} are the same folder or "
                        f"one holds the other ({where}): their images would carry two labels",
                        root,
                    )

    def _key(self, path: str) -> str:
        return Path(os.path.relpath(path, self.root)).as_posix()

    def _check_name(self, path: str) -> str:
        key = self._key(path)
        problem = name_problem(key)
        if problem:
            raise NaviewerError(f"{problem}; rename it", self.root)
        return key

    def _follow(self, link: str, real: str, parent_real: str, label: int) -> bool:
        """Whether to walk the folder ``link`` (a symlink to ``real``) that sits in ``parent_real``."""
        if _inside(self.root_real, real) or _inside(parent_real, real):
            self.warnings.append(f"skipped {self._key(link)}: a link to {real}, a folder above it (a loop)")
            return False
        for other, other_real in enumerate(self.class_reals):
            if other != label and (_inside(real, other_real) or _inside(other_real, real)):
                raise NaviewerError(
                    f"{shown(self._key(link))} links into the class folder {shown(self.class_dirs[other].name)}: its "
                    f"images would carry two labels ({self.class_dirs[label].name} and "
                    f"{self.class_dirs[other].name}); remove the link",
                    self.root,
                )
        return True

    def files(self, label: int) -> list[tuple[Path, str, int, bool]]:
        """(path, key, label, reached through a link) of the images of class ``label``, in sorted order."""
        found: list[tuple[Path, str, int, bool]] = []
        if label not in self._skip_class:
            self._walk(str(self.class_dirs[label]), self.class_reals[label], label, False, found)
        return found

    def _walk(self, folder: str, real: str, label: int, linked: bool, found: list) -> None:
        try:
            stat = os.stat(folder)
        except OSError as exc:
            self.warnings.append(f"skipped {self._key(folder)}: {exc.strerror or exc}")
            return
        if not self._first_visit(self._seen_dirs, (stat.st_dev, stat.st_ino), label, self._key(folder),
                                 f"the same folder ({real})", "its images", "a link to a folder already read ({previous})"):
            return
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as exc:
            raise NaviewerError(f"cannot list a folder: {exc.strerror or exc}", folder) from None
        for entry in entries:
            if not _visible(entry.name):
                if _hidden_images(Path(entry.path), self.extensions):  # a real image named .x.png, images in an
                    self.hidden.append(self._key(entry.path))  # .ipynb_checkpoints/: skipped in silence before
                continue
            try:
                is_dir = entry.is_dir()
                is_link = entry.is_symlink()
            except OSError as exc:  # a link that loops onto itself: said, not skipped unsaid
                if os.path.splitext(entry.name)[1].lower() in self.extensions:
                    self.warnings.append(f"skipped {shown(self._key(entry.path))}: cannot tell what it is "
                                         f"({exc.strerror or exc})")
                continue
            if is_dir:
                self._check_name(entry.path)
                entry_real = os.path.realpath(entry.path) if is_link else os.path.join(real, entry.name)
                if is_link and not self._follow(entry.path, entry_real, real, label):
                    continue
                self._walk(entry.path, entry_real, label, linked or is_link, found)
            elif os.path.splitext(entry.name)[1].lower() in self.extensions:
                key = self._check_name(entry.path)
                try:
                    regular = entry.is_file()  # follows a link; a pipe named x.png blocked the first read for ever
                except OSError:
                    regular = False
                if not regular:
                    self.warnings.append(f"skipped {shown(key)}: not a regular file (a pipe, socket, device or "
                                         "broken link)")
                    continue
                if linked or is_link:
                    if not self._claim(os.path.realpath(entry.path), label, key):
                        continue
                    found.append((Path(entry.path), key, label, True))
                else:
                    found.append((Path(entry.path), key, label, False))
            else:  # not an image extension (a .txt, a .pdf, a refused format): counted and said once at the end
                self.other_files.append(self._key(entry.path))

    def _claim(self, real: str, label: int, key: str) -> bool:
        """Record a file reached through a link; False when it duplicates another link (skip it)."""
        for other, other_real in enumerate(self.class_reals):
            if other != label and _inside(real, other_real):
                raise NaviewerError(
                    f"{shown(key)} is a link to an image of the class folder {shown(self.class_dirs[other].name)}: it "
                    "would carry two labels; remove the link",
                    self.root,
                )
        return self._first_visit(self._linked, real, label, key, f"the same file ({real})", "it",
                                 "the same file as {previous} (" + real.replace("{", "{{").replace("}", "}}") + ")")

    def _first_visit(self, seen: dict, ident: Any, label: int, key: str, same: str, carrier: str, skip: str) -> bool:
        """Record ``ident`` (a folder or file reached through links) under ``label``; False when it was
        reached before with the same label (skipped; ``skip`` says why, ``{previous}`` naming the first), an
        error when with another one."""
        previous = seen.get(ident)
        if previous is None:
            seen[ident] = (label, key)
            return True
        if previous[0] != label:
            raise NaviewerError(f"{shown(key)} and {shown(previous[1])} are {same} in two class folders: {carrier} "
                                "would carry two labels; remove one link", self.root)
        self.warnings.append(f"skipped {key}: " + skip.format(previous=previous[1]))
        return False

    def without_duplicates(self, items: list[tuple[Path, str, int, bool]]) -> list[tuple[Path, str, int, bool]]:
        """Drop the files reached through a link whose target is also registered directly (keep the direct one)."""
        if not self._linked:
            return items
        direct = {
            os.path.join(self.class_reals[label], os.path.relpath(path, self.class_dirs[label])): key
            for path, key, label, linked in items if not linked
        }
        kept = []
        for item in items:
            path, key, _, linked = item
            if linked:
                target = direct.get(os.path.realpath(path))
                if target is not None:
                    self.warnings.append(f"skipped {key}: a link to {target}, which is registered already")
                    continue
            kept.append(item)
        return kept


def _inside(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or lies below it (both real, absolute)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


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
        loose = sorted(p.name for p in root.iterdir()
                       if _visible(p.name) and p.suffix.lower() in extensions and p.is_file())
        if loose:  # skipped silently before: a newcomer could not tell why the count was short
            warnings.warn(f"{root}: {len(loose):,} image(s) directly in the folder are not read "
                          f"({', '.join(loose[:3])}{', ...' if len(loose) > 3 else ''}): an image folder takes images "
                          "only inside its class folders (root/<class>/<image>)", DatasetWarning, stacklevel=2)
        for class_dir in class_dirs:
            problem = name_problem(class_dir.name)
            if problem:
                raise NaviewerError(f"class folder: {problem}; rename it", root)
        twins = _lookalike_names([d.name for d in class_dirs])
        if twins:  # 'café' composed and decomposed: two classes every message printed alike (a probe, session 28)
            a, b = twins
            warnings.warn(f"{root}: the class folders {a!r} and {b!r} print alike but are spelled with different "
                          f"Unicode code points ({_codepoints(a)} / {_codepoints(b)}): two classes every message names "
                          "the same way; rename one", DatasetWarning, stacklevel=2)
        walk = _TreeWalk(root, class_dirs, extensions)
        items: list[tuple[Path, str, int, bool]] = []
        for label in range(len(class_dirs)):
            items.extend(walk.files(label))
        items = walk.without_duplicates(items)
        counts = np.bincount(np.asarray([item[2] for item in items], dtype=np.int64), minlength=len(class_dirs))
        empty = [d.name for d, count in zip(class_dirs, counts) if count == 0]
        keys = PathKeys.from_strings(item[1] for item in items)  # path = root / key: no Path kept per image
        labels = np.fromiter((item[2] for item in items), dtype=np.int64, count=len(items))
        del items
        for message in walk.warnings[:20]:
            warnings.warn(f"{root}: {message}", DatasetWarning, stacklevel=2)
        if len(walk.warnings) > 20:
            warnings.warn(f"{root}: {len(walk.warnings) - 20} more skipped links", DatasetWarning, stacklevel=2)
        hidden = [shown(k) for k in walk.hidden] + [f"{p.name}/" for p in sorted(root.iterdir())
                                                    if p.is_dir() and not _visible(p.name)
                                                    and _hidden_images(p, extensions)]
        if hidden:
            warnings.warn(f"{root}: {len(hidden):,} hidden image file(s) or folder(s) holding images (names starting "
                          f"with '.') were skipped ({', '.join(hidden[:3])}{', ...' if len(hidden) > 3 else ''}): "
                          "rename without the dot what should be read", DatasetWarning, stacklevel=2)
        others = walk.other_files
        if others:  # skipped without a count before (a sweep): a short dataset said nothing about why
            warnings.warn(f"{root}: {len(others):,} file(s) in the class folders are not images naviewer reads and "
                          f"were skipped ({', '.join(shown(k) for k in others[:3])}{', ...' if len(others) > 3 else ''})",
                          DatasetWarning, stacklevel=2)
        if not len(keys):
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
        super().__init__(root, keys, labels, [d.name for d in class_dirs], max_pixels)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"kind": self.kind, "root": str(self.root), "size": len(self)}
        if self.max_pixels != DEFAULT_MAX_PIXELS:
            info["max_pixels"] = self.max_pixels
        return info


def _lookalike_names(names: list) -> Optional[tuple]:
    """The first two names that differ but are the same text once Unicode-normalised (NFKC, case kept)."""
    import unicodedata

    seen: dict = {}
    for name in names:
        key = unicodedata.normalize("NFKC", name)
        if key in seen and seen[key] != name:
            return seen[key], name
        seen.setdefault(key, name)
    return None


def _codepoints(name: str) -> str:
    return " ".join(f"U+{ord(c):04X}" for c in name if ord(c) > 127) or "ASCII"
