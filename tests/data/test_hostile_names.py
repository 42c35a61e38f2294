"""File names that would forge a manifest line are refused by every source and every writer (issue 15, item 1)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from naviewer.data import open_dataset
from naviewer.data.filelist import FileListDataset, write_file_list
from naviewer.data.names import list_line_problem, name_problem, shown
from naviewer.errors import NaviewerError

from .makers import write_png

EVIL = "evil\nINJECTED_LINE 7\nx.png"
#: every character that breaks a line for some reader (str.splitlines, csv, a text editor), and tab
BREAKERS = ["\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\x00", "\t", "\x7f"]


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    for cls in ("a", "b"):
        for i in range(2):
            write_png(root / cls / f"{i}.png", np.full((4, 4, 3), 40 * i + (cls == "b"), np.uint8))
    return root


@pytest.mark.parametrize("char", [c for c in BREAKERS if c not in ("\x00",)])
def test_image_folder_refuses_a_name_with_a_line_breaker(tmp_path: Path, char: str) -> None:
    root = _tree(tmp_path)
    write_png(root / "a" / f"evil{char}INJECTED 7{char}x.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(NaviewerError, match="the name 'a/evil.*; rename it") as info:
        open_dataset(root)
    assert info.value.path == str(root.resolve())
    assert "\n" not in str(info.value) and "rename" in str(info.value)


def test_image_folder_refuses_the_issue_name_and_a_bad_class_folder(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    write_png(root / "a" / EVIL, np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(NaviewerError, match=r"a/evil\\nINJECTED_LINE 7\\nx.png.*line feed"):
        open_dataset(root)
    (root / "a" / EVIL).unlink()
    (root / "c\nd").mkdir()
    write_png(root / "c\nd" / "0.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(NaviewerError, match=r"class folder.*'c\\nd'"):
        open_dataset(root)


def test_image_folder_refuses_a_name_that_is_not_utf8(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    try:
        write_png(Path(os.fsdecode(os.fsencode(root / "a") + b"/\xff.png")), np.zeros((4, 4, 3), np.uint8))
    except (OSError, UnicodeError):  # pragma: no cover - a file system that only takes UTF-8 names
        pytest.skip("this file system refuses non-UTF-8 names")
    with pytest.raises(NaviewerError, match=r"a/\\xff.png.*not UTF-8"):
        open_dataset(root)


@pytest.mark.parametrize("char", ["\x0c", "\x85", "\u2028", "\x1e", "\x0b", "\x00", "\x1b"])
def test_file_list_refuses_a_line_with_a_control_character(tmp_path: Path, char: str) -> None:
    root = _tree(tmp_path)
    (root / "list.txt").write_text(f"a/0.png 0\na/1{char}x.png 1\nb/0.png 1\n", encoding="utf-8")
    with pytest.raises(NaviewerError, match="line 2: .*(control character|line separator|rename)") as info:
        FileListDataset(root / "list.txt")
    assert info.value.path == str((root / "list.txt").resolve())


def test_file_list_tab_separator_is_fine_but_a_tab_inside_a_name_is_not(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "list.txt").write_text("a/0.png\t0\r\nb/1.png \t 1\n")
    data = FileListDataset(root / "list.txt")
    assert [data.source_key(i) for i in range(2)] == ["a/0.png", "b/1.png"] and data.labels.tolist() == [0, 1]
    write_png(root / "a" / "x\ty.png", np.zeros((4, 4, 3), np.uint8))
    (root / "list.txt").write_text("a/x\ty.png 0\n")
    with pytest.raises(NaviewerError, match=r"line 1: the name 'a/x\\ty.png'.*tab"):
        FileListDataset(root / "list.txt")


def test_csv_manifest_refuses_a_quoted_newline_in_a_path(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    write_png(root / "a" / EVIL, np.zeros((4, 4, 3), np.uint8))
    (root / "m.csv").write_text('path,label\na/0.png,0\n"a/evil\nINJECTED_LINE 7\nx.png",0\n', encoding="utf-8")
    with pytest.raises(NaviewerError, match=r"line 5: the name 'a/evil\\nINJECTED_LINE 7\\nx.png'"):
        FileListDataset(root / "m.csv")
    (root / "nul.csv").write_text("path,label\na/0\x00.png,0\n", encoding="utf-8")
    with pytest.raises(NaviewerError, match="nul.csv"):
        FileListDataset(root / "nul.csv")


@pytest.mark.parametrize("key", [EVIL, "a\rb.png", "x\u2028y.png", " lead.png", "trail.png ", "#hash.png", ""])
def test_write_file_list_refuses_what_would_not_read_back(tmp_path: Path, key: str) -> None:
    target = tmp_path / "list.txt"
    target.write_text("old 0\n")
    with pytest.raises(NaviewerError, match="entry 1 cannot be written as one 'path label' line") as info:
        write_file_list(target, ["ok.png", key], [0, 1])
    assert info.value.path == str(target)
    assert target.read_text() == "old 0\n"  # nothing written, the old list kept
    assert [p.name for p in tmp_path.iterdir()] == ["list.txt"]  # and no temporary left


def test_name_checks() -> None:
    assert name_problem("a b/c (1).png") is None and name_problem("ünï/ção.png") is None
    assert "line feed" in name_problem("a\nb")
    assert "next-line" in name_problem("a\x85b")
    assert list_line_problem("#a") and list_line_problem(" a") and list_line_problem("a ") and list_line_problem("")
    assert list_line_problem("a#b.png") is None
    assert shown("a\nb") == "'a\\nb'" and "\n" not in shown(EVIL)
