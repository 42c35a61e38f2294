"""Symlinks in image-folder trees: loops skipped with a warning, never a second label (issue 15, item 3)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from naviewer.data.base import DatasetWarning
from naviewer.data.folder import ImageFolderDataset
from naviewer.errors import NaviewerError

from .makers import write_png


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    for k, cls in enumerate(("a", "b")):
        for i in range(2):
            write_png(root / cls / f"{i}.png", np.full((4, 4, 3), 10 * k + i, np.uint8))
    return root


def _open(root: Path) -> tuple[ImageFolderDataset, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = ImageFolderDataset(root)
    return data, [str(w.message) for w in caught if issubclass(w.category, DatasetWarning)]


def _samples(data: ImageFolderDataset) -> list[tuple[str, int]]:
    return [(data.source_key(i), int(data.labels[i])) for i in range(len(data))]


EXPECTED = [("a/0.png", 0), ("a/1.png", 0), ("b/0.png", 1), ("b/1.png", 1)]


def test_loop_to_the_root_does_not_relabel_the_other_class(tmp_path: Path) -> None:
    """The issue's case: a/loop -> .. registered b's images again as class a."""
    root = _tree(tmp_path)
    (root / "a" / "loop").symlink_to("..", target_is_directory=True)
    data, messages = _open(root)
    assert _samples(data) == EXPECTED
    assert any("skipped a/loop" in m and "loop" in m for m in messages)


@pytest.mark.parametrize("target", [".", "..", "../..", "/"])
def test_links_to_an_ancestor_are_skipped(tmp_path: Path, target: str) -> None:
    root = _tree(tmp_path)
    (root / "b" / "sub").mkdir()
    (root / "b" / "sub" / "up").symlink_to(target, target_is_directory=True)
    data, messages = _open(root)
    assert _samples(data) == EXPECTED
    assert any("sub/up" in m for m in messages)


def test_indirect_loop_between_two_outside_folders_terminates(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    x, y = tmp_path / "x", tmp_path / "y"
    write_png(x / "x.png", np.full((4, 4, 3), 99, np.uint8))
    y.mkdir()
    (x / "to_y").symlink_to(y, target_is_directory=True)
    (y / "to_x").symlink_to(x, target_is_directory=True)
    (root / "a" / "ext").symlink_to(x, target_is_directory=True)
    data, messages = _open(root)
    assert ("a/ext/x.png", 0) in _samples(data) and len(data) == 5
    assert any("to_x" in m for m in messages)


@pytest.mark.parametrize("link, target", [("a/lb", "../b"), ("a/deep", "../b/sub")])
def test_a_link_into_another_class_folder_is_refused(tmp_path: Path, link: str, target: str) -> None:
    root = _tree(tmp_path)
    write_png(root / "b" / "sub" / "s.png", np.full((4, 4, 3), 50, np.uint8))
    (root / link).symlink_to(target, target_is_directory=True)
    with pytest.raises(NaviewerError, match="two labels") as info:
        ImageFolderDataset(root)
    assert info.value.path == str(root.resolve())


def test_a_file_link_to_another_class_is_refused_and_one_in_its_own_class_kept_once(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "a" / "same.png").symlink_to("0.png")
    data, messages = _open(root)
    assert _samples(data) == EXPECTED
    assert any("skipped a/same.png" in m for m in messages)
    (root / "a" / "other.png").symlink_to("../b/0.png")
    with pytest.raises(NaviewerError, match="'a/other.png' is a link to an image of the class folder 'b'"):
        ImageFolderDataset(root)


def test_two_classes_linking_one_outside_folder_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    shared = tmp_path / "shared"
    write_png(shared / "s.png", np.zeros((4, 4, 3), np.uint8))
    (root / "a" / "s").symlink_to(shared, target_is_directory=True)
    (root / "b" / "s").symlink_to(shared, target_is_directory=True)
    with pytest.raises(NaviewerError, match="two labels"):
        ImageFolderDataset(root)


def test_class_folders_that_are_the_same_folder_are_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "c").symlink_to("b", target_is_directory=True)
    with pytest.raises(NaviewerError, match="class folders 'b' and 'c' are the same folder"):
        ImageFolderDataset(root)


def test_a_class_folder_linking_to_the_root_is_an_empty_class_with_a_warning(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "c").symlink_to(".", target_is_directory=True)
    data, messages = _open(root)
    assert _samples(data) == EXPECTED and data.class_names == ["a", "b", "c"] and data.empty_classes == ["c"]
    assert any("class folder c" in m for m in messages)


def test_outside_folder_linked_from_one_class_is_read(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    extra = tmp_path / "extra"
    write_png(extra / "e.png", np.zeros((4, 4, 3), np.uint8))
    (root / "b" / "more").symlink_to(extra, target_is_directory=True)
    data, messages = _open(root)
    assert _samples(data) == EXPECTED + [("b/more/e.png", 1)] and not messages
    assert Path(os.path.realpath(data.path(4))) == (extra / "e.png").resolve()
