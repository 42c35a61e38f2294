"""Property-based tests (Hypothesis) of the file-list and CSV parsers and the manifest writer (issue 15).

- The parsers, fed any text, either return a dataset or raise a NaviewerError naming the list: never
  another exception.
- ``write_file_list`` and the list reader are inverses for every name the writer accepts; a name it
  refuses is a NaviewerError and nothing is written.
- Whatever a source registers is exported as exactly one ``kept.txt`` line per sample, and reading
  ``kept.txt`` back gives the same files and labels.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from naviewer.data import open_dataset
from naviewer.data.filelist import FileListDataset, write_file_list
from naviewer.data.names import list_line_problem, name_problem
from naviewer.errors import NaviewerError

from badinput_kit import png_bytes

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PNG = png_bytes(7)

#: the characters most likely to break a line-based format, mixed into otherwise arbitrary names
HOSTILE = ["\n", "\r", "\t", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029", "\x00", "\x1b", "#", " ", ",", '"',
           "\\", "\u00a0", "\u3000", "-1", "7"]
TOKENS = st.one_of(st.characters(codec="utf-8", exclude_characters="/\x00"), st.sampled_from(HOSTILE))


def _valid_file_name(name: str) -> bool:
    return name not in (".", "..") and "/" not in name and "\x00" not in name and 0 < len(name.encode()) <= 120


NAMES = st.lists(TOKENS, min_size=1, max_size=8).map("".join).filter(_valid_file_name)
CELLS = st.lists(TOKENS, max_size=6).map("".join)


def _make_files(root: Path, names: list[str], data: bytes = b"") -> list[str]:
    """Create ``names`` under ``root``; the ones the file system refuses are dropped."""
    made = []
    for name in names:
        try:
            (root / name).write_bytes(data)
        except (OSError, ValueError, UnicodeError):
            continue
        made.append(name)
    return made


@contextmanager
def _made_files(names: list[str]) -> Iterator[tuple[Path, list[str]]]:
    """(a temporary folder, the names of ``names`` the file system took there); Hypothesis discards
    the example when it took none."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        made = _make_files(root, names)
        assume(made)
        yield root, made


def _parsed_or_refused(path: Path) -> "FileListDataset | None":
    """The dataset of a list or manifest, or None when it was refused with a one-line NaviewerError
    naming it (the only failure the parsers may have)."""
    try:
        return FileListDataset(path)
    except NaviewerError as exc:
        assert exc.path == str(path.resolve()) and "\n" not in str(exc)
        return None


# -- the parsers never fail with anything but a NaviewerError ------------------------------------------------
@PROPERTY
@given(text=st.lists(st.one_of(st.characters(codec="utf-8"), st.sampled_from(HOSTILE + ["a.png", "b c.png", "\n"])),
                    max_size=80).map("".join))
def test_file_list_parser_returns_a_dataset_or_a_naviewer_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        _make_files(root, ["a.png", "b c.png", "7"])
        (root / "list.txt").write_text(text, encoding="utf-8")
        data = _parsed_or_refused(root / "list.txt")
        if data is None:
            return
        assert len(data) >= 1 and all(name_problem(data.source_key(i)) is None for i in range(len(data)))
        assert len(set(data.path(i) for i in range(len(data)))) == len(data)  # duplicates were dropped


@PROPERTY
@given(rows=st.lists(st.lists(st.one_of(CELLS, st.sampled_from(["a.png", "b c.png", "1", "-1"])),
                              max_size=4), max_size=8),
       header=st.sampled_from([["path", "label"], ["file", "target"], ["label", "image"], ["x"], ["path"]]))
def test_csv_parser_returns_a_dataset_or_a_naviewer_error(rows: list[list[str]], header: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        _make_files(root, ["a.png", "b c.png"])
        buffer = io.StringIO()
        csv.writer(buffer).writerows([header, *rows])
        (root / "m.csv").write_text(buffer.getvalue(), encoding="utf-8")
        data = _parsed_or_refused(root / "m.csv")
        if data is None:
            return
        assert all(name_problem(data.source_key(i)) is None for i in range(len(data)))


# -- writer and reader are inverses ---------------------------------------------------------------------------
@PROPERTY
@given(names=st.lists(NAMES, min_size=1, max_size=6, unique=True),
       labels=st.lists(st.integers(-1, 30), min_size=6, max_size=6))
def test_file_list_round_trip(names: list[str], labels: list[int]) -> None:
    with _made_files(names) as (root, made):
        keys, values = made, labels[: len(made)]
        target = root / "list.txt"
        refused = [k for k in keys if list_line_problem(k)]
        if refused:
            with pytest.raises(NaviewerError, match="cannot be written as one 'path label' line"):
                write_file_list(target, keys, values)
            assert not target.exists() and not [p for p in root.iterdir() if p.name.startswith(".list")]
            return
        write_file_list(target, keys, values)
        assert target.read_bytes().count(b"\n") == len(keys)
        data = FileListDataset(target, class_names=[str(i) for i in range(31)])
        assert [data.source_key(i) for i in range(len(data))] == keys
        assert data.labels.tolist() == values


@PROPERTY
@given(names=st.lists(NAMES, min_size=1, max_size=6, unique=True),
       labels=st.lists(st.integers(-1, 30), min_size=6, max_size=6))
def test_csv_round_trip(names: list[str], labels: list[int]) -> None:
    with _made_files(names) as (root, made):
        buffer = io.StringIO()
        csv.writer(buffer).writerows([["path", "label"], *zip(made, labels)])
        (root / "m.csv").write_text(buffer.getvalue(), encoding="utf-8")
        try:
            data = FileListDataset(root / "m.csv", class_names=[str(i) for i in range(31)])
        except NaviewerError as exc:
            # refused: a name no manifest line can hold, or one that CSV cell stripping changes
            assert any(name_problem(n) or n != n.strip() for n in made), str(exc)
            return
        assert [data.source_key(i) for i in range(len(data))] == made
        assert data.labels.tolist() == labels[: len(made)]


# -- whatever is registered is exported as exactly one line per sample -------------------------------------
@PROPERTY
@given(layout=st.lists(st.tuples(st.sampled_from(["cat", "d o g", "#x", "ü"]), NAMES), min_size=1, max_size=6,
                       unique_by=lambda item: item))
def test_registered_image_folder_exports_one_line_per_sample(layout: list[tuple[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        root = tmp / "tree"
        made = []
        for cls, name in layout:
            (root / cls).mkdir(parents=True, exist_ok=True)
            made += [(cls, n) for n in _make_files(root / cls, [name + ".png"], PNG)]
        assume(made)
        try:
            source = open_dataset(root)
        except NaviewerError as exc:
            assert any(name_problem(f"{c}/{n}") for c, n in made), str(exc)
            return
        _assert_exported_round_trip(tmp, source)


@pytest.mark.slow  # over 6 s on 2 shared cores
@PROPERTY
@given(names=st.lists(NAMES, min_size=1, max_size=6, unique=True),
       labels=st.lists(st.integers(-1, 4), min_size=6, max_size=6))
def test_registered_file_list_exports_one_line_per_sample(names: list[str], labels: list[int]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        root = tmp / "data"
        root.mkdir()
        made = _make_files(root, [n + ".png" for n in names], PNG)
        assume(made)
        keys = [k for k in made if not list_line_problem(k)]
        assume(keys)
        listing = write_file_list(root / "train.txt", keys, labels[: len(keys)])
        _assert_exported_round_trip(tmp, open_dataset(listing))


def _assert_exported_round_trip(tmp: Path, source) -> None:  # noqa: ANN001
    from naviewer.workspace import Workspace
    from naviewer.workspace.export import export_manifests

    with Workspace.create(tmp / "ws", source) as ws:
        result = export_manifests(ws, tmp / "out")
        registered = ws.store.samples()
    text = result.kept_path.read_text(encoding="utf-8")
    assert text.count("\n") == len(registered["id"]) == text.count("\n") and text.endswith("\n")
    assert len(text.split("\n")) - 1 == len(registered["id"])  # no other line break anywhere
    kept = open_dataset(result.kept_path, root=tmp)
    assert len(kept) == len(registered["id"])
    expected = [Path(os.path.realpath(source.path(i))) for i in range(len(source))]
    assert [Path(os.path.realpath(kept.path(i))) for i in range(len(kept))] == expected
    assert kept.labels.tolist() == registered["label"].tolist() == np.asarray(source.labels).tolist()


def test_an_absurd_epoch_count_is_refused_on_every_path(tmp_path) -> None:
    """``train --epochs 99999999999999999999``, ``demo --set epochs=1e25`` and ``eval --linear-epochs 1e25`` ran until
    killed (a sweep, session 21); TrainConfig and the linear probe's settings refuse it too (the GUI, a saved run)."""
    import pytest

    from badinput_kit import assert_refused, run_cli
    from naviewer.catalogue import EPOCHS_MAX
    from naviewer.errors import NaviewerError
    from naviewer.evaluation.linear import LinearProbeSettings
    from naviewer.ssl.trainer import TrainConfig

    huge = str(10**20)
    assert "--epochs" in assert_refused(run_cli(["train", "--dataset", "demo", "--out", tmp_path / "r", "--epochs", huge]),
                                        [], "100,000")
    outcome = run_cli(["demo", "--no-gui", "--workspace", tmp_path / "d", "--set", f"epochs={EPOCHS_MAX + 1}"])
    assert outcome.code == 2 and "at most 100,000" in outcome.err and not (tmp_path / "d").exists()
    with pytest.raises(NaviewerError, match="epochs must be from 1"):
        TrainConfig(epochs=EPOCHS_MAX + 1)
    with pytest.raises(NaviewerError, match="batch size must be at least 2"):
        TrainConfig(batch_size=1)
    with pytest.raises(NaviewerError, match="linear probe epochs"):
        LinearProbeSettings(epochs=10**25)


def test_a_dataset_smaller_than_a_batch_is_named_before_any_training(tmp_path) -> None:
    from badinput_kit import TINY_TRAIN, assert_refused, image_tree, run_cli

    data = image_tree(tmp_path / "imgs", per_class=3)
    at = TINY_TRAIN.index("--batch-size") + 1
    argv = [*TINY_TRAIN[:at], "64", *TINY_TRAIN[at + 1:]]  # batch 64 over 6 images
    assert_refused(run_cli(["train", "--dataset", data, "--out", tmp_path / "run", "--epochs", "1", *argv]), data,
                   "smaller than one batch of 64", "--batch-size")
    assert not (tmp_path / "run").exists()
