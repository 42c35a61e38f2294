"""The analyst's session: scores, selection, review states and derived tables, with plain callbacks.

Views (Qt widgets in ``naviewer.gui.analyst``) read this model and subscribe to its signals; they never
keep their own copy of the selection or the review states, so the map, the gallery and the cluster
list always agree. Every review decision is written through the store at once (the workspace's
SQLite store commits it with an audit row) and the local state array follows the store.
"""

from __future__ import annotations

import getpass
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from naviewer.analysis.clusters import Cluster, density_direction, flagged_clusters
from naviewer.analysis.events import Signal
from naviewer.analysis.review import REVIEW_STATES, STATE_CODE, MemoryReviewStore, ReviewStore, check_state, state_codes
from naviewer.errors import NaviewerError

SCORE_KEYS = ("density", "rank", "candidate", "mindist", "posterior", "flagged", "spread", "cluster")
#: per-sample arrays a DIFT pass stores when its opt-in rules after label spreading ran (docs/dift.md)
SPREAD_RULE_KEYS = ("poison_probability", "soft", "crop", "crop_outliers", "closure", "crop_score", "anchor_reach",
                    "guarded", "reach_dropped")


def _find_key(tree: Any, key: str) -> Any:
    """First value stored under ``key`` anywhere in nested dicts (pass settings vary in shape)."""
    if isinstance(tree, dict):
        if key in tree:
            return tree[key]
        for value in tree.values():
            found = _find_key(value, key)
            if found is not None:
                return found
    return None


def _recorded_gmm(settings: dict) -> Optional[tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]]:
    """(means, stds, weights or None) of the GMM the detector recorded, if it did and they are finite.

    Accepts ``{"gmm": {"means", "stds" | "variances", "weights"}}`` or DIFT's flat ``gmm_means`` /
    ``gmm_stds`` (``GmmSplit.info()``), at any depth of the pass settings.
    """
    block = _find_key(settings, "gmm")
    if isinstance(block, dict) and "means" in block:
        means = np.asarray(block["means"], np.float64).ravel()
        if "stds" in block:
            stds = np.asarray(block["stds"], np.float64).ravel()
        else:
            stds = np.sqrt(np.asarray(block.get("variances", [np.nan, np.nan]), np.float64).ravel())
        weights = np.asarray(block["weights"], np.float64).ravel() if "weights" in block else None
    else:
        means_v, stds_v = _find_key(settings, "gmm_means"), _find_key(settings, "gmm_stds")
        if means_v is None or stds_v is None:
            return None
        means = np.asarray(means_v, np.float64).ravel()
        stds = np.asarray(stds_v, np.float64).ravel()
        weights = None
    if means.shape != (2,) or stds.shape != (2,) or not (np.isfinite(means).all() and np.isfinite(stds).all() and (stds > 0).all()):
        return None
    return means, stds, weights


def default_reviewer() -> str:
    try:
        return getpass.getuser() or "analyst"
    except Exception:  # no login name (containers): still record something stable
        return "analyst"


@dataclass(frozen=True)
class EpochFlags:
    """Which samples one detection pass flagged (the per-epoch history for DIFT Figure 3)."""

    epoch: int
    flagged: np.ndarray  # sample ids


class AnalysisSession:
    """One review session over N samples.

    Parameters: ``scores`` (arrays of length N keyed like the store's pass scores), ``labels`` (N,),
    ``class_names``, optional ``images`` (an ImageStore or a uint8 (N, H, W, 3) array) for thumbnails,
    ``embeddings`` (N, D) for clusters/neighbours/projection, ``store`` for review decisions (an
    in-memory store when None), ``source_keys``, ``ground_truth`` (evaluation only, never used by
    detection), ``history`` (per-epoch flags) and ``settings`` (the detection pass settings).
    """

    #: the pass came from a post-hoc detection (saved without an epoch; :meth:`from_workspace` sets it)
    post_hoc: bool = False
    #: the workspace's detection pass these scores are (:meth:`from_workspace` sets it; None: no pass, or not a
    #: workspace's): what an export of this review records, not the workspace's latest pass
    pass_id: Optional[int] = None
    #: that pass's detector ("dift", or another detector's own pass: "kdist", "slof", ...; None when not known)
    method: Optional[str] = None

    def __init__(
        self,
        scores: dict[str, np.ndarray],
        labels: np.ndarray,
        class_names: Sequence[str] = (),
        *,
        images: Any = None,
        embeddings: Optional[np.ndarray] = None,
        store: Optional[ReviewStore] = None,
        reviewer: Optional[str] = None,
        source_keys: Optional[Sequence[str]] = None,
        ground_truth: Optional[dict] = None,
        history: Sequence[EpochFlags] = (),
        settings: Optional[dict] = None,
        projection: Optional[np.ndarray] = None,
    ) -> None:
        # events: (ids, source) / (ids,) / (sample id or None, source) / (method,)
        self.selection_changed = Signal()
        self.review_changed = Signal()
        self.image_failed = Signal()  # (sample id, problem): its image could not be read (said once a sample)
        self.image_problems: dict[int, str] = {}
        self.image_readable_again = Signal()  # (sample id,): a failed image read at a later try
        self._image_failed_at: dict[int, float] = {}  # sample id -> when it may be read again
        self._image_tries: dict[int, int] = {}
        self.current_changed = Signal()
        self.projection_changed = Signal()
        self.labels = np.asarray(labels, dtype=np.int64)
        self.n = len(self.labels)
        self.class_names = list(class_names) or [str(c) for c in range(int(self.labels.max(initial=-1)) + 1)]
        self.scores: dict[str, np.ndarray] = {}
        for key, value in scores.items():
            arr = np.asarray(value)
            if len(arr) != self.n:
                raise NaviewerError(f"score {key!r} has {len(arr)} values for {self.n} samples")
            self.scores[key] = arr
        from naviewer.defense.spreading import LATER_RULE_KEYS

        later_rules = [self.scores[k] for k in LATER_RULE_KEYS if k in self.scores]
        if "spread" in self.scores and later_rules:
            # "added by label spreading" is spreading's own argmax: passes stored before session 24 counted the later
            # rules' additions too (a crop outlier read "yes" beside probability 0); the same reading for both
            self.scores["spread"] = (np.asarray(self.scores["spread"], bool)
                                     & ~np.logical_or.reduce([np.asarray(r, bool) for r in later_rules]))
        self.images = images
        self.embeddings = embeddings
        if embeddings is not None and len(embeddings) != self.n:
            raise NaviewerError(f"embeddings have {len(embeddings)} rows for {self.n} samples")
        if embeddings is not None:
            from naviewer.defense.sanity import require_finite

            require_finite(embeddings)  # NaN rows made one-sample clusters of everything
        self.store: ReviewStore = store if store is not None else MemoryReviewStore(self.n)
        self.reviewer = reviewer or default_reviewer()
        # the batches U may undo: this session's own, and its reviewer's from before it opened (not those another
        # process writes meanwhile under the same login name)
        from naviewer.workspace.store import OwnBatches

        last = getattr(self.store, "last_batch_id", None)
        self._mine = OwnBatches(last() if callable(last) else 0)
        self.last_written = np.zeros(0, np.int64)  # the ids the latest review() wrote
        self.last_undo: Any = None  # the latest undo's UndoResult (its batch, reverted and skipped ids)
        # a lazy column (the store's SampleColumn: 10M keys read in windows) is kept as it is; anything else is copied
        from naviewer.workspace.store import SampleColumn

        lazy = isinstance(source_keys, SampleColumn)
        self.source_keys = source_keys if lazy else (list(source_keys) if source_keys is not None else None)
        self.ground_truth = ground_truth
        self.history = list(history)
        self.settings = dict(settings or {})

        self.selection = np.zeros(0, dtype=np.int64)
        self.current: Optional[int] = None
        self._codes = self._read_codes() if self.n else np.zeros(0, np.uint8)
        if len(self._codes) != self.n:
            raise NaviewerError(f"the store has {len(self._codes)} review states for {self.n} samples")
        # the store's newest audit row, when it keeps a log (the workspace's): what sync_with_store compares
        self._audit_mark = getattr(self.store, "audit_mark", None) if self.n else None
        self._audit_seen: Optional[int] = self._audit_mark() if self._audit_mark is not None else None
        self._projections: dict[str, np.ndarray] = {}
        if projection is not None:
            self.set_projection(projection, "given")
        self._clusters: Optional[list[Cluster]] = None
        self._unit: Optional[np.ndarray] = None
        self._gmm: Optional[dict] = None
        self._order: Optional[np.ndarray] = None
        self._order_lock = threading.Lock()

    # -- construction from a workspace --------------------------------------------------------
    @classmethod
    def from_workspace(
        cls,
        ws: Any,
        pass_id: Optional[int] = None,
        *,
        images: Any = None,
        embeddings: Optional[np.ndarray] = None,
        reviewer: Optional[str] = None,
        with_ground_truth: bool = True,
    ) -> "AnalysisSession":
        """Scores of ``pass_id`` (default: the latest pass), labels, keys and review states of ``ws``."""
        store = ws.store
        if pass_id is None:
            pass_id = store.review_pass_id()
        # labels from the registration's blob and keys read lazily: no 10M-row read to open a session
        labels = np.asarray(store.labels(), dtype=np.int64)
        keys = store.source_keys()
        scores = store.pass_scores(pass_id) if pass_id is not None else {}
        settings: dict = {}
        history: list[EpochFlags] = []
        passes = store.passes()  # one read of the pass table (it was read three times)
        for record in passes:
            if record.get("id") == pass_id:
                settings = dict(record.get("settings") or {})
        method = next((p.get("method") for p in passes if p.get("id") == pass_id), None)
        for record in passes:
            if record.get("epoch") is None or (method and record.get("method") != method):
                continue
            # the opened pass's flags are in hand: not every score array of it decoded a second time
            flagged = scores.get("flagged") if record.get("id") == pass_id else store.pass_scores(record["id"]).get("flagged")
            if flagged is not None:
                history.append(EpochFlags(int(record["epoch"]), np.flatnonzero(np.asarray(flagged, bool))))
        if len(history) < 2:
            # In-training DIFT saves one pass at the stop; its settings keep the buffer of every epoch.
            per_epoch = [r for r in settings.get("history") or [] if isinstance(r, dict) and "buffer_ids" in r]
            if per_epoch:
                history = [EpochFlags(int(r["epoch"]), np.asarray(r["buffer_ids"], dtype=np.int64)) for r in per_epoch]
        history.sort(key=lambda e: e.epoch)
        class_names = list(getattr(ws, "class_names", None) or [])
        truth, problem = None, None
        if with_ground_truth and hasattr(ws, "read_ground_truth"):
            try:
                truth = ws.read_ground_truth()
            except NaviewerError as exc:  # evaluation only: a garbled file blocked the analyst's views (a sweep)
                problem = str(exc)
        per = truth.get("samples") if isinstance(truth, dict) else None
        if isinstance(per, list) and len(per) != len(labels):
            # a ground truth of another length was read sample by sample, the rest unsaid (a sweep, session 19)
            problem = (f"{getattr(ws, 'ground_truth_path', 'ground_truth.json')}: the ground truth lists {len(per):,} "
                       f"samples, the workspace has {len(labels):,}")
            truth = None
        if problem is not None:
            import warnings

            from naviewer.errors import WorkspaceWarning

            warnings.warn(f"{problem}; evaluation mode has no ground truth to show", WorkspaceWarning, stacklevel=2)
        session = cls(
            scores, labels, class_names, images=images, embeddings=embeddings, store=store, reviewer=reviewer,
            source_keys=keys if len(keys) else None, ground_truth=truth, history=history, settings=settings,
        )
        # a pass saved without an epoch came from a post-hoc detection: acting on it fine-tunes that finished
        # encoder, whatever restart_mode its [dift] settings name (the tab read "Remove and retrain" and ran Eq. 7)
        # (but a follow-up pass, accept-all's check after the retrain, belongs to the run it checked: its tab acts as
        # that run's, "Remove and retrain" / Retrain again, not a post-hoc fine-tune of the retrained encoder)
        from naviewer.workspace.store import FOLLOW_UP_KEY

        session.post_hoc = any(r.get("id") == pass_id and r.get("epoch") is None
                               and FOLLOW_UP_KEY not in (r.get("settings") or {}) for r in passes)
        session.pass_id = None if pass_id is None else int(pass_id)
        session.method = method  # the pass's detector: "dift", or another detector's own pass (kdist, slof, ...)
        return session

    @property
    def restart_mode(self) -> str:
        """What acting on the confirmed flags does: "continue" (Eq. 7 then the paper's restart) or
        "retrain" (remove them and retrain from scratch), as the detection pass recorded it."""
        if self.post_hoc:
            return "continue"
        mode = _find_key(self.settings, "restart_mode")
        return str(mode) if mode else "continue"

    # -- scores -------------------------------------------------------------------------------
    def score(self, key: str) -> Optional[np.ndarray]:
        return self.scores.get(key)

    @property
    def flagged_mask(self) -> np.ndarray:
        """The final DIFT flags (else the candidates; else nothing)."""
        for key in ("flagged", "candidate"):
            if key in self.scores:
                return np.asarray(self.scores[key], dtype=bool)
        return np.zeros(self.n, dtype=bool)

    @property
    def candidate_mask(self) -> np.ndarray:
        return np.asarray(self.scores["candidate"], bool) if "candidate" in self.scores else np.zeros(self.n, bool)

    def flagged_ids(self) -> np.ndarray:
        return np.flatnonzero(self.flagged_mask)

    def suspicion_order(self) -> np.ndarray:
        """All sample ids, most suspicious first: flagged, then candidates, then by density rank (cached;
        made once even when a worker thread and the GUI thread ask at the same time)."""
        if self._order is None:
            with self._order_lock:
                if self._order is None:
                    order = self._suspicion_order()
                    order.flags.writeable = False
                    self._order = order
        return self._order

    def _suspicion_order(self) -> np.ndarray:
        fast = self._suspicion_order_by_permutation()
        if fast is not None:
            return fast
        keys = [np.arange(self.n)]
        if "rank" in self.scores:
            keys.insert(0, np.asarray(self.scores["rank"], dtype=np.float64))
        elif "density" in self.scores:
            sign = density_direction(self.scores["density"], None)
            keys.insert(0, -sign * np.asarray(self.scores["density"], dtype=np.float64))
        elif "score" in self.scores:  # another detector's pass (higher = more suspicious): its flags came in id order
            score = np.asarray(self.scores["score"], dtype=np.float64)  # (a newcomer's patchsearch pass, session 22)
            keys.insert(0, np.where(np.isfinite(score), -score, np.inf))
        keys.insert(0, ~self.candidate_mask)
        keys.insert(0, ~self.flagged_mask)
        return np.lexsort(tuple(reversed(keys))).astype(np.int64)

    def ids_by_rank(self) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """(rank as int64, the ids in rank order) when ``rank`` is a permutation of 0..N-1, else None."""
        rank = self.scores.get("rank")
        if rank is None or self.n == 0 or not np.issubdtype(np.asarray(rank).dtype, np.integer):
            return None
        rank = np.asarray(rank, dtype=np.int64)
        if rank.min() != 0 or rank.max() != self.n - 1:
            return None
        by_rank = np.full(self.n, -1, np.int64)
        by_rank[rank] = np.arange(self.n, dtype=np.int64)
        if (by_rank < 0).any():  # a repeated rank left a hole
            return None
        return rank, by_rank

    def _suspicion_order_by_permutation(self) -> Optional[np.ndarray]:
        """The same order in O(N) when ``rank`` is a permutation of 0..N-1 (what DIFT stores): the ids
        by rank, then stably split into flagged, candidates, the rest. None when it is not one (ties,
        gaps): the caller then sorts. At 10M samples this is ~0.3 s against ~5 s for the lexsort."""
        permutation = self.ids_by_rank()
        if permutation is None:
            return None
        rank, by_rank = permutation
        flagged, candidate = self.flagged_mask, self.candidate_mask
        special = flagged | candidate  # the flags and candidates: a few % of N, ordered on their own
        ids = np.flatnonzero(special)
        ids = ids[np.argsort(rank[ids], kind="stable")]
        f, c = flagged[ids], candidate[ids]
        rest = by_rank[~special[by_rank]]  # everything else, already in rank order
        return np.concatenate([ids[f & c], ids[f & ~c], ids[~f & c], rest])

    def density_rank(self) -> np.ndarray:
        """Rank per sample, 0 = densest (from the scores, or derived from density)."""
        if "rank" in self.scores:
            return np.asarray(self.scores["rank"], dtype=np.int64)
        if "density" in self.scores:
            order = np.argsort(-np.asarray(self.scores["density"], dtype=np.float64), kind="stable")
            rank = np.empty(self.n, np.int64)
            rank[order] = np.arange(self.n)
            return rank
        return np.arange(self.n, dtype=np.int64)

    def sample_scores(self, i: int) -> dict[str, Any]:
        """The scores of one sample as plain Python values (for tooltips and the inspector)."""
        out: dict[str, Any] = {"id": int(i), "label": self.class_name(int(self.labels[i]))}
        for key in SCORE_KEYS + SPREAD_RULE_KEYS:
            if key in self.scores:
                value = self.scores[key][i]
                out[key] = value.item() if hasattr(value, "item") else value
        out["review"] = self.state_of(i)
        if self.source_keys is not None:
            out["source"] = self.source_keys[i]
        return out

    def class_name(self, label: int) -> str:
        if 0 <= label < len(self.class_names):
            return self.class_names[label]
        return "unlabelled" if label < 0 else str(label)

    # -- images -------------------------------------------------------------------------------
    #: a failed image is read again when next shown this long after its failure: it was never asked again until the
    #: workspace was reopened, though a fixed permission or a remounted disk mends it (a review, session 24)
    IMAGE_RETRY_S = 15.0

    def image(self, i: int) -> Optional[np.ndarray]:
        """Sample ``i``'s pixels, or None when there are none or its file cannot be read: the problem is kept in
        :attr:`image_problems` and said once through :attr:`image_failed`. One damaged flagged image raised inside
        the gallery's paint on every repaint (a traceback a repaint, the tiles after it undrawn, a crash at exit). It is
        tried again when asked :data:`IMAGE_RETRY_S` after its failure, then twice as long after each further one (up
        to 10 minutes); a read that succeeds is said through :attr:`image_readable_again`."""
        if self.images is None:
            return None
        i = int(i)
        if i in self.image_problems and time.monotonic() < self._image_failed_at.get(i, 0.0):
            return None
        try:
            pixels = self.images.image(i) if hasattr(self.images, "image") else np.asarray(self.images[i])
        except (NaviewerError, OSError, ValueError) as exc:
            problem = str(exc) or type(exc).__name__
            first = i not in self.image_problems
            self.image_problems[i] = problem
            # the next try after IMAGE_RETRY_S, doubling each failure up to 10 minutes: a read that hangs (a network
            # disk) is on the thread that paints, so it is not asked every 15 s for ever (a review, session 25)
            tries = self._image_tries[i] = self._image_tries.get(i, 0) + 1
            self._image_failed_at[i] = time.monotonic() + min(600.0, self.IMAGE_RETRY_S * 2 ** (tries - 1))
            if first:
                self.image_failed.emit(i, problem)
            return None
        if self.image_problems.pop(i, None) is not None:  # mended on disk (permissions, a remount) since
            self._image_failed_at.pop(i, None)
            self._image_tries.pop(i, None)
            self.image_readable_again.emit(i)
        return pixels

    # -- selection ----------------------------------------------------------------------------
    def set_selection(self, ids: Sequence[int] | np.ndarray, source: Any = None) -> None:
        ids = np.unique(np.asarray(ids, dtype=np.int64).ravel())
        if len(ids) and (ids[0] < 0 or ids[-1] >= self.n):
            raise NaviewerError(f"selection ids out of range 0..{self.n - 1}")
        if np.array_equal(ids, self.selection):
            return
        self.selection = ids
        self.selection_changed.emit(ids, source)

    def clear_selection(self, source: Any = None) -> None:
        self.set_selection(np.zeros(0, np.int64), source)

    def selection_mask(self) -> np.ndarray:
        mask = np.zeros(self.n, dtype=bool)
        mask[self.selection] = True
        return mask

    def set_current(self, i: Optional[int], source: Any = None) -> None:
        i = None if i is None else int(i)
        if i is not None and not (0 <= i < self.n):
            raise NaviewerError(f"sample id {i} out of range 0..{self.n - 1}")
        if i == self.current:
            return
        self.current = i
        self.current_changed.emit(i, source)

    # -- review -------------------------------------------------------------------------------
    @property
    def state_codes(self) -> np.ndarray:
        """uint8 per sample: index into REVIEW_STATES (read-only view for painting)."""
        view = self._codes.view()
        view.flags.writeable = False
        return view

    def states(self) -> np.ndarray:
        return np.asarray(REVIEW_STATES, dtype=object)[self._codes].astype(str)

    def state_of(self, i: int) -> str:
        return REVIEW_STATES[int(self._codes[i])]

    def review(self, ids: Sequence[int] | np.ndarray, state: str, note: str = "",
               only_from: "Optional[str | dict[int, str]]" = None) -> np.ndarray:
        """Record ``state`` for those of ``ids`` not already in it, through the store (committed at once), and
        notify views; returns every id asked for (:attr:`last_written`: those written). A decision that changes
        nothing records nothing: it used to add an empty batch to the history, which Undo then reverted without a
        visible effect. What is "already in it" is read by the store inside the write, not from this session's
        copy, which is up to a poll old: a key on a sample another writer had just changed was dropped without a
        word. ``only_from``: write only the ids the store now holds in that state, or each in its own (a mapping; a
        revert)."""
        check_state(state)
        ids = np.unique(np.asarray(ids, dtype=np.int64).ravel())
        self.last_written = np.zeros(0, np.int64)
        if len(ids) == 0:
            return ids
        batch, written = self.store.set_review(ids, state, self.reviewer, note, skip_unchanged=True,
                                               only_from=only_from)
        self._mine.add(batch)
        written = np.asarray(written, dtype=np.int64)
        self.last_written = written
        # the store now holds ``state`` for every id (written, or already there) unless only_from left some out
        settled = ids if only_from is None else written
        changed = np.union1d(settled[self._codes[settled] != STATE_CODE[state]], written)
        self._codes[settled] = STATE_CODE[state]
        if len(changed):
            self.review_changed.emit(changed)
        return ids

    def confirm(self, ids) -> np.ndarray:
        return self.review(ids, "confirmed")

    def reject(self, ids) -> np.ndarray:
        return self.review(ids, "rejected")

    def later(self, ids) -> np.ndarray:
        return self.review(ids, "later")

    @property
    def own_batches(self) -> Any:
        """The batches :meth:`undo` may take (an OwnBatches): a window hands them from one panel to the next."""
        return self._mine

    def use_own_batches(self, mine: Any) -> None:
        """Undo from ``mine`` (an earlier session's of the same window), writing this session's batches into it."""
        self._mine = mine

    def undo_own_batches_only(self) -> None:
        """U undoes only what this session decides from now on, not its reviewer's decisions from before it opened:
        for a window opened beside another on the same workspace, whose earlier batches are the other's."""
        self._mine.opened_after = 0

    def can_undo(self) -> bool:
        """Whether :meth:`undo` has a decision of this reviewer left to revert (the Undo buttons' state)."""
        return bool(self.store.has_undoable(self.reviewer, self._mine))

    def undo_target(self) -> Optional[int]:
        """The decision batch :meth:`undo` would revert now (None: none left)."""
        return self.store.undoable_batch(self.reviewer, self._mine)

    def undo(self) -> np.ndarray:
        """Revert this session's last decision batch (or its reviewer's from before it opened; never one another
        process wrote since under the same name); the store logs the undo as a new batch. Returns the reverted
        ids; :attr:`last_undo` says also which of the batch's samples were decided again since and left."""
        self.last_undo = self.store.undo_last_detail(self.reviewer, self._mine)
        ids = np.asarray(self.last_undo.reverted, dtype=np.int64)
        before = self._codes
        self.refresh_states()
        changed = np.union1d(ids, np.flatnonzero(before != self._codes)) if len(before) == len(self._codes) else ids
        if len(changed):
            self.review_changed.emit(changed.astype(np.int64))
        return ids

    def refresh_states(self) -> None:
        """Re-read every state from the store (after another process or an undo changed it)."""
        self._codes = self._read_codes()

    def sync_with_store(self) -> np.ndarray:
        """Take in decisions another process (a second window, ``naviewer review``) wrote to the store since this
        session last looked, and notify views of the samples that changed (returned; empty when none did). A
        window left open beside a second one showed 110 confirmed after the other rejected one, and its export
        dialog said 110 removed while the export wrote 109 (newcomer session 18). Cheap when nothing changed: one
        look at the audit log's newest row."""
        if self._audit_mark is None:
            return np.zeros(0, np.int64)
        mark = self._audit_mark()
        if mark == self._audit_seen:
            return np.zeros(0, np.int64)
        self._audit_seen = mark
        codes = self._read_codes()
        changed = np.flatnonzero(codes != self._codes).astype(np.int64)
        self._codes = codes
        if len(changed):
            self.review_changed.emit(changed)
        return changed

    def _read_codes(self) -> np.ndarray:
        """The store's states as uint8 codes; straight from the store when it can give codes in this order
        (the workspace store: no N-element array of state names, 400 MB at 10M samples)."""
        from naviewer.workspace import store as workspace_store

        if isinstance(self.store, workspace_store.WorkspaceStore) and tuple(workspace_store.REVIEW_STATES) == tuple(REVIEW_STATES):
            return self.store.review_codes()
        return state_codes(self.store.review_states())

    def review_counts(self, ids: Optional[np.ndarray] = None) -> dict[str, int]:
        """Count of each review state among ``ids`` (default: the flagged samples)."""
        ids = self.flagged_ids() if ids is None else np.asarray(ids, dtype=np.int64)
        counts = np.bincount(self._codes[ids], minlength=len(REVIEW_STATES))
        return {name: int(counts[c]) for c, name in enumerate(REVIEW_STATES)}

    def review_queue(self) -> np.ndarray:
        """The ids to review, in suspicion order: the flags (all samples when nothing is flagged)."""
        order = self.suspicion_order()
        flags = int(np.count_nonzero(self.flagged_mask))
        return order[:flags] if flags else order  # the order starts with the flags (both ways it is made)

    def next_unreviewed(self, after: Optional[int] = None) -> Optional[int]:
        """The next unreviewed id of the review queue after ``after`` (wrapping round), or None."""
        queue = self.review_queue()
        pending = self._codes[queue] == STATE_CODE["unreviewed"]
        if not pending.any():
            return None
        start = 0
        if after is not None:
            where = np.flatnonzero(queue == after)
            start = int(where[0]) + 1 if len(where) else 0
        rolled = np.roll(np.arange(len(queue)), -start)
        hit = rolled[pending[rolled]]
        return int(queue[hit[0]])

    # -- clusters -----------------------------------------------------------------------------
    def clusters(self, k: int = 10) -> list[Cluster]:
        if self._clusters is None:
            self._clusters = flagged_clusters(
                self.flagged_ids(),
                embeddings=self.embeddings,
                precomputed=self.scores.get("cluster"),
                density=self.scores.get("density"),
                rank=self.scores.get("rank"),
                mindist=self.scores.get("mindist"),
                labels=self.labels,
                k=k,
                reach=self.scores.get("anchor_reach"),
            )
        return self._clusters

    def cluster_of(self) -> np.ndarray:
        """Cluster index per sample (-1 outside every cluster)."""
        out = np.full(self.n, -1, dtype=np.int64)
        for cl in self.clusters():
            out[cl.members] = cl.cluster_id
        return out

    def select_cluster(self, index: int, source: Any = None) -> None:
        self.set_selection(self.clusters()[index].members, source)

    # -- neighbours, projection ---------------------------------------------------------------
    def neighbours(self, i: int, k: int = 8) -> np.ndarray:
        """The k nearest samples of ``i`` in (cosine) embedding space, nearest first; empty without embeddings."""
        if self.embeddings is None or self.n < 2:
            return np.zeros(0, np.int64)
        if self._unit is None:
            x = np.asarray(self.embeddings, dtype=np.float32)
            self._unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        sims = self._unit @ self._unit[int(i)]
        sims[int(i)] = -np.inf
        k = min(k, self.n - 1)
        top = np.argpartition(-sims, k - 1)[:k]
        return top[np.argsort(-sims[top], kind="stable")].astype(np.int64)

    def set_projection(self, points: np.ndarray, method: str = "given") -> None:
        points = np.asarray(points, dtype=np.float32)
        if points.shape != (self.n, 2):
            raise NaviewerError(f"a projection must be ({self.n}, 2), got {points.shape}")
        self._projections[method] = points
        self._projections["current"] = points
        self.projection_changed.emit(method)

    def projection(self, method: Optional[str] = None) -> np.ndarray:
        """The current 2-D map (PCA of the embedding computed on first use; rank x density otherwise)."""
        if method is None and "current" in self._projections:
            return self._projections["current"]
        method = method or "pca"
        if method not in self._projections:
            if method == "pca" and self.embeddings is not None:
                from naviewer.analysis.projection import pca

                self._projections["pca"] = pca(self.embeddings)
            elif method == "pca":
                rank = self.density_rank().astype(np.float32)
                md = self.scores.get("mindist")
                y = np.nan_to_num(np.asarray(md, np.float32)) if md is not None else np.zeros(self.n, np.float32)
                self._projections["pca"] = np.stack([rank / max(self.n, 1), y], axis=1)
            else:
                raise NaviewerError(f"projection {method!r} has not been computed yet")
            self._projections.setdefault("current", self._projections[method])
        return self._projections[method]

    # -- why flagged --------------------------------------------------------------------------
    def gmm(self) -> Optional[dict]:
        """The 2-component GMM on the candidates' MinDist: means, stds, weights, split (posterior 0.5).

        Taken from the pass settings when the detector recorded it (DIFT's ``gmm_means``/``gmm_stds``,
        or a ``gmm`` block), else fitted here on the candidates (same model: 1-D, 2 components).
        """
        if self._gmm is not None:
            return self._gmm
        md = self.scores.get("mindist")
        cand = self.candidate_mask if self.candidate_mask.any() else self.flagged_mask
        if md is None:
            return None
        values = np.asarray(md, np.float64)[cand]
        values = values[np.isfinite(values)]
        recorded = _recorded_gmm(self.settings)
        if recorded is not None:
            means, stds, weights = recorded
            if weights is None:  # DIFT records means/stds; the weights follow from the split it made
                post = self.scores.get("posterior")
                frac = float(np.nanmean(np.asarray(post, np.float64)[cand] > 0.5)) if post is not None and cand.any() else 0.5
                frac = min(max(frac, 0.01), 0.99)
                weights = np.array([1 - frac, frac]) if means[0] <= means[1] else np.array([frac, 1 - frac])
        elif len(values) >= 4 and np.ptp(values) > 0:
            from sklearn.mixture import GaussianMixture

            gm = GaussianMixture(2, random_state=0, n_init=3).fit(values[:, None])
            means = gm.means_.ravel()
            stds = np.sqrt(gm.covariances_.ravel())
            weights = gm.weights_.ravel()
        else:
            return None
        order = np.argsort(means)
        means, stds, weights = means[order], stds[order], weights[order]
        grid = np.linspace(means[0], means[1], 2001)
        pdf = weights[:, None] * np.exp(-0.5 * ((grid[None] - means[:, None]) / stds[:, None]) ** 2) / stds[:, None]
        split = float(grid[np.argmin(np.abs(pdf[1] - pdf[0]))])
        self._gmm = {"means": means, "stds": stds, "weights": weights, "split": split, "values": values}
        return self._gmm

    def detections_per_epoch(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(epochs, flagged count per epoch, selected-and-flagged count per epoch)."""
        if not self.history:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        epochs = np.array([h.epoch for h in self.history], dtype=np.int64)
        counts = np.array([len(h.flagged) for h in self.history], dtype=np.int64)
        sel = np.array([len(np.intersect1d(h.flagged, self.selection)) for h in self.history], dtype=np.int64)
        return epochs, counts, sel

    # -- ground truth (evaluation only) -------------------------------------------------------
    def truth_for(self, i: int) -> Optional[dict]:
        from naviewer.analysis.truth import truth_for

        return truth_for(self.ground_truth, int(i))

    def truth_poison_mask(self) -> Optional[np.ndarray]:
        from naviewer.analysis.truth import poison_mask

        return poison_mask(self.ground_truth, self.n)
