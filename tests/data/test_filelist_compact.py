"""File lists held compactly (issue 17 item 4): keys in one byte buffer, repeats found by sorted hashes."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

import naviewer.data.filelist as filelist
from naviewer.data.base import DatasetWarning
from naviewer.data.filelist import FileListDataset, write_file_list
from naviewer.data.files import KeyBuilder, PathKeys
from naviewer.data.folder import ImageFolderDataset
from naviewer.errors import NaviewerError

from .makers import write_png

UNICODE_KEYS = ["a.png", "été/çà.png", "日本/画像 1.png", "emoji/\U0001f600.png", "x" * 300 + ".png", ""]


def test_path_keys_round_trip_unicode_and_take() -> None:
    keys = PathKeys.from_strings(UNICODE_KEYS)
    assert len(keys) == len(UNICODE_KEYS) and list(keys) == UNICODE_KEYS
    assert keys[-2] == UNICODE_KEYS[-2] and keys.data.dtype == np.uint8 and keys.offsets.dtype == np.int64
    assert keys.nbytes == len("".join(UNICODE_KEYS).encode()) + 8 * (len(UNICODE_KEYS) + 1)
    picked = keys.take([3, 0, 3, 5, 1])
    assert list(picked) == [UNICODE_KEYS[i] for i in (3, 0, 3, 5, 1)]
    assert list(keys.take([])) == [] and list(keys.take([5])) == [""]
    with pytest.raises(IndexError):
        keys[len(UNICODE_KEYS)]
    empty = PathKeys.from_strings([])
    assert len(empty) == 0 and list(empty) == []


def test_key_builder_reads_back_while_building() -> None:
    builder = KeyBuilder()
    for key in UNICODE_KEYS:
        builder.append(key)
        assert builder.get(len(builder) - 1) == key
    assert [builder.get(i) for i in range(len(builder))] == UNICODE_KEYS
    assert list(builder.build()) == UNICODE_KEYS


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for i, key in enumerate(["a.png", "été/çà.png", "日本/画像 1.png", "emoji/\U0001f600.png", "sub/deep/b.png"]):
        write_png(root / key, np.full((2, 3, 3), 10 * i, np.uint8))
    return root


def test_unicode_keys_paths_and_images(tree: Path) -> None:
    keys = ["a.png", "été/çà.png", "日本/画像 1.png", "emoji/\U0001f600.png", "sub/deep/b.png"]
    data = FileListDataset(write_file_list(tree / "list.txt", keys, [0, 1, 2, 1, 0]))
    assert [data.source_key(i) for i in range(len(data))] == keys
    assert isinstance(data._keys, PathKeys) and not hasattr(data, "_paths")  # no Path or str kept per sample
    for i, key in enumerate(keys):
        assert data.path(i) == tree.resolve() / key
        assert data.image(i)[0, 0, 0] == 10 * i and data.image_size(i) == (2, 3)
    assert data.labels.dtype == np.int64 and data.labels.tolist() == [0, 1, 2, 1, 0]


def test_repeats_by_any_spelling_are_kept_once(tree: Path) -> None:
    (tree / "alias").symlink_to(tree / "sub")  # a folder link inside the root: the same files
    (tree / "list.txt").write_text(
        "a.png 0\nsub/deep/b.png 1\n./a.png 0\nalias/deep/b.png 1\n"
        f"{tree / 'a.png'} 0\nsub/../sub/deep/b.png 1\n日本/画像 1.png 2\n"
    )
    with pytest.warns(DatasetWarning, match=r"4 duplicate entries ignored .*line 3 \(= line 1\), line 4 \(= line 2\), "
                                             r"line 5 \(= line 1\), line 6 \(= line 2\)") as caught:
        data = FileListDataset(tree / "list.txt", root=tree)
    assert len(caught) == 1
    assert [data.source_key(i) for i in range(len(data))] == ["a.png", "sub/deep/b.png", "日本/画像 1.png"]
    assert data.labels.tolist() == [0, 1, 2] and data.duplicates == 4


def test_a_link_listed_first_is_read_from_its_real_file(tree: Path) -> None:
    (tree / "alias").symlink_to(tree / "sub")
    (tree / "l.png").symlink_to(tree / "a.png")
    (tree / "list.txt").write_text("alias/deep/b.png 1\nl.png 0\na.png 0\n")
    with pytest.warns(DatasetWarning, match=r"1 duplicate entry ignored .*line 3 \(= line 2\)"):
        data = FileListDataset(tree / "list.txt")
    assert [data.source_key(i) for i in range(len(data))] == ["alias/deep/b.png", "l.png"]
    assert data.path(0) == tree.resolve() / "sub/deep/b.png" and data.path(1) == tree.resolve() / "a.png"


@pytest.mark.parametrize("second", ["./a.png 3", "alias/a.png", "a.png -1"])
def test_one_file_under_two_labels_names_both_lines(tree: Path, second: str) -> None:
    (tree / "alias").symlink_to(tree)
    (tree / "list.txt").write_text(f"# header\na.png 0\nsub/deep/b.png 1\n\n{second}\nmissing.png 0\n")
    text = second.rsplit(" ", 1)[0] if " " in second else second
    with pytest.raises(NaviewerError, match=rf"line 5: '{text}' is listed on line 2 with label 0 and here with label"):
        FileListDataset(tree / "list.txt")  # the earlier line wins over the missing file on line 6


def test_an_error_before_the_repeat_is_the_one_reported(tree: Path) -> None:
    (tree / "list.txt").write_text("a.png 0\nmissing.png 0\na.png 1\n")
    with pytest.raises(NaviewerError, match="line 2: image not found"):
        FileListDataset(tree / "list.txt")


def test_hash_collisions_are_checked_exactly(tree: Path, monkeypatch) -> None:
    """Every real key hashing alike must still give distinct files (and real repeats only)."""
    monkeypatch.setattr(filelist, "hash", lambda text: 7, raising=False)
    (tree / "list.txt").write_text("a.png 0\nété/çà.png 1\nsub/deep/b.png 2\n./été/çà.png 1\na.png 0\n")
    with pytest.warns(DatasetWarning, match=r"2 duplicate entries .*line 4 \(= line 2\), line 5 \(= line 1\)"):
        data = FileListDataset(tree / "list.txt")
    assert [data.source_key(i) for i in range(len(data))] == ["a.png", "été/çà.png", "sub/deep/b.png"]
    (tree / "list.txt").write_text("a.png 0\nété/çà.png 1\nsub/deep/b.png 2\nété/çà.png 0\n")
    with pytest.raises(NaviewerError, match="line 4: 'été/çà.png' is listed on line 2 with label 1"):
        FileListDataset(tree / "list.txt")


def test_csv_manifest_with_unicode_and_repeats(tree: Path) -> None:
    (tree / "m.csv").write_text('path,label\n"日本/画像 1.png",1\na.png,0\n"./日本/画像 1.png",1\n', encoding="utf-8")
    with pytest.warns(DatasetWarning, match=r"line 4 \(= line 2\)"):
        data = FileListDataset(tree / "m.csv")
    assert [data.source_key(i) for i in range(len(data))] == ["日本/画像 1.png", "a.png"]


def test_many_lines_with_a_few_repeats(tmp_path: Path) -> None:
    root = tmp_path / "many"
    keys = [f"c{i % 7}/img_{i:05d}.png" for i in range(300)]
    for key in keys:
        write_png(root / key, np.zeros((1, 1, 3), np.uint8))
    order = keys + keys[::50]
    (root / "list.txt").write_text("".join(f"{k} {i % 5}\n" for i, k in enumerate(keys)) +
                                  "".join(f"{k} {(50 * j) % 5}\n" for j, k in enumerate(keys[::50])))
    with pytest.warns(DatasetWarning, match=r"6 duplicate entries ignored .*line 301 \(= line 1\).* and 1 more"):
        data = FileListDataset(root / "list.txt")
    assert len(data) == 300 and [data.source_key(i) for i in (0, 150, 299)] == [keys[0], keys[150], keys[299]]
    assert data.labels.tolist() == [i % 5 for i in range(300)] and len(order) == 306


def test_image_folder_keys_are_compact_too(image_tree) -> None:
    root, pixels = image_tree
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = ImageFolderDataset(root)
    assert isinstance(data._keys, PathKeys)
    for i in range(len(data)):
        assert data.path(i) == root.resolve() / data.source_key(i)
        np.testing.assert_array_equal(data.image(i), pixels[data.source_key(i)])


@pytest.mark.slow
def test_bench_file_list_reports_both_readers(tmp_path: Path) -> None:
    from naviewer.cli import main

    out = tmp_path / "fl.json"
    assert main(["bench", "workspace", "--file-list", "30", "60", "--files", "40", "--register", "20",
                 "--baseline-up-to", "30", "--dir", str(tmp_path / "scratch"), "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    rows = figures["rows"]
    assert [r["lines"] for r in rows] == [30, 60] and figures["files"] == 40
    assert rows[0]["open"]["samples"] == rows[0]["open_legacy"]["samples"] == 30
    assert rows[1]["open"]["samples"] == 60 and "open_legacy" not in rows[1]  # hard links: no line collapsed
    assert figures["register"]["register"]["registered"] == figures["register"]["register_legacy"]["registered"] == 20
    assert all(r["open"]["peak_mb"] > 0 for r in rows)
    assert not any(os.scandir(tmp_path / "scratch"))  # the image tree is removed afterwards


def test_folder_links_out_of_the_root_are_judged_per_file(tree: Path, tmp_path: Path) -> None:
    """A folder link leading out is refused for its plain files, but a file link there back into the root
    is what it resolves to (as with Path.resolve on every line)."""
    outside = tmp_path / "outside"
    write_png(outside / "o.png", np.zeros((1, 1, 3), np.uint8))
    (outside / "back.png").symlink_to(tree / "a.png")
    (tree / "out").symlink_to(outside)
    (tree / "list.txt").write_text("out/back.png 0\nsub/deep/b.png 1\n")
    data = FileListDataset(tree / "list.txt")
    assert data.source_key(0) == "out/back.png" and data.path(0) == tree.resolve() / "a.png"
    (tree / "list.txt").write_text("out/back.png 0\nout/o.png 1\n")
    with pytest.raises(NaviewerError, match="line 2: path 'out/o.png' is outside the dataset root"):
        FileListDataset(tree / "list.txt")


def test_labels_that_leave_classes_empty_are_said(tree: Path) -> None:
    """One stray label of 99999 made 100,000 classes (a 1.3 MB workspace.toml, a 100k-line classes.txt), silently."""
    (tree / "list.txt").write_text("a.png 0\nsub/deep/b.png 99999\n")
    with pytest.warns(DatasetWarning, match=r"99,998 of the 100,000 classes \(0-99999\) have no image"):
        data = FileListDataset(tree / "list.txt", root=tree)
    assert len(data.class_names) == 100_000


def test_class_names_that_are_other_numbers_are_said(tree: Path) -> None:
    """A classes.txt of "7" and "3": a list's label 7 is a position, never the class named "7" (a sweep: read as
    positions without a word). Names that are their own positions ("0", "1") say nothing."""
    (tree / "list.txt").write_text("a.png 1\nsub/deep/b.png 0\n")
    (tree / "classes.txt").write_text("7\n3\n")
    with pytest.warns(DatasetWarning, match=r"classes.txt: the class names are numbers .*label 0 is class '7'"):
        data = FileListDataset(tree / "list.txt", root=tree)
    assert data.class_names == ["7", "3"] and list(data.labels) == [1, 0]
    (tree / "classes.txt").write_text("0\n1\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FileListDataset(tree / "list.txt", root=tree)
