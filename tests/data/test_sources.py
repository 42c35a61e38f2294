"""open_dataset recognises every source, re-opens describe() dicts, and refuses the unknown."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from naviewer.data import SubsetDataset, open_dataset
from naviewer.data.filelist import write_file_list
from naviewer.errors import NaviewerError

from .makers import make_cifar10, make_cifar100, write_png


def _same(a, b) -> None:
    assert type(a) is type(b) and len(a) == len(b)
    assert [a.content_hash(i) for i in range(len(a))] == [b.content_hash(i) for i in range(len(b))]
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.class_names == b.class_names


def test_detects_cifar10_parent_and_folder(tmp_path: Path) -> None:
    folder, _ = make_cifar10(tmp_path, per_batch=3, batches=(1,))
    for spec in (tmp_path, folder, str(folder)):
        data = open_dataset(spec)
        assert data.kind == "cifar10" and len(data) == 3
    test = open_dataset(tmp_path, split="test")
    _same(test, open_dataset(test.describe()))


def test_cifar_batches_in_a_folder_of_another_name_are_cifar(tmp_path: Path) -> None:
    """The batches copied into ``c10/`` read "no class folders here (expected root/<class>/<image>)" (a sweep)."""
    import shutil

    folder, _ = make_cifar10(tmp_path / "orig", per_batch=3, batches=(1,))
    shutil.copytree(folder, tmp_path / "c10")
    data = open_dataset(tmp_path / "c10")
    assert data.kind == "cifar10" and len(data) == 3
    _same(data, open_dataset(data.describe()))


def test_an_unreadable_folder_is_said_as_such(tmp_path: Path, monkeypatch) -> None:
    """It read "t/cifar-10-batches-py: permission denied", a folder it never had (a sweep, session 19)."""
    import os

    (tmp_path / "t").mkdir()
    real = os.scandir

    def denied(path="."):
        if Path(path) == tmp_path / "t":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", denied)
    with pytest.raises(NaviewerError, match="permission denied: this folder cannot be read") as caught:
        open_dataset(tmp_path / "t")
    assert caught.value.path == str(tmp_path / "t")


def test_detects_cifar100(tmp_path: Path) -> None:
    make_cifar100(tmp_path, n=4)
    data = open_dataset(tmp_path, coarse=True)
    assert data.kind == "cifar100" and len(data.class_names) == 20
    _same(data, open_dataset(data.describe()))


def test_detects_tree_list_and_csv(image_tree, tmp_path: Path) -> None:
    root, _ = image_tree
    tree = open_dataset(root)
    assert tree.kind == "image-folder"
    _same(tree, open_dataset(tree.describe()))
    keys = [tree.source_key(i) for i in range(len(tree))]
    listing = write_file_list(root / "list.txt", keys, tree.labels)
    listed = open_dataset(listing)
    assert listed.kind == "filelist"
    assert [listed.content_hash(i) for i in range(len(tree))] == [tree.content_hash(i) for i in range(len(tree))]
    _same(listed, open_dataset(listed.describe()))
    (root / "m.csv").write_text("path,label\n" + "".join(f"{k},{l}\n" for k, l in zip(keys, tree.labels)))
    manifest = open_dataset(str(root / "m.csv"), class_names=tree.class_names)
    assert manifest.kind == "csv-manifest" and manifest.class_names == tree.class_names
    _same(manifest, open_dataset(manifest.describe()))


def test_split_folders(tmp_path: Path) -> None:
    for split, n in (("train", 3), ("val", 1)):
        for i in range(n):
            write_png(tmp_path / split / "cls" / f"{i}.png", np.full((3, 3, 3), i, np.uint8))
    assert len(open_dataset(tmp_path)) == 3
    assert len(open_dataset(tmp_path, split="val")) == 1
    with pytest.raises(NaviewerError, match="no 'test' folder"):
        open_dataset(tmp_path, split="test")


def test_demo_and_its_description() -> None:
    demo = open_dataset("demo", split="test")
    assert demo.kind == "demo" and len(demo) == 360
    again = open_dataset(demo.describe())
    assert again.content_hash(5) == demo.content_hash(5)


def test_subset_description_round_trip() -> None:
    subset = SubsetDataset(open_dataset("demo"), [5, 0, 9])
    again = open_dataset(subset.describe())
    assert isinstance(again, SubsetDataset) and [again.source_key(i) for i in range(3)] == [
        subset.source_key(i) for i in range(3)
    ]


@pytest.mark.parametrize("spec", ["", "   ", "does/not/exist"])
def test_unknown_or_empty_specs(spec: str) -> None:
    with pytest.raises(NaviewerError):
        open_dataset(spec)


def test_empty_folder_and_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(NaviewerError, match="no class folders") as info:
        open_dataset(tmp_path / "empty")
    assert info.value.path == str((tmp_path / "empty").resolve())
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(NaviewerError, match="empty") as info:
        open_dataset(tmp_path / "empty.txt")
    assert info.value.path == str(tmp_path / "empty.txt")


def test_bad_descriptions(tmp_path: Path) -> None:
    with pytest.raises(NaviewerError, match="unknown dataset kind"):
        open_dataset({"kind": "imagenet-22k"})
    with pytest.raises(NaviewerError, match="cannot be re-opened"):
        open_dataset({"kind": "memory", "size": 3})
    with pytest.raises(NaviewerError, match="no 'root'"):
        open_dataset({"kind": "cifar10"})
    folder, _ = make_cifar10(tmp_path, per_batch=3, batches=(1,))
    description = open_dataset(folder).describe()
    with pytest.raises(NaviewerError, match="recorded with 99 samples but now has 3"):
        open_dataset({**description, "size": 99})
    with pytest.raises(NaviewerError, match="does not fit"):
        open_dataset({"kind": "subset", "base": description, "indices": [0, 7]})


def test_other_files_are_refused_with_a_hint(tmp_path: Path) -> None:
    folder, _ = make_cifar10(tmp_path, per_batch=2, batches=(1,))
    with pytest.raises(NaviewerError, match="open the folder") as info:
        open_dataset(folder / "data_batch_1")
    assert info.value.path == str(folder / "data_batch_1")
    (tmp_path / "model.pt").write_bytes(b"\x80\x02")
    with pytest.raises(NaviewerError, match="not a dataset naviewer can read"):
        open_dataset(tmp_path / "model.pt")


def test_demo_always_names_the_builtin_set_even_beside_a_demo_folder(tmp_path, monkeypatch):
    (tmp_path / "demo").mkdir()
    monkeypatch.chdir(tmp_path)
    from naviewer.data import open_dataset
    from naviewer.data.demo import DigitsDemoDataset

    from naviewer.data.base import DatasetWarning

    with pytest.warns(DatasetWarning, match=r"the demo here .* is not read: give ./demo"):
        assert isinstance(open_dataset("demo"), DigitsDemoDataset)
    (tmp_path / "digits").mkdir()  # the user's own ./digits trained the built-in set without a word (a sweep)
    with pytest.warns(DatasetWarning, match="give ./digits"):
        open_dataset("digits")
    monkeypatch.chdir(tmp_path / "demo")  # no such folder here: no word
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetWarning)
        open_dataset("digits")


def test_a_folder_with_a_train_list_is_read_as_that_list(tmp_path: Path) -> None:
    """naviewer craft writes images/<class>/*.png + train.txt + classes.txt; the folder itself must open as
    that list (two classes), not as an image folder whose one class is "images"."""
    keys = []
    for i, name in enumerate(("cat", "dog", "dog")):
        key = f"images/{name}/{i:06d}.png"
        write_png(tmp_path / key, np.full((4, 4, 3), i, np.uint8))
        keys.append(key)
    labels = [0, 1, 1]
    write_file_list(tmp_path / "train.txt", keys, labels)
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    data = open_dataset(tmp_path)
    assert data.kind == "filelist" and len(data) == 3
    assert data.class_names == ["cat", "dog"] and list(data.labels) == labels
    assert len(open_dataset(tmp_path, split="test")) == 3  # no test.txt: the list, as folders without splits
    write_file_list(tmp_path / "test.txt", keys[:1], labels[:1])
    assert len(open_dataset(tmp_path, split="test")) == 1


def test_split_folders_in_any_case_and_a_stray_list_say_what_they_read(tmp_path):
    """Train/ and Test/ became two classes named after the splits; a train.txt beside class folders turned the
    folder into that list without a word (a bad-input probe, session 11)."""
    import warnings as _warnings

    from PIL import Image

    from naviewer.data import open_dataset
    from naviewer.data.base import DatasetWarning

    for split in ("Train", "Test"):
        for cls in ("cat", "dog"):
            (tmp_path / "a" / split / cls).mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(tmp_path / "a" / split / cls / "0.png")
    assert open_dataset(str(tmp_path / "a")).class_names == ["cat", "dog"]
    assert len(open_dataset(str(tmp_path / "a"), split="test")) == 2
    for cls in ("cat", "dog"):
        (tmp_path / "b" / cls).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "b" / cls / "0.png")
    (tmp_path / "b" / "train.txt").write_text("cat/0.png 0\n")
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        assert len(open_dataset(str(tmp_path / "b"))) == 1
    assert any(issubclass(w.category, DatasetWarning) and "not as the folders beside it" in str(w.message)
               for w in caught)


def test_class_names_are_peeked_without_reading_images(tmp_path: Path) -> None:
    """The New workspace dialog names the target class ("= airplane") from these; anything else is None, not an
    error (a hint only)."""
    from naviewer.data.sources import peek_class_names

    assert peek_class_names("demo") == [str(d) for d in range(10)]
    make_cifar10(tmp_path / "c", per_batch=3, batches=(1,))
    assert peek_class_names(tmp_path / "c") == open_dataset(tmp_path / "c").class_names
    for name in ("dog", "cat"):
        write_png(tmp_path / "f" / name / "0.png", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "f" / ".hidden").mkdir()
    assert peek_class_names(tmp_path / "f") == ["cat", "dog"] == open_dataset(tmp_path / "f").class_names
    write_file_list(tmp_path / "list.txt", [str(tmp_path / "f" / "cat" / "0.png")], [0])
    assert peek_class_names(tmp_path / "list.txt") is None and peek_class_names(tmp_path / "nowhere") is None


def test_a_workspace_beside_a_folder_named_like_a_built_in_set_is_not_inside_it(tmp_path, monkeypatch):
    """'demo' names the built-in set even beside a ./demo folder: demo/ws is not inside that dataset (a review)."""
    from naviewer.data.sources import inside_dataset_folder

    (tmp_path / "demo").mkdir()
    (tmp_path / "mine").mkdir()
    monkeypatch.chdir(tmp_path)
    assert not inside_dataset_folder("demo/ws", "demo")
    assert inside_dataset_folder("mine/ws", "mine") and inside_dataset_folder(tmp_path / "mine", str(tmp_path / "mine"))
    assert not inside_dataset_folder("elsewhere/ws", "mine")
