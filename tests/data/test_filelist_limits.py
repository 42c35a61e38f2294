"""File lists: absurd labels refused, duplicate lines warned about and dropped (issue 15, items 5 and 11)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from naviewer.data.base import UNLABELED, DatasetWarning
from naviewer.data.filelist import MAX_CLASSES, FileListDataset
from naviewer.errors import NaviewerError

from .makers import write_png


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ("a.png", "b.png", "c.png"):
        write_png(tmp_path / name, np.full((3, 3, 3), ord(name[0]), np.uint8))
    return tmp_path


@pytest.mark.parametrize("label", ["1000000", "10000000", str(MAX_CLASSES), "9" * 40, "1" * 5000])
@pytest.mark.parametrize("suffix", [".txt", ".csv"])
def test_a_label_implying_absurdly_many_classes_is_refused(folder: Path, label: str, suffix: str) -> None:
    """One line with label 10^6 used to build a million class names (minutes, 850 MB, a huge workspace.toml)."""
    path = folder / f"list{suffix}"
    header = "path,label\n" if suffix == ".csv" else ""
    sep = "," if suffix == ".csv" else " "
    path.write_text(f"{header}a.png{sep}0\nb.png{sep}{label}\n")
    line = 3 if suffix == ".csv" else 2
    with pytest.raises(NaviewerError, match=rf"line {line}: label .* classes") as info:
        FileListDataset(path)
    assert info.value.path == str(path.resolve()) and len(str(info.value)) < 600


def test_the_class_count_follows_the_labels_present_up_to_the_limit(folder: Path) -> None:
    (folder / "list.txt").write_text(f"a.png 0\nb.png 7\nc.png {MAX_CLASSES - 1}\n")
    with pytest.warns(DatasetWarning, match="have no image"):  # allowed, and said
        data = FileListDataset(folder / "list.txt")
    assert len(data.class_names) == MAX_CLASSES and data.labels.tolist() == [0, 7, MAX_CLASSES - 1]


def test_a_large_label_is_fine_when_class_names_are_given(folder: Path) -> None:
    (folder / "list.txt").write_text("a.png 0\nb.png 2\n")
    assert FileListDataset(folder / "list.txt", class_names=["x", "y", "z"]).class_names == ["x", "y", "z"]
    (folder / "list.txt").write_text("a.png 0\nb.png 3\n")
    with pytest.raises(NaviewerError, match=r"line 2: label 3 is out of range \(0..2"):
        FileListDataset(folder / "list.txt", class_names=["x", "y", "z"])


def test_duplicate_lines_warn_and_keep_the_first(folder: Path) -> None:
    (folder / "list.txt").write_text("a.png 0\nb.png 1\na.png 0\n./b.png 1\nc.png 1\n")
    with pytest.warns(DatasetWarning, match=r"2 duplicate entries ignored .*line 3 \(= line 1\), line 4 \(= line 2\)"):
        data = FileListDataset(folder / "list.txt")
    assert [data.source_key(i) for i in range(len(data))] == ["a.png", "b.png", "c.png"]
    assert data.labels.tolist() == [0, 1, 1] and data.duplicates == 2


def test_duplicate_csv_rows_warn_too(folder: Path) -> None:
    (folder / "m.csv").write_text("path,label\na.png,0\na.png,0\n")
    with pytest.warns(DatasetWarning, match="1 duplicate entry ignored"):
        data = FileListDataset(folder / "m.csv")
    assert len(data) == 1


@pytest.mark.parametrize("second", ["a.png 1", "a.png", "a.png -1"])
def test_one_file_with_two_labels_is_refused(folder: Path, second: str) -> None:
    (folder / "list.txt").write_text(f"a.png 0\nb.png 1\n{second}\n")
    with pytest.raises(NaviewerError, match="line 3: 'a.png' is listed on line 1 with label 0 and here with label"):
        FileListDataset(folder / "list.txt")


def test_no_warning_without_duplicates(folder: Path) -> None:
    (folder / "list.txt").write_text("a.png 0\nb.png -1\nc.png -1\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = FileListDataset(folder / "list.txt")
    assert data.labels.tolist() == [0, UNLABELED, UNLABELED] and data.duplicates == 0
