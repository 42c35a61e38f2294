"""The analyst panel over a workspace whose side files are damaged (a GUI bad-input sweep, session 24): it opens,
and says which file it could not use and why, instead of not opening without a word."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from analyst_kit import folder_workspace
from naviewer.errors import NaviewerError


def test_the_workspace_reads_of_side_files_name_them(tmp_path):
    from naviewer.workspace import Workspace

    path = folder_workspace(tmp_path)
    with Workspace.open(path) as ws:
        (path / "embeddings").mkdir(exist_ok=True)
        assert ws.embeddings() == []
        (path / "embeddings").rmdir()
        assert ws.embeddings() == []  # deleted to free space: none saved, not a FileNotFoundError
        (path / "embeddings").write_text("x")
        with pytest.raises(NaviewerError, match="cannot list the saved embeddings"):
            ws.embeddings()
        ws.ground_truth_path.write_bytes(bytes(range(256)) * 2)
        with pytest.raises(NaviewerError, match="not a text file"):
            ws.read_ground_truth()
        ws.ground_truth_path.unlink()
        ws.ground_truth_path.mkdir()
        with pytest.raises(NaviewerError, match="cannot read the ground truth"):
            ws.read_ground_truth()
        shutil.rmtree(path / "checkpoints", ignore_errors=True)
        (path / "checkpoints").write_text("x")  # a lookup makes no folder (it raised NotADirectoryError)
        assert ws.checkpoint_dir("r", create=False) == path / "checkpoints" / "r"


@pytest.mark.parametrize("damage, words", [
    (lambda a: np.full_like(a, np.nan), "NaN or infinite"),
    (lambda a: a[:, :0], "shape (40, 0)"),
    (lambda a: a[:-1], "39 rows"),
])
def test_unusable_saved_embeddings_are_named_and_passed_over(tmp_path, damage, words):
    from naviewer.gui.analyst_dock import find_embeddings
    from naviewer.workspace import Workspace

    path = folder_workspace(tmp_path)
    with Workspace.open(path) as ws:
        good = np.random.default_rng(0).standard_normal((40, 8)).astype(np.float32)
        target = ws.embeddings_path("r", "review")
        target.parent.mkdir(parents=True, exist_ok=True)
        np.save(target, damage(good))
        problems: list[str] = []
        array, run, tag = find_embeddings(ws, "r", 40, problems)
        assert array is None and len(problems) == 1
        assert str(target) in problems[0] and words in problems[0]
        np.save(ws.embeddings_path("r", "other"), good)  # a usable one beside it is still found
        problems.clear()
        array, run, tag = find_embeddings(ws, "r", 40, problems)
        assert (run, tag) == ("r", "other") and array.shape == (40, 8) and len(problems) == 1


def test_the_window_opens_the_panel_over_damaged_side_files_and_says_so(qtbot, tmp_path, monkeypatch):
    """embeddings/ a file, ground_truth.json random bytes, checkpoints/ a file: the panel did not open and nothing
    said why (a bare OSError / UnicodeDecodeError out of the open job's slot)."""
    from naviewer.gui.main_window import MainWindow

    path = folder_workspace(tmp_path)
    (path / "embeddings").mkdir(exist_ok=True)
    (path / "embeddings").rmdir()
    (path / "embeddings").write_text("x")
    (path / "ground_truth.json").write_bytes(bytes(range(256)))
    shutil.rmtree(path / "checkpoints", ignore_errors=True)
    (path / "checkpoints").write_text("x")
    monkeypatch.setenv("NAVIEWER_SETTINGS_DIR", str(tmp_path / "cfg"))
    window = MainWindow()
    qtbot.addWidget(window)
    boxes = []
    monkeypatch.setattr(window, "inform", lambda title, text, *a, **k: boxes.append((title, text)))
    window.show_analyst(path)
    assert window.analyst_dock is not None, boxes
    notice = window.analyst_dock.panel.gallery.notice.text()
    assert "Saved embeddings not used" in notice and "cannot list the saved embeddings" in notice
    assert not [b for b in boxes if b[0] == "Cannot open the analyst views"]
