"""Every detector's score side by side (issue 13): the passes of other detectors, beside the one reviewed.

``naviewer detect --detector kdist/lid/slof/dao/dbscan/optics`` saves each detector as a pass of
its own (method = its name; scores ``score`` (higher = more suspicious), ``flagged``, ``cluster``).
The analyst reviews one pass, but every pass of the workspace whose scores have ``score`` is read
here, so that the inspector shows each detector's score of the selected sample, and the gallery's
sort and filters and the map's colouring can use any of them.

The scores join the session's score table under ``detector:<method>#<pass id>`` (the generic code of
the filters reads ``session.scores``); the rest (label, flags, ranks, the pass's summary) is kept in
a :class:`DetectorTable` attached to the session (:func:`detector_table`). Qt-free.

A ``crop_density`` pass also keeps each sample's densest crop (``best_box_top/left/height/width``,
``support``: :func:`naviewer.workflows.detector_passes.pass_extras`); :meth:`DetectorTable.densest_crop` gives it
for the inspector and the crop-layout view to outline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from naviewer.errors import NaviewerError

PREFIX = "detector:"
#: the fields of a sample's densest crop as a crop_density pass stores them (``best_box_<field>``)
BOX_FIELDS = ("top", "left", "height", "width")
#: what a pass's per-sample box means, by detector (the rest: crop_density's densest crop)
BOX_MEANING = {"patchsearch": "trigger window"}


@dataclass(frozen=True)
class DensestCrop:
    """A sample's densest crop by a ``crop_density`` pass: the box in image pixels and who says so."""

    top: int
    left: int
    height: int
    width: int
    support: Optional[int]
    key: str
    label: str
    what: str = "densest crop"  # what the box is: patchsearch's is its candidate trigger window

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.top, self.left, self.height, self.width

    def describe(self) -> str:
        """"16x16 px at (0, 16) · 12 other images' crops among its neighbours · crop_density #5"."""
        parts = [f"{self.width}x{self.height} px at (x {self.left}, y {self.top})"]
        if self.support is not None:
            parts.append(f"{self.support:,} other images' crops among its neighbours")
        return " · ".join(parts + [self.label])


@dataclass
class DetectorScore:
    """One detector pass's scores: ``key`` in ``session.scores``, ``label`` for a person."""

    key: str
    label: str
    pass_id: int
    method: str
    score: np.ndarray
    flagged: Optional[np.ndarray] = None
    summary: dict = field(default_factory=dict)
    direction_note: str = ""
    best_box: Optional[np.ndarray] = None  # (N, 4) top, left, height, width of each sample's densest crop
    support: Optional[np.ndarray] = None   # (N,) distinct other images among that crop's neighbours
    _rank: Optional[np.ndarray] = None
    note: str = ""                          # the whole description, for a score that is no pass (agreement)
    voters: tuple = ()                      # agreement only: (label, flagged) of each detector it counts
    encoder: str = ""                       # the checkpoint the pass embedded with, where it says ("" unknown)

    _sorted: Optional[np.ndarray] = None

    @property
    def sorted_scores(self) -> np.ndarray:
        """The finite scores in ascending order (made once; :func:`attach` makes it in the open's worker)."""
        if self._sorted is None:
            values = np.asarray(self.score, np.float64)
            self._sorted = np.sort(values[np.isfinite(values)])
        return self._sorted

    def top_share(self, ids: np.ndarray) -> float:
        """Where the samples ``ids`` stand by this score, as one number: the share of all scored samples at or
        above their median score (0.01 = the median member is among the 1 % most suspicious); NaN when none of
        them has a score. For the agreement, the mean count instead."""
        values = np.asarray(self.score, np.float64)[np.asarray(ids, np.int64)]
        values = values[np.isfinite(values)]
        if not values.size:
            return float("nan")
        if self.key == AGREEMENT_KEY:
            return float(values.mean())
        ordered = self.sorted_scores
        above = ordered.size - int(np.searchsorted(ordered, float(np.median(values)), side="left"))
        return above / max(ordered.size, 1)

    @property
    def rank(self) -> np.ndarray:
        """0 = the most suspicious sample (highest score); samples without a score rank last."""
        if self._rank is None:
            values = np.asarray(self.score, np.float64)
            key = np.where(np.isfinite(values), -values, np.inf)
            order = np.argsort(key, kind="stable")
            rank = np.empty(values.size, np.int64)
            rank[order] = np.arange(values.size)
            self._rank = rank
        return self._rank

    def value_name(self, long: bool = False) -> str:
        """What its values are called in a menu: "lid #3 score"; the agreement is a count, not a score of its own
        ("detectors agreeing score" read as one): "(count)", or ``long`` "(how many flag it, DIFT included)"."""
        if self.key != AGREEMENT_KEY:
            return f"{self.label} score"
        return f"{self.label} (how many flag it, DIFT included)" if long else f"{self.label} (count)"

    @property
    def refused(self) -> str:
        """Why the pass gave no verdict ("97 % of the samples flagged, more than max_fraction ...": PatchSearch's
        classifier learned no trigger), "" where it gave one. Its score then ranks nothing: a newcomer read
        "top 95 %" and an inverted order on their own patch poisons as PatchSearch's word (session 32)."""
        threshold = self.summary.get("threshold") if isinstance(self.summary, dict) else None
        refused = threshold.get("refused") if isinstance(threshold, dict) else None
        return str(refused) if refused else ""

    def describe(self) -> str:
        """The pass in one line: flags, and AUROC / precision / recall when it was run in evaluation mode."""
        if self.note:
            return self.note
        s = self.summary
        parts = [f"{self.method}, detection pass {self.pass_id}"]
        if self.refused:
            parts.append(f"NO VERDICT ({self.refused}): its score ranks no trigger; read it as nothing found")
        if self.flagged is not None:
            parts.append(f"{int(np.count_nonzero(self.flagged)):,} flagged")
        for name in ("auroc", "precision", "recall"):
            value = s.get(name)
            if isinstance(value, (int, float)) and np.isfinite(value):
                parts.append(f"{name.upper() if name == 'auroc' else name} {value:.3f}")
        text = " · ".join(parts) + " (higher score = more suspicious)"
        return text + (f"; score = {self.direction_note}" if self.direction_note else "")


@dataclass
class DetectorTable:
    """The detector passes of a session, oldest first."""

    items: list[DetectorScore] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def get(self, key: str) -> Optional[DetectorScore]:
        return next((item for item in self.items if item.key == key), None)

    def keys(self) -> list[str]:
        return [item.key for item in self.items]

    def densest_crop(self, sid: int) -> Optional[DensestCrop]:
        """Sample ``sid``'s densest crop by the latest ``crop_density`` pass that scored it, else None."""
        for item in reversed(self.items):
            if item.best_box is None or not 0 <= sid < len(item.best_box) or not np.isfinite(item.score[sid]):
                continue
            top, left, height, width = (int(v) for v in item.best_box[sid])
            if height <= 0 or width <= 0:
                continue
            support = None if item.support is None else int(item.support[sid])
            return DensestCrop(top, left, height, width, support, item.key, item.label,
                               BOX_MEANING.get(item.method, "densest crop"))
        return None


def load_detector_scores(ws: Any, dift_flags: Optional[np.ndarray] = None) -> DetectorTable:
    """Every pass of ``ws`` whose scores have ``score`` (a damaged pass is skipped, with a note), and their
    agreement; ``dift_flags``: the flags of the DIFT pass the analyst shows, counted in the agreement."""
    table = DetectorTable()
    n = ws.store.sample_count()
    for record in ws.store.passes():
        if "score" not in (record.get("scores") or []):
            continue
        pass_id, method = int(record["id"]), str(record.get("method") or "detector")
        try:
            arrays = ws.store.pass_scores(pass_id)
        except NaviewerError as exc:
            table.notes.append(f"detection pass {pass_id} ({method}) left out: {exc}")
            continue
        score = np.asarray(arrays["score"], np.float64)
        if score.shape != (n,):
            table.notes.append(f"detection pass {pass_id} ({method}) left out: {score.size} scores for {n} samples")
            continue
        flagged = arrays.get("flagged")
        settings = record.get("settings") or {}
        summary = settings.get("summary") if isinstance(settings.get("summary"), dict) else {}
        boxes = [arrays.get(f"best_box_{f}") for f in BOX_FIELDS]
        best_box = (np.stack([np.asarray(b, np.int64) for b in boxes], axis=1)
                    if all(b is not None for b in boxes) else None)
        support = arrays.get("support")
        table.items.append(DetectorScore(f"{PREFIX}{method}#{pass_id}", f"{method} #{pass_id}", pass_id, method, score,
                                         None if flagged is None else np.asarray(flagged, bool), dict(summary),
                                         str(settings.get("direction_note") or ""), best_box,
                                         None if support is None else np.asarray(support, np.int64),
                                         encoder=_encoder_of(settings)))
    # a detector run again shows once, its latest pass: re-runs listed kdist #2 beside kdist #9 with the same scores
    latest = {item.method: item for item in table.items}
    older = len(table.items) - len(latest)
    table.items = [item for item in table.items if latest[item.method] is item]
    if older:
        table.notes.append(f"{older} earlier pass{'es' if older != 1 else ''} of the same detectors left out "
                           "(the latest of each is shown)")
    agreement = agreement_item(table.items, n, dift_flags)
    if agreement is not None:
        table.items.append(agreement)
    return table


AGREEMENT_KEY = f"{PREFIX}agreement"


def _encoder_of(settings: Any) -> str:
    encoder = settings.get("encoder") if isinstance(settings, dict) else None
    if not isinstance(encoder, dict):
        return ""
    # the path and the file's stamp: a retrained last.pt at the same path is another encoder (session 28)
    stamp = str(encoder.get("stamp") or "")
    return str(encoder.get("checkpoint") or "") + (f"@{stamp}" if stamp else "")


def dift_flags_of(ws: Any, session: Any) -> Optional[np.ndarray]:
    """DIFT's flags for the agreement: the session's own when it shows a DIFT pass, else the workspace's latest DIFT
    pass's. A slof pass's flags were counted as "DIFT" beside slof itself (DIFT had flagged nothing; a newcomer)."""
    if getattr(session, "method", None) in (None, "dift"):
        return session.flagged_mask
    latest = ws.store.latest_pass_id("dift")
    if latest is None:
        return None
    try:
        flagged = ws.store.pass_scores(int(latest)).get("flagged")
    except NaviewerError:
        return None
    return None if flagged is None else np.asarray(flagged, bool)


def agreement_item(items: list[DetectorScore], n: int, dift: Optional[np.ndarray] = None) -> Optional[DetectorScore]:
    """How many of the detectors flag each sample, as one more score (sort, filter, map colour, inspector);
    None with fewer than two detectors that flag. Flagged: two or more agree. ``dift``: the flags of the DIFT pass
    the analyst shows, counted as one more detector (a newcomer read "1 of 2" on a sample DIFT and kdist flagged)."""
    voters = [(item.label, item.flagged) for item in items if item.flagged is not None and len(item.flagged) == n]
    if dift is not None and len(dift) == n and np.asarray(dift).any():
        voters.insert(0, ("DIFT", np.asarray(dift, bool)))
    if len(voters) < 2:
        return None
    counts = np.zeros(n, np.float64)
    for _label, flagged in voters:
        counts += flagged
    names = ", ".join(label for label, _flagged in voters)
    note = f"how many of the {len(voters)} detectors flag the sample ({names}); higher = more detectors agree"
    encoders = {item.encoder for item in items if item.encoder and item.flagged is not None and len(item.flagged) == n}
    if any("@" not in e.rsplit("/", 1)[-1] for e in encoders):  # a pass from before stamps: told apart by path only
        encoders = {e.rsplit("@", 1)[0] if "@" in e.rsplit("/", 1)[-1] else e for e in encoders}
    if len(encoders) > 1:  # passes of three encoders were counted as one vote each on one embedding (session 28)
        note += (f"; NOTE: these passes come from {len(encoders)} different encoders, so they do not vote on the same "
                 "embedding: run Detect… with every detector on one encoder to compare them")
    return DetectorScore(AGREEMENT_KEY, "detectors agreeing", -1, "agreement", counts, counts >= 2, {}, "", None, None,
                         note=note, voters=tuple(voters))


def attach(session: Any, table: DetectorTable) -> DetectorTable:
    """Put ``table``'s scores into ``session.scores`` (for sorting and filtering) and keep the table on it."""
    for item in table:
        if len(item.score) != session.n:
            continue
        session.scores[item.key] = item.score
        if item.key != AGREEMENT_KEY:
            item.sorted_scores  # for the cluster table's columns: a sort of N, here in the open's worker
    session._gui_detector_table = table  # type: ignore[attr-defined]
    return table


def detector_table(session: Any) -> DetectorTable:
    """The table :func:`attach` put on ``session`` (an empty one when none was)."""
    return getattr(session, "_gui_detector_table", None) or DetectorTable()
