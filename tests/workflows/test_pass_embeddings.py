"""A pass is reviewed on the embeddings it ranked: a second detect never overwrites them, a changed
file is refused."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from naviewer.analysis.embeddings import file_fingerprint, pass_embeddings
from naviewer.cli import main
from naviewer.errors import NaviewerError
from naviewer.workflows.posthoc import posthoc_detect
from naviewer.workspace import Workspace
from workflow_kit import dift_config


def test_two_encoders_named_last_pt_keep_their_own_embeddings(accepted_run, tmp_path, capsys):
    shared, outcome = accepted_run
    path = tmp_path / "copy"
    shutil.copytree(shared, path)
    other = tmp_path / "other" / "last.pt"
    other.parent.mkdir()
    shutil.copy(outcome.checkpoint, other)
    with open(other, "ab") as handle:  # same weights, different file: a different encoder to naviewer
        handle.write(b"\0" * 16)
    with Workspace.open(path) as ws:
        first = posthoc_detect(ws, outcome.checkpoint, config=dift_config(), run="post")
        second = posthoc_detect(ws, other, config=dift_config(), run="post")
        assert first.tag != second.tag and first.tag.startswith("last-")
        assert first.embeddings_path.is_file() and second.embeddings_path.is_file()
        array, run, tag = pass_embeddings(ws, first.pass_id)
        assert (run, tag) == ("post", first.tag) and len(array) == 240
        # someone rewrites the first pass's file: the review refuses it
        np.save(first.embeddings_path, np.zeros((240, 4), np.float32))
        with pytest.raises(NaviewerError, match="other embeddings"):
            pass_embeddings(ws, first.pass_id)
        assert pass_embeddings(ws, second.pass_id) is not None
        data = second.embeddings_path.read_bytes()  # a truncated file is called corrupt, not "other embeddings"
        second.embeddings_path.write_bytes(data[: len(data) // 2])
        with pytest.raises(NaviewerError, match="corrupt embeddings file"):
            pass_embeddings(ws, second.pass_id)
        first_pass = first.pass_id
    assert main(["review", str(path), "--pass", str(first_pass)]) == 2
    assert "other embeddings" in capsys.readouterr().err


def test_review_refuses_nan_embeddings(accepted_run, tmp_path, capsys):
    shared, _ = accepted_run
    path = tmp_path / "nan"
    shutil.copytree(shared, path)
    with Workspace.open(path) as ws:
        bad = np.ones((240, 8), np.float32)
        bad[5, 2] = np.nan
        ws.save_embeddings("x", "nan", bad)
    assert main(["review", str(path), "--embeddings", "x:nan"]) == 2
    err = capsys.readouterr().err
    assert "NaN" in err and "nan.npy" in err


def test_fingerprint_changes_with_content(tmp_path):
    a = tmp_path / "a.bin"
    a.write_bytes(b"x" * (5 << 20))
    before = file_fingerprint(a)
    data = bytearray(a.read_bytes())
    data[-10] = ord("y")
    a.write_bytes(bytes(data))
    assert file_fingerprint(a) != before
