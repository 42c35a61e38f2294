"""Issue 17 item 4: the gallery filters and sorts a large session in a worker thread; the grid keeps the
order it shows until the new one arrives, a stale result is dropped, and the highlighted and focused
samples stay the same samples across a re-sort. Tiny sessions with the threshold set to 0."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt

from naviewer.analysis.session import AnalysisSession
from naviewer.gui.analyst import filters as filters_module
from naviewer.gui.analyst.gallery import GalleryWidget


def _session(n: int = 400, flagged: int = 30) -> AnalysisSession:
    rng = np.random.default_rng(3)
    rank = rng.permutation(n)
    scores = {"rank": rank, "flagged": rank < flagged, "candidate": rank < 2 * flagged,
              "density": (n - rank).astype(np.float32), "posterior": rng.random(n).astype(np.float32)}
    return AnalysisSession(scores, np.arange(n) % 4, ["a", "b", "c", "d"], reviewer="t")


@pytest.fixture()
def async_gallery(qtbot, monkeypatch):
    monkeypatch.setattr(GalleryWidget, "ASYNC_FROM", 0)  # every request goes to the worker
    session = _session()
    gallery = GalleryWidget(session)
    qtbot.addWidget(gallery)
    gallery.resize(700, 500)
    gallery.show()
    qtbot.waitExposed(gallery)
    qtbot.waitUntil(lambda: not gallery.filter_pending)
    gallery.set_filter("all")
    qtbot.waitUntil(lambda: not gallery.filter_pending)
    return session, gallery


class _Gate:
    """Holds the worker inside ``stable_order`` until released (the sort is then still pending)."""

    def __init__(self, monkeypatch) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0
        real = filters_module.stable_order

        def gated(key, descending=False, check=None):
            self.calls += 1
            self.entered.set()
            assert self.release.wait(10), "the test never released the worker"
            return real(key, descending, check)

        monkeypatch.setattr(filters_module, "stable_order", gated)


def test_the_sort_arrives_from_the_worker_and_is_applied(qtbot, async_gallery, monkeypatch) -> None:
    session, gallery = async_gallery
    before = gallery.model.ids.copy()
    assert np.array_equal(before, session.suspicion_order())
    gate = _Gate(monkeypatch)
    gallery.filters.descending.setChecked(True)  # suspicion, descending: no key sort yet
    qtbot.waitUntil(lambda: not gallery.filter_pending)
    gallery.filters.set_sort("posterior")
    assert gate.entered.wait(10)
    # pending: the old order is still shown, the header says so
    assert gallery.filter_pending and gallery.busy_label.isVisible() and "sorting" in gallery.busy_label.text()
    assert "in the background" in gallery.busy_label.toolTip()
    assert np.array_equal(gallery.model.ids, before[::-1])
    gate.release.set()
    qtbot.waitUntil(lambda: not gallery.filter_pending)
    ids = gallery.model.ids
    post = session.scores["posterior"][ids]
    assert len(ids) == session.n and (np.diff(post) <= 0).all()
    assert not gallery.busy_label.isVisible()
    assert gallery.model.row_of[ids[5]] == 5 and (gallery.model.row_of >= 0).all()


def test_a_stale_result_is_dropped_and_the_latest_request_wins(qtbot, async_gallery, monkeypatch) -> None:
    session, gallery = async_gallery
    gate = _Gate(monkeypatch)
    gallery.filters.set_sort("posterior")  # request 1: held in the worker
    assert gate.entered.wait(10)
    held = gallery._serial
    gate.entered.clear()
    gallery.filters.set_sort("density")  # request 2 replaces it before it finishes
    assert gallery._serial == held + 1
    gate.release.set()  # both run to the end (the first one's cancel flag is set: it stops or is dropped)
    qtbot.waitUntil(lambda: not gallery.filter_pending)
    qtbot.wait(50)  # a late result of request 1 would arrive now
    density = session.scores["density"][gallery.model.ids]
    assert (np.diff(density) >= 0).all()  # request 2's order, not request 1's
    # and request 1's result, delivered late by hand, changes nothing
    shown = gallery.model.ids.copy()
    gallery._on_filtered(held, {"ids": shown[::-1].copy(), "base": len(shown), "rows": None, "keep_scroll": False})
    assert np.array_equal(gallery.model.ids, shown)


def test_the_highlighted_and_focused_sample_survive_a_resort(qtbot, async_gallery, monkeypatch) -> None:
    session, gallery = async_gallery
    view = gallery.view
    view.setFocus()
    pick = int(gallery.model.ids[7])
    session.set_current(pick)
    session.set_selection([pick])
    assert gallery.focused_id() == pick and list(gallery.target_ids()) == [pick]
    gate = _Gate(monkeypatch)
    gallery.filters.set_sort("posterior")
    assert gate.entered.wait(10)
    # while the sort is pending, the keys act on the order shown: the same sample
    assert gallery.focused_id() == pick and list(gallery.target_ids()) == [pick]
    gate.release.set()
    qtbot.waitUntil(lambda: not gallery.filter_pending)
    row = int(gallery.model.row_of[pick])
    assert row != 7 and int(gallery.model.ids[row]) == pick  # it moved, and is found again by id
    assert view.currentIndex().row() == row and gallery.focused_id() == pick
    assert list(gallery.selected_ids()) == [pick] and list(gallery.target_ids()) == [pick]
    assert view.viewport().rect().intersects(view.visualRect(gallery.model.row_index(row)))
    qtbot.keyClick(view, Qt.Key.Key_C)  # C decides the highlighted sample, not whatever sits at its old row
    assert session.state_of(pick) == "confirmed"
    assert session.state_of(int(gallery.model.ids[7])) == "unreviewed" or int(gallery.model.ids[7]) == pick


def test_a_decision_reapplies_a_review_filter_in_the_worker(qtbot, async_gallery) -> None:
    session, gallery = async_gallery
    gallery.set_filter("unreviewed")
    qtbot.waitUntil(lambda: not gallery.filter_pending)
    first = int(gallery.model.ids[0])
    gallery.view.setFocus()
    session.set_current(first)
    session.set_selection([first])
    qtbot.keyClick(gallery.view, Qt.Key.Key_R)
    assert session.state_of(first) == "rejected"
    qtbot.waitUntil(lambda: not gallery.filter_pending)
    assert first not in gallery.model.ids.tolist()
    assert gallery.focused_id() == int(gallery.model.ids[0])  # moved on to the next unreviewed flag


def test_the_stall_bench_runs_both_versions_and_restores_the_panel(qtbot, tmp_path) -> None:
    """``naviewer bench gui --stall`` on a tiny bench workspace: both versions sort right and keep the
    highlighted sample; the baseline's frozen functions are put back afterwards."""
    from naviewer.analysis import session as session_module
    from naviewer.analysis.session import AnalysisSession
    from naviewer.bench.gui import stall_workspace
    from naviewer.gui.analyst.benchmark import measure_stall
    from naviewer.gui.analyst.density_map import DensityMapWidget
    from naviewer.gui.analyst.why import WhyFlaggedWidget

    review_queue, clusters, rebuild = AnalysisSession.review_queue, session_module.flagged_clusters, DensityMapWidget.rebuild
    workspace = stall_workspace(3000, str(tmp_path))
    for legacy in (True, "views", False):
        out = measure_stall(3000, legacy, workspace)
        assert out["sorted_ok"] and out["highlight_kept"], out
        # the gaps were measured (their size is naviewer bench gui --stall's figure, never a test's)
        assert all(np.isfinite(out[key]["max_ms"]) and out[key]["max_ms"] >= 0 for key in ("open_gaps", "sort_gaps"))
    assert AnalysisSession.review_queue is review_queue and GalleryWidget.ASYNC_FROM == 200_000
    assert session_module.flagged_clusters is clusters and DensityMapWidget.rebuild is rebuild
    assert DensityMapWidget.ASYNC_FROM == WhyFlaggedWidget.ASYNC_FROM == 200_000


def test_a_new_sort_shows_its_top_with_the_focus_on_the_first_tile(qtbot, async_gallery) -> None:
    """After Sort by a score the gallery stayed scrolled to the focused tile near the bottom; with nothing
    highlighted a new sort now shows its top and focuses its first tile (the keys act on what is in view)."""
    session, gallery = async_gallery
    view = gallery.view
    low = int(gallery.model.ids[-1])
    session.set_current(low)
    qtbot.waitUntil(lambda: gallery.focused_id() == low)
    gallery.filters.set_sort("posterior")
    qtbot.waitUntil(lambda: not gallery.filter_pending)
    first = int(gallery.model.ids[0])
    assert gallery.focused_id() == first and session.current == first
    assert view.verticalScrollBar().value() == 0
    assert list(gallery.target_ids()) == [first]
