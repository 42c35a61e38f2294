"""Bad-input corpus, dataset sources: every kind refused by ``naviewer new`` with exit 2, the file named,
no traceback, nothing created or changed (issue 15)."""

from __future__ import annotations

import os
import pickle
import struct
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from badinput_kit import (
    assert_refused,
    cifar_folder,
    file_list,
    image_tree,
    png_bytes,
    run_cli,
    unchanged,
    write_image,
)

EVIL = "evil\nINJECTED_LINE 7\nx.png"


def _bomb(path: Path) -> None:
    """A tiny PNG whose header claims 100000 x 100000 pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _tree_with(extra: Callable[[Path], None]) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        root = image_tree(tmp / "tree")
        extra(root)
        return root
    return make


def _link(root: Path, link: str, target: str) -> None:
    (root / link).symlink_to(target, target_is_directory=not target.endswith(".png"))


def _non_utf8(root: Path) -> None:
    (Path(os.fsdecode(os.fsencode(root / "a") + b"/\xff\xfe.png"))).write_bytes(png_bytes())


def _two_class_links(root: Path) -> None:
    shared = root.parent / "shared"
    write_image(shared / "s.png")
    (root / "a" / "s").symlink_to(shared, target_is_directory=True)
    (root / "b" / "s").symlink_to(shared, target_is_directory=True)


def _rewritten(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _corrupt_blp(path: Path) -> None:
    """A BLP whose encoding byte is unknown: Pillow's plugin raises NotImplementedError, not OSError."""
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("P", (4, 4)).save(buffer, format="BLP")
    data = bytearray(buffer.getvalue())
    data[8] = 9
    path.write_bytes(bytes(data))


def _emptied(root: Path) -> None:
    for path in root.rglob("*.png"):
        path.unlink()


#: (case id, maker returning the dataset path, the file the message must name (relative to tmp), words)
SOURCE_CASES = [
    ("folder-newline-name", _tree_with(lambda r: write_image(r / "a" / EVIL)), "tree", ["line feed"]),
    ("folder-cr-name", _tree_with(lambda r: write_image(r / "a" / "x\ry.png")), "tree", ["carriage return"]),
    ("folder-u2028-name", _tree_with(lambda r: write_image(r / "b" / "x\u2028y.png")), "tree", ["line separator"]),
    ("folder-nel-name", _tree_with(lambda r: write_image(r / "b" / "x\x85y.png")), "tree", ["next-line"]),
    ("folder-tab-name", _tree_with(lambda r: write_image(r / "b" / "x\ty.png")), "tree", ["tab"]),
    ("folder-escape-name", _tree_with(lambda r: write_image(r / "b" / "x\x1b[31m.png")), "tree", ["U+001B"]),
    ("folder-non-utf8-name", _tree_with(_non_utf8), "tree", ["not UTF-8"]),
    ("folder-newline-class", _tree_with(lambda r: write_image(r / "c\nd" / "0.png")), "tree", ["class folder"]),
    ("folder-link-into-class", _tree_with(lambda r: _link(r, "a/lb", "../b")), "tree", ["two labels"]),
    ("folder-link-into-subfolder", _tree_with(lambda r: (write_image(r / "b" / "s" / "x.png"), _link(r, "a/l", "../b/s"))),
     "tree", ["two labels"]),
    ("folder-file-link-other-class", _tree_with(lambda r: _link(r, "a/x.png", "../b/0.png")), "tree", ["two labels"]),
    ("folder-two-classes-one-folder", _tree_with(_two_class_links), "tree", ["two labels"]),
    ("folder-class-alias", _tree_with(lambda r: _link(r, "c", "b")), "tree", ["same folder"]),
    ("folder-no-images", _tree_with(_emptied), "tree", ["no images"]),
    ("folder-no-classes", lambda t: (t / "bare").mkdir() or (t / "bare"), "bare", ["no class folders"]),
    ("folder-corrupt-png", _tree_with(lambda r: (r / "a" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\ngarbage")),
     "tree/a/bad.png", []),
    ("folder-corrupt-blp", _tree_with(lambda r: _corrupt_blp(r / "a" / "x.blp")), "tree/a/x.blp", ["corrupt"]),
    ("folder-bomb-png", _tree_with(lambda r: _bomb(r / "a" / "bomb.png")), "tree/a/bomb.png", ["pixels"]),
    ("folder-eps-as-png", _tree_with(lambda r: (r / "a" / "ps.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 1 1\n")),
     "tree/a/ps.png", []),
    ("list-form-feed", lambda t: file_list(t, "a.png 0\nb\x0cx.png 1\n"), "list.txt", ["line 2", "form feed"]),
    ("list-nul", lambda t: file_list(t, "a.png 0\nb\x00.png 1\n"), "list.txt", ["line 2"]),
    ("list-u2028", lambda t: file_list(t, "a.png 0\nb\u2028x.png 1\n"), "list.txt", ["line 2"]),
    ("list-label-1e6", lambda t: file_list(t, "a.png 0\nb.png 1000000\n"), "list.txt", ["line 2", "classes"]),
    ("list-label-1e7", lambda t: file_list(t, "a.png 10000000\n"), "list.txt", ["line 1", "classes"]),
    ("list-label-5000-digits", lambda t: file_list(t, "a.png " + "7" * 5000 + "\n"), "list.txt", ["line 1"]),
    ("list-two-labels", lambda t: file_list(t, "a.png 0\nb.png 1\n./a.png 1\n"), "list.txt", ["line 3", "one label"]),
    ("list-dotdot", lambda t: file_list(t, "a.png 0\n../outside.png 1\n"), "list.txt", ["line 2", "outside"]),
    ("list-absolute", lambda t: file_list(t, "/etc/passwd 0\n"), "list.txt", ["line 1", "outside"]),
    ("list-missing-image", lambda t: file_list(t, "a.png 0\nnope.png 1\n"), "list.txt", ["line 2", "not found"]),
    ("list-not-utf8", lambda t: _rewritten(file_list(t, ""), b"a.png 0\n\xff\xfe 1\n"), "list.txt", ["UTF-8"]),
    ("list-only-comments", lambda t: file_list(t, "# nothing\n\n"), "list.txt", ["no samples"]),
    ("list-empty", lambda t: file_list(t, ""), "list.txt", ["empty"]),
    ("list-word-label", lambda t: file_list(t, "a.png cat\n"), "list.txt", ["line 1", "'cat'", "classes.txt beside"]),
    # an empty classes.txt read "label 0 is out of range (0..-1)" (a bad-input corpus, session 23)
    ("list-empty-classes-txt", lambda t: (file_list(t, "a.png 0\n"), (t / "classes.txt").write_text(""))[0],
     "list.txt", ["line 1", "classes.txt is empty"]),
    ("list-empty-classes-txt-negative", lambda t: (file_list(t, "a.png -3\n"), (t / "classes.txt").write_text(""))[0],
     "list.txt", ["line 1", "out of range"]),
    ("list-empty-classes-txt-name", lambda t: (file_list(t, "a.png cat\n"), (t / "classes.txt").write_text(""))[0],
     "list.txt", ["line 1", "classes.txt is empty"]),
    ("list-negative-label", lambda t: file_list(t, "a.png -3\n"), "list.txt", ["line 1", "out of range"]),
    ("list-label-beyond-classes", lambda t: (file_list(t, "a.png 0\nb.png 2\n"),
                                             (t / "classes.txt").write_text("x\ny\n"))[0],
     "list.txt", ["line 2", "out of range"]),
    ("list-symlink-escape", lambda t: ((t / "sub").mkdir(), write_image(t / "secret.png"),
                                       (t / "sub" / "l.png").symlink_to(t / "secret.png"),
                                       file_list(t / "sub", "l.png 0\n", images=()))[-1],
     "sub/list.txt", ["outside"]),
    ("list-symlink-loop", lambda t: ((t / "loop.png").symlink_to(t / "loop.png"), file_list(t, "loop.png 0\n"))[-1],
     "list.txt", ["line 1"]),
    ("csv-quoted-newline", lambda t: (write_image(t / EVIL), file_list(t, f'path,label\na.png,0\n"{EVIL}",1\n',
                                                                        name="m.csv"))[-1],
     "m.csv", ["line 5", "line feed"]),
    ("csv-no-path-column", lambda t: file_list(t, "file_name,label\na.png,0\n", name="m.csv"), "m.csv",
     ["no 'path' column"]),
    ("csv-column-twice", lambda t: file_list(t, "path,path,label\na.png,b.png,0\n", name="m.csv"), "m.csv",
     ["line 1", "2 path columns"]),
    ("csv-path-aliases", lambda t: file_list(t, "path,file,label\na.png,b.png,0\n", name="m.csv"), "m.csv",
     ["line 1", "path, file"]),
    ("csv-label-1e6", lambda t: file_list(t, "path,label\na.png,1000000\n", name="m.csv"), "m.csv", ["line 2"]),
    ("csv-empty-path", lambda t: file_list(t, "path,label\n,0\n", name="m.csv"), "m.csv", ["line 2", "no path"]),
    ("csv-nul", lambda t: file_list(t, "path,label\na\x00.png,0\n", name="m.csv"), "m.csv", []),
    ("csv-empty", lambda t: file_list(t, "", name="m.csv"), "m.csv", ["empty"]),
    ("cifar-code-pickle", lambda t: cifar_folder(t / "c", batch=_Evil()), "data_batch_1", []),
    ("cifar-truncated", lambda t: cifar_folder(t / "c", raw_batch=pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)},
                                                                                 protocol=2)[:50]),
     "data_batch_1", []),
    ("cifar-data-shape", lambda t: cifar_folder(t / "c", batch={b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}),
     "data_batch_1", ["expected uint8"]),
    ("cifar-label-range", lambda t: cifar_folder(t / "c", batch={b"data": np.zeros((2, 3072), np.uint8),
                                                                 b"labels": [0, 10**7]}),
     "data_batch_1", ["out of range"]),
    ("cifar-not-a-dict", lambda t: cifar_folder(t / "c", batch=[1, 2, 3]), "data_batch_1", ["expected a dict"]),
    ("cifar-meta-garbled", lambda t: cifar_folder(t / "c", meta={b"other": 1}), "batches.meta", ["class names"]),
    ("cifar-class-name-newline", lambda t: cifar_folder(t / "c", meta={b"label_names": [b"cat", b"dog\nINJECTED"]}),
     "batches.meta", ["class 1", "line feed"]),
    ("missing-path", lambda t: t / "does-not-exist", "does-not-exist", ["no such file"]),
    ("unknown-suffix", lambda t: _rewritten(t / "data.bin", b"x"), "data.bin",
     ["not a dataset"]),
]


@pytest.mark.parametrize("case, make, named, words", SOURCE_CASES, ids=[c[0] for c in SOURCE_CASES])
def test_bad_source_is_refused(tmp_path: Path, case: str, make, named: str, words: list[str]) -> None:  # noqa: ANN001
    source_dir = tmp_path / "src"
    source_dir.mkdir()
    try:
        source = make(source_dir)
    except (OSError, UnicodeError) as exc:  # pragma: no cover - e.g. a file system that refuses the name
        pytest.skip(f"cannot make this case here: {exc}")
    workspace = tmp_path / "ws"
    with unchanged(tmp_path):
        outcome = run_cli(["new", workspace, "--dataset", source])
    line = assert_refused(outcome, named, *words)
    assert str(tmp_path.resolve()) in line or str(tmp_path) in line, line
    assert not workspace.exists()
    assert not (source_dir / "PWNED").exists() and not Path("PWNED").exists()


def test_embed_of_a_split_the_source_does_not_have_is_refused(tmp_path: Path) -> None:
    """``embed --split test`` of a plain image folder wrote the train images' embeddings and exited 0."""
    from naviewer.data.sources import has_split

    root = image_tree(tmp_path / "tree")
    out = tmp_path / "e.npy"
    with unchanged(tmp_path):
        outcome = run_cli(["embed", "--checkpoint", tmp_path / "x.pt", "--dataset", root, "--split", "test", "--out", out])
    assert_refused(outcome, root, "--split test", "no test split")
    assert has_split(root, "train") and has_split("demo", "test") and not has_split(root, "test")
    for name in ("train", "test"):
        image_tree(tmp_path / "split" / name)
    assert has_split(tmp_path / "split", "test")


def test_columns_naviewer_does_not_read_may_repeat_and_a_missing_source_is_said_as_missing(tmp_path: Path) -> None:
    from naviewer.data import open_dataset
    from naviewer.data.sources import has_split

    listing = file_list(tmp_path, "path,label,note,note\na.png,0,x,y\nb.png,1,x,y\n", name="m.csv")
    assert len(open_dataset(listing)) == 2
    assert has_split(tmp_path / "nowhere", "test")   # opening it says "no such file or folder"
    outcome = run_cli(["embed", "--checkpoint", tmp_path / "x.pt", "--dataset", tmp_path / "nowhere", "--split", "test",
                       "--out", tmp_path / "e.npy"])
    assert outcome.code == 2 and "no test split" not in outcome.err


def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", ["cifar-batch-pipe", "cifar-meta-dev-zero", "workspace-toml-pipe", "metrics-pipe"])
def test_a_pipe_or_device_in_place_of_a_data_file_is_refused_not_read(tmp_path: Path, case: str) -> None:
    """A named pipe where naviewer reads a CIFAR batch, workspace.toml or writes metrics.jsonl blocked the command for
    ever; a batches.meta linked to /dev/zero was read until the memory ran out (killed). Each is refused, named."""
    from badinput_kit import TINY_TRAIN

    if case == "cifar-batch-pipe":
        root = cifar_folder(tmp_path / "c")
        batch = root / "cifar-10-batches-py" / "data_batch_1"
        batch.unlink()
        _fifo(batch)
        outcome, named = run_cli(["new", tmp_path / "ws", "--dataset", root]), batch
    elif case == "cifar-meta-dev-zero":
        if not Path("/dev/zero").exists():
            pytest.skip("no /dev/zero")
        root = cifar_folder(tmp_path / "c")
        meta = root / "cifar-10-batches-py" / "batches.meta"
        meta.unlink()
        meta.symlink_to("/dev/zero")
        outcome, named = run_cli(["new", tmp_path / "ws", "--dataset", root]), meta
    elif case == "workspace-toml-pipe":
        _fifo(tmp_path / "ws" / "workspace.toml")
        outcome, named = run_cli(["review", tmp_path / "ws"]), tmp_path / "ws" / "workspace.toml"
    else:
        data = image_tree(tmp_path / "imgs", per_class=8)
        run = tmp_path / "run"
        _fifo(run / "metrics.jsonl")
        outcome = run_cli(["train", "--dataset", data, "--out", run, "--epochs", "1", *TINY_TRAIN])
        named = run / "metrics.jsonl"
    assert_refused(outcome, named, "not a regular file")


def test_a_test_set_with_a_class_the_training_set_lacks_is_warned_about(tmp_path: Path) -> None:
    """``new --test-dataset`` with an extra class exited 0 in silence (a sweep, session 21): the kNN classifier never
    predicts it, so it lowers the accuracy and counts as non-target in the ASR; said as a warning naming the class."""
    train = image_tree(tmp_path / "train", classes=("a", "b"), per_class=4)
    test = image_tree(tmp_path / "test", classes=("a", "b", "c"), per_class=2)
    from naviewer.data.base import DatasetWarning

    with pytest.warns(DatasetWarning, match=r"1 class\(es\) the training set lacks \('c'\)"):
        outcome = run_cli(["new", tmp_path / "ws", "--dataset", train, "--test-dataset", test])
    assert outcome.code == 0, outcome.err


def test_an_empty_file_name_after_at_or_an_empty_trigger_is_said_as_such():
    """`ids:@`, `--confirm @` and an empty trigger read as the current folder: ".: the anchor id file is a folder,
    not a file" (a bad-input probe, session 30)."""
    from naviewer.attacks.triggers import resolve_trigger
    from naviewer.errors import NaviewerError
    from naviewer.workflows.anchor_sources import parse_anchor_spec

    with pytest.raises(NaviewerError, match="no file name after '@'"):
        parse_anchor_spec("ids:@")
    with pytest.raises(NaviewerError, match="the trigger is empty"):
        resolve_trigger("  ", 8)
    from naviewer.cli.review import parse_sample_ids

    with pytest.raises(NaviewerError, match=r"--confirm @: no file name after '@'"):
        parse_sample_ids("@", 10, "--confirm")
