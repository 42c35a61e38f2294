"""``path label`` lists and CSV manifests: parsing, round trip, and refusal of escaping paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from naviewer.data.base import UNLABELED
from naviewer.data.filelist import FileListDataset, write_file_list
from naviewer.errors import NaviewerError

from .makers import write_png


@pytest.fixture
def pngs(tmp_path: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    images = {}
    for key in ["imgs/a.png", "imgs/b c.png", "imgs/sub/d.png", "e.png"]:
        images[key] = rng.integers(0, 256, size=(int(rng.integers(4, 12)), int(rng.integers(4, 12)), 3), dtype=np.uint8)
        write_png(tmp_path / key, images[key])
    return images


def test_round_trip_png_and_path_label_list(tmp_path: Path, pngs) -> None:
    keys = list(pngs)
    labels = np.array([2, 0, 1, 2])
    listing = write_file_list(tmp_path / "list.txt", keys, labels)
    data = FileListDataset(listing)
    assert len(data) == 4 and data.kind == "filelist"
    assert [data.source_key(i) for i in range(4)] == keys
    np.testing.assert_array_equal(data.labels, labels)
    assert data.class_names == ["0", "1", "2"]
    for i, key in enumerate(keys):
        np.testing.assert_array_equal(data.image(i), pngs[key])
    again = FileListDataset(write_file_list(tmp_path / "again.txt", [data.source_key(i) for i in range(4)], data.labels))
    assert [again.content_hash(i) for i in range(4)] == [data.content_hash(i) for i in range(4)]


def test_comments_blank_lines_spaces_unlabeled_and_class_names(tmp_path: Path, pngs) -> None:
    (tmp_path / "classes.txt").write_text("cat\ndog\n\nbird\n")
    write_png(tmp_path / "imgs" / "f g.png", np.zeros((3, 3, 3), np.uint8))
    (tmp_path / "list.txt").write_text(
        "# a comment\n\nimgs/a.png 1\n  imgs/b c.png   2  \nimgs/f g.png\nimgs/sub/./d.png -1\ne.png\tdog\r\n"
    )
    data = FileListDataset(tmp_path / "list.txt")
    assert data.class_names == ["cat", "dog", "bird"]
    np.testing.assert_array_equal(data.labels, [1, 2, UNLABELED, UNLABELED, 1])
    assert data.source_key(1) == "imgs/b c.png" and data.source_key(2) == "imgs/f g.png"
    assert data.source_key(3) == "imgs/sub/d.png"
    assert data.label(2) is None


def test_absolute_paths_inside_an_explicit_root(tmp_path: Path, pngs) -> None:
    """The research lists hold absolute paths: they load when the root holds them."""
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "train.txt").write_text(f"{tmp_path / 'imgs' / 'a.png'} 0\n{tmp_path / 'e.png'} 1\n")
    with pytest.raises(NaviewerError, match="line 1: .*outside the dataset root"):
        FileListDataset(lists / "train.txt")  # default root: the list's own folder
    data = FileListDataset(lists / "train.txt", root=tmp_path)
    assert [data.source_key(i) for i in range(2)] == ["imgs/a.png", "e.png"]
    assert data.describe()["root"] == str(tmp_path.resolve())


@pytest.mark.parametrize("line", ["../outside.png 0", "imgs/../../outside.png 0", "/etc/passwd 0"])
def test_paths_escaping_the_root_are_refused(tmp_path: Path, pngs, line: str) -> None:
    write_png(tmp_path.parent / "outside.png", np.zeros((2, 2, 3), np.uint8))
    (tmp_path / "list.txt").write_text(f"imgs/a.png 0\n{line}\n")
    with pytest.raises(NaviewerError, match="line 2: .*outside the dataset root") as info:
        FileListDataset(tmp_path / "list.txt")
    assert info.value.path == str((tmp_path / "list.txt").resolve())


def test_symlink_escaping_the_root_is_refused(tmp_path: Path, pngs) -> None:
    outside = write_png(tmp_path.parent / "secret.png", np.zeros((2, 2, 3), np.uint8))
    (tmp_path / "link.png").symlink_to(outside)
    (tmp_path / "list.txt").write_text("link.png 0\n")
    with pytest.raises(NaviewerError, match="line 1: .*outside"):
        FileListDataset(tmp_path / "list.txt")


@pytest.mark.parametrize(
    "content, message",
    [
        ("imgs/a.png 0\nimgs/a.png 5\n", "line 2: label 5 is out of range"),
        ("imgs/a.png 0\n\nimgs/a.png -3\n", "line 3: label -3 is out of range"),
        ("imgs/a.png zebra\n", "line 1: label 'zebra' is not an integer or a class name"),
        ("imgs/a.png 0\nimgs/missing.png 1\n", "line 2: image not found"),
        ("# only a comment\n\n", "no samples"),
    ],
)
def test_bad_lines_name_the_file_and_line(tmp_path: Path, pngs, content: str, message: str) -> None:
    (tmp_path / "list.txt").write_text(content)
    with pytest.raises(NaviewerError, match=message) as info:
        FileListDataset(tmp_path / "list.txt", class_names=["a", "b", "c"])
    assert info.value.path == str((tmp_path / "list.txt").resolve())


def test_unreadable_image_in_a_list_names_the_image(tmp_path: Path, pngs) -> None:
    (tmp_path / "e.png").write_bytes(b"garbage")
    (tmp_path / "list.txt").write_text("imgs/a.png 0\ne.png 1\n")
    data = FileListDataset(tmp_path / "list.txt")
    data.image(0)
    with pytest.raises(NaviewerError) as info:
        data.image(1)
    assert info.value.path == str((tmp_path / "e.png").resolve())


def test_csv_manifest_with_extra_columns(tmp_path: Path, pngs) -> None:
    (tmp_path / "m.csv").write_text(
        "id,Path,score,label\n0,imgs/a.png,0.5,1\n1,\"imgs/b c.png\",0.1,\n\n2,e.png,0.9,0\n"
    )
    data = FileListDataset(tmp_path / "m.csv")
    assert data.kind == "csv-manifest" and len(data) == 3
    np.testing.assert_array_equal(data.labels, [1, UNLABELED, 0])
    assert data.source_key(1) == "imgs/b c.png"
    np.testing.assert_array_equal(data.image(2), pngs["e.png"])
    assert data.describe() == {"kind": "csv-manifest", "path": str((tmp_path / "m.csv").resolve()), "size": 3}


def test_csv_errors_name_the_line(tmp_path: Path, pngs) -> None:
    (tmp_path / "nopath.csv").write_text("file_name_typo,label\na.png,0\n")
    with pytest.raises(NaviewerError, match="no 'path' column"):
        FileListDataset(tmp_path / "nopath.csv")
    (tmp_path / "bad.csv").write_text("path,label\nimgs/a.png,0\n../x.png,1\n")
    with pytest.raises(NaviewerError, match="line 3: .*outside"):
        FileListDataset(tmp_path / "bad.csv")
    (tmp_path / "lab.csv").write_text("path,label\nimgs/a.png,0\nimgs/a.png,one\n")
    with pytest.raises(NaviewerError, match="line 3: label 'one'"):
        FileListDataset(tmp_path / "lab.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(NaviewerError, match="empty"):
        FileListDataset(tmp_path / "empty.csv")


def test_missing_list_and_binary_list(tmp_path: Path) -> None:
    with pytest.raises(NaviewerError, match="not found"):
        FileListDataset(tmp_path / "nope.txt")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(NaviewerError, match="UTF-8"):
        FileListDataset(tmp_path / "bin.txt")


def test_csv_rows_longer_than_the_header_and_class_name_files_are_read_strictly(tmp_path):
    """A `path` header over `cat/0.png,0` rows dropped every label unsaid; a `# names` header line in classes.txt
    became class 0 and shifted every name; a name listed twice made its label ambiguous."""
    from naviewer.data.filelist import read_class_names

    (tmp_path / "cat").mkdir()
    write_png(tmp_path / "cat" / "0.png", np.zeros((8, 8, 3), np.uint8))
    manifest = tmp_path / "list.csv"
    manifest.write_text("path\ncat/0.png,0\n")
    with pytest.raises(NaviewerError, match="line 2: 2 fields but the header"):
        FileListDataset(manifest)
    names = tmp_path / "classes.txt"
    names.write_text("# class names\ncat\n#x\ndog\n")
    assert read_class_names(names) == ["cat", "#x", "dog"]  # '#x' is a folder's name, '# ...' a comment
    names.write_text("cat\ndog\ncat\n")
    with pytest.raises(NaviewerError, match="'cat' is listed twice"):
        read_class_names(names)


def test_two_sets_that_number_their_classes_differently_are_named():
    """eval with a test list whose classes.txt reversed the names gave a kNN accuracy of 0 % and exit 0."""
    from naviewer.data.names import class_numbering_problem

    assert class_numbering_problem(["cat", "dog"], ["cat", "dog"], "test set", "training set") is None
    assert class_numbering_problem(["0", "1"], ["cat", "dog"], "test set", "training set") is None  # unnamed list
    assert "class 0 is 'dog' in the test set but 'cat'" in class_numbering_problem(["dog", "cat"], ["cat", "dog"],
                                                                                     "test set", "training set")
    assert "class 2 is '10'" in class_numbering_problem([str(c) for c in sorted(range(11), key=str)],
                                                        [str(c) for c in range(11)], "a", "b")
    # more classes than ours: allowed for a kNN test set (its caller warns), a problem where no label may go beyond
    assert class_numbering_problem([str(c) for c in range(10)], ["cat", "dog"], "test set", "workspace") is None
    assert "the test set has 10 classes, 2 expected (cat, dog): its class 2 ('2')" in class_numbering_problem(
        [str(c) for c in range(10)], ["cat", "dog"], "test set", "workspace", more_allowed=False)


def test_a_label_left_off_some_lines_of_a_labelled_list_is_said(tmp_path: Path, pngs) -> None:
    """One line without its label read as "unlabelled" without a word (a sweep, session 19); -1 says so on purpose."""
    from naviewer.data.base import DatasetWarning

    (tmp_path / "list.txt").write_text("imgs/a.png 1\nimgs/sub/d.png\ne.png 0\n")
    with pytest.warns(DatasetWarning, match=r"1 line has no label \(line 2\) while 2 have one"):
        data = FileListDataset(tmp_path / "list.txt")
    np.testing.assert_array_equal(data.labels, [1, UNLABELED, 0])
    (tmp_path / "explicit.txt").write_text("imgs/a.png 1\nimgs/sub/d.png -1\ne.png 0\n")
    (tmp_path / "none.txt").write_text("imgs/a.png\nimgs/sub/d.png\ne.png\n")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetWarning)
        FileListDataset(tmp_path / "explicit.txt")  # -1 on purpose: nothing to say
        FileListDataset(tmp_path / "none.txt")  # an unlabelled list: nothing to say


def test_a_windows_path_is_hinted(tmp_path: Path, pngs) -> None:
    """``imgs\\a.png`` read as a bare "image not found" (a sweep, session 19)."""
    (tmp_path / "list.txt").write_text("imgs\\a.png 0\n")
    with pytest.raises(NaviewerError, match="a Windows path"):
        FileListDataset(tmp_path / "list.txt")


def test_a_listed_path_that_is_no_image_says_why(tmp_path: Path, pngs, monkeypatch) -> None:
    """"image not found" was said for an image in a folder naviewer may not read (a sweep, session 24): a folder, a
    pipe and an unreadable folder each read in their own words."""
    import os

    (tmp_path / "list.txt").write_text("imgs/sub 0\n")
    with pytest.raises(NaviewerError, match="line 1: a folder, not an image: 'imgs/sub'"):
        FileListDataset(tmp_path / "list.txt")
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "list.txt").write_text("imgs/a.png 0\npipe.png 1\n")
    with pytest.raises(NaviewerError, match="line 2: not a regular file"):
        FileListDataset(tmp_path / "list.txt")
    real_stat, real_lstat = os.stat, os.lstat

    def denied(path, *args, **kwargs):
        if "imgs" in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    def denied_l(path, *args, **kwargs):
        if "imgs" in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_lstat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", denied)
    monkeypatch.setattr(os, "lstat", denied_l)
    (tmp_path / "list.txt").write_text("imgs/a.png 0\n")
    with pytest.raises(NaviewerError, match="line 1: image not readable \\(permission denied on its folder\\)"):
        FileListDataset(tmp_path / "list.txt")


def test_a_class_names_file_that_is_a_pipe_is_refused_not_passed_over(tmp_path):
    """A classes.txt that is a pipe was passed over in silence and the classes became 0/1 (a bad-input corpus,
    session 23); it is never opened (a pipe would block the read)."""
    import os

    import numpy as np
    import pytest
    from PIL import Image

    from naviewer.data import open_dataset
    from naviewer.errors import NaviewerError

    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "list.txt").write_text("a.png 0\n")
    os.mkfifo(tmp_path / "classes.txt")
    with pytest.raises(NaviewerError, match="not a regular file"):
        open_dataset(tmp_path / "list.txt")


def test_a_comment_line_naming_an_existing_image_is_said(tmp_path):
    """"#c.png 0" beside an image named "#c.png" was left out as a comment without a word (a bad-input probe,
    session 30): still a comment, with a warning that says how to list it; written ./#c.png it is listed."""
    from naviewer.data.base import DatasetWarning

    for name in ("a.png", "#c.png"):
        write_png(tmp_path / name, np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "list.txt").write_text("#c.png 0\na.png 1\n# a plain comment\n")
    with pytest.warns(DatasetWarning, match=r"line 1 '#c.png 0' is read as a comment, but a file of that name exists; "
                                            r"write ./#c.png to list it"):
        assert len(FileListDataset(tmp_path / "list.txt")) == 1
    (tmp_path / "list.txt").write_text("./#c.png 0\na.png 1\n")
    assert len(FileListDataset(tmp_path / "list.txt")) == 2
