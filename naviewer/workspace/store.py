"""The workspace's SQLite store: samples, detection passes, review decisions, audit log, runs.

Durability: the database runs in WAL mode with ``synchronous=FULL`` and every write is its own
transaction committed before the method returns, so a review decision survives the process being
killed (SIGKILL) right after ``set_review`` returns, and survives power loss too.

Detection scores are stored as one compressed ``.npy`` blob per score array in ``pass_arrays``
rather than one row per sample: a pass over 1.28M samples is then 8 blobs written and read in
tens of milliseconds (a row-per-sample table needs ~10M values through executemany and a
multi-second read-back; see ``naviewer bench workspace``). Passes are always read whole (the map,
the ranking and the export need every sample), so per-row SQL access would buy nothing.
Blobs are decoded with ``allow_pickle=False``: a tampered file cannot run code.

Scale (issue 17 item 4): samples are registered from any iterable of rows, consumed in chunks of
``ROW_CHUNK`` inside one transaction, so 10M file-list samples never exist as 10M Python objects.
Registration also records a *sample summary* (count, label range) in ``meta`` and the labels as
one blob in ``sample_arrays``; triggers on ``samples`` delete both when any other code inserts,
updates or deletes a sample row. Opening a store with a summary therefore needs no scan of the
samples table (its count, id range and labels come from the summary and two b-tree lookups), and
the full ``quick_check`` is replaced by per-table checks of everything but ``samples`` once the
database is larger than ``FULL_CHECK_BYTES`` (64 MiB). Stores without a summary (made by older naviewer,
or edited by another tool) are checked exactly as before.

Threads: each thread gets its own connection (``threading.local``); writes are serialised by a
process-wide lock and ``BEGIN IMMEDIATE`` (other processes wait up to ``busy_timeout``). WAL lets
readers proceed while one writer commits, so a GUI worker can read scores while the review panel
writes decisions. :meth:`close` closes the connections of every thread.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import sqlite3
import threading
import time
import urllib.parse
import zlib
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from naviewer.errors import NaviewerError
from naviewer.io import describe_os_error, json_default, json_loads

PathLike = Union[str, "os.PathLike[str]"]

#: version of the table layout this code writes; opening a newer one is refused
STORE_SCHEMA = 1

REVIEW_STATES = ("unreviewed", "confirmed", "rejected", "later")
UNREVIEWED = "unreviewed"
#: a pass whose settings hold this key follows a review (accept-all's check after the retrain,
#: :mod:`naviewer.workflows.check_after_retrain`): the review a workspace opens by default stays on the pass it follows
FOLLOW_UP_KEY = "follow_up_check"


class OwnBatches:
    """The review batches one window may undo: those it wrote itself, and its reviewer's from before it opened
    (a later sitting undoes an earlier one's last decision). A batch another process wrote meanwhile under the
    same login name (``naviewer review``, a second window) is not one of them."""

    def __init__(self, opened_after: int = 0) -> None:
        self.opened_after = int(opened_after)
        self.written: set[int] = set()

    def add(self, batch_id: Optional[int]) -> None:
        if batch_id is not None:
            self.written.add(int(batch_id))

    def holds(self, batch_id: int) -> bool:
        return int(batch_id) <= self.opened_after or int(batch_id) in self.written


class UndoResult:
    """What one undo did: the batch it took (None: nothing left to undo), the samples it put back, and the
    batch's samples decided again since, which it left as they are."""

    def __init__(self, batch: Optional[int], reverted: list[int], skipped: list[int]) -> None:
        self.batch, self.reverted, self.skipped = batch, reverted, skipped

    def __repr__(self) -> str:
        return f"UndoResult(batch={self.batch}, reverted={self.reverted}, skipped={self.skipped})"

#: known score arrays and the dtype kind they are stored as ("f": keep float width, else cast)
SCORE_KEYS: dict[str, str] = {
    "density": "f",
    "rank": "int64",
    "candidate": "bool",
    "mindist": "f",
    "posterior": "f",
    "flagged": "bool",
    "spread": "bool",
    "cluster": "int64",
}

_SQL_CHUNK = 900  # stay under SQLite's host-parameter limit
#: rows handed to one ``executemany`` while registering samples (one transaction for all of them)
ROW_CHUNK = 50_000
#: above this database size an open checks every table but ``samples`` (whose summary vouches for it)
FULL_CHECK_BYTES = 64 * 1024 * 1024  # a full quick_check: ~0.4 s at 64 MiB, ~1.9 s at 266 MB (3M samples)
_SUMMARY_KEY = "samples_summary"

#: the tables every schema-1 database has had since the first (sample_arrays is made when missing)
REQUIRED_TABLES = ("meta", "samples", "detection_passes", "pass_arrays", "review", "review_batches", "audit", "runs")
_SAMPLE_ARRAYS_SQL = "CREATE TABLE IF NOT EXISTS sample_arrays(name TEXT PRIMARY KEY, data BLOB NOT NULL)"
_UNDO_INDEX_SQL = "CREATE INDEX IF NOT EXISTS review_batches_undo_of ON review_batches(undo_of)"
#: any change to the samples made by other code drops the summary and the label blob
_SUMMARY_TRIGGERS = tuple(
    f"CREATE TRIGGER IF NOT EXISTS samples_summary_{event.lower()} AFTER {event} ON samples "
    f"BEGIN DELETE FROM meta WHERE key='{_SUMMARY_KEY}'; DELETE FROM sample_arrays; END"
    for event in ("INSERT", "UPDATE", "DELETE")
)

_SCHEMA_SQL = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE samples(
    id INTEGER PRIMARY KEY,
    source_key TEXT NOT NULL,
    hash TEXT NOT NULL,
    label INTEGER NOT NULL
);
CREATE TABLE detection_passes(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    method TEXT NOT NULL,
    run TEXT,
    epoch INTEGER,
    created REAL NOT NULL,
    n INTEGER NOT NULL,
    settings_json TEXT NOT NULL
);
CREATE TABLE pass_arrays(
    pass_id INTEGER NOT NULL REFERENCES detection_passes(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY(pass_id, name)
);
CREATE TABLE review(
    sample_id INTEGER PRIMARY KEY,
    state TEXT NOT NULL CHECK(state IN ('unreviewed', 'confirmed', 'rejected', 'later')),
    reviewer TEXT NOT NULL,
    time REAL NOT NULL
);
CREATE TABLE review_batches(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    reviewer TEXT NOT NULL,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    undo_of INTEGER,
    note TEXT NOT NULL DEFAULT ''
);
CREATE TABLE audit(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sample_id INTEGER NOT NULL,
    old TEXT NOT NULL CHECK(old IN ('unreviewed', 'confirmed', 'rejected', 'later')),
    new TEXT NOT NULL CHECK(new IN ('unreviewed', 'confirmed', 'rejected', 'later')),
    reviewer TEXT NOT NULL,
    time REAL NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    batch INTEGER NOT NULL
);
CREATE INDEX audit_batch ON audit(batch);
CREATE INDEX review_batches_undo_of ON review_batches(undo_of);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER batches_no_delete BEFORE DELETE ON review_batches
BEGIN SELECT RAISE(ABORT, 'review batches are append-only'); END;
CREATE TABLE sample_arrays(name TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE runs(
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    created REAL NOT NULL,
    config_json TEXT NOT NULL
);
"""


def _encode_array(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return zlib.compress(buffer.getvalue(), 1)


def _decode_array(blob: bytes) -> np.ndarray:
    return np.load(io.BytesIO(zlib.decompress(blob)), allow_pickle=False)


def _chunks(values: Sequence[Any], size: int = _SQL_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


_CONNECTIONS: dict[str, int] = {}
_CONNECTIONS_LOCK = threading.Lock()


def _count_connections(path: "str | Path", change: int) -> None:
    """Keep how many SQLite connections this process has open to each database file (by its real path)."""
    key = os.path.realpath(path)
    with _CONNECTIONS_LOCK:
        count = _CONNECTIONS.get(key, 0) + change
        if count > 0:
            _CONNECTIONS[key] = count
        else:
            _CONNECTIONS.pop(key, None)


def _open_connections(path: "str | Path") -> int:
    with _CONNECTIONS_LOCK:
        return _CONNECTIONS.get(os.path.realpath(path), 0)


#: the characters that reorder the text around them (embeddings, overrides, isolates, marks): a reviewer name holding
#: one would show in the audit log as another name
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
                          # and the invisible spaces: "al\u200bice" showed as alice, another reviewer's name (the
                          # zero-width (non-)joiners stay: Persian and Indic names need them)
                          "\u200b\u2060\ufeff")
#: the longest reviewer name a decision records (the audit log shows it on one line)
REVIEWER_MAX = 200

def _text_reader(path: "os.PathLike[str] | str"):
    """SQLite's text values decoded as UTF-8, a value that is not said as a damaged database naming the file: SQLite
    raised its own OperationalError, a traceback of review (a fuzz of the database, session 34)."""
    def read(raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise NaviewerError(f"the workspace database is damaged: a text value is not UTF-8 "
                                f"({raw[:60].decode('utf-8', 'replace')!r})", path) from None
    return read


class WorkspaceStore:
    """SQLite store of one workspace. Open it through :class:`~naviewer.workspace.Workspace`."""

    def __init__(self, path: PathLike, create: bool = False, busy_timeout_s: float = 30.0,
                 read_only: Optional[bool] = None) -> None:
        """Open (or ``create``) the store. ``read_only``: True opens it for reading only; None (the
        default) opens it for writing when the file and its folder can be written, else read-only, so a
        workspace on read-only media or owned by someone else can still be listed and exported."""
        self.path = Path(path)
        self._busy_timeout_s = busy_timeout_s
        #: how long a review decision (set, undo) waits for another process's write lock; None: busy_timeout_s.
        #: The window sets a few seconds: each decision froze it 30 s while a database browser held the lock
        self.review_wait_s: Optional[float] = None
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._registry_lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._samples_cache: Optional[dict[str, Any]] = None
        self._checked_summary: Optional[dict[str, int]] = None
        self._immutable = False
        self._read_only_reason = ""  # why a store asked for writing opened read-only, where known ("the disk is full")
        self._identity: Optional[tuple[int, int]] = None  # (device, inode) of the file the writes go to
        self.label_range: tuple[Optional[int], Optional[int]] = (None, None)
        if create and read_only:
            raise ValueError("cannot create a store read-only")
        if not create and not self.path.is_file():
            if self.path.is_dir():  # it read "missing" (a sweep, session 19)
                raise NaviewerError("the workspace database is a folder, not the SQLite file it should be", self.path)
            raise NaviewerError("the workspace database is missing", self.path)
        if not create:
            self._check_header()
        self.read_only = bool(read_only)
        if read_only is None and not create and not self._writable():
            self.read_only = True
        try:
            try:
                conn = self._conn()
            except sqlite3.OperationalError as exc:
                if read_only is not None or create:
                    raise
                if "locked" in str(exc).lower() or "busy" in str(exc).lower():
                    # another process's exclusive lock (a database browser) read as "open read-only" (a sweep)
                    raise NaviewerError("another process holds the workspace's database locked (a database browser, "
                                        "or a write in progress): close it, or wait for it", self.path) from None
                self.close()  # read-write refused (a read-only file system, a file of another user, a full disk)
                self.read_only = True
                if "full" in str(exc).lower():  # said as what it is: "fix its permissions" on a full disk misled
                    self._read_only_reason = "the disk is full"
                conn = self._conn()
            if create:
                self._create_schema(conn)
            self._check(conn)
        except sqlite3.OperationalError as exc:
            self.close()
            if create:
                raise NaviewerError(f"cannot create the workspace database: {sqlite_reason(exc)}", self.path) from None
            raise NaviewerError(f"cannot open the workspace database ({sqlite_reason(exc)})", self.path) from None
        except sqlite3.DatabaseError as exc:
            self.close()
            raise NaviewerError(f"not a valid naviewer database ({exc})", self.path) from exc
        except BaseException:
            self.close()
            raise

    def _check_header(self) -> None:
        """Refuse an empty or foreign file before SQLite opens it (opening would write a header into it).

        Skipped while this process already has a connection to the file: POSIX drops every lock a process
        holds on a file when it closes *any* descriptor of it, so reading the header with ``open`` beside a
        live SQLite connection (the GUI's, while a job opens the workspace again) silently released that
        connection's locks, and another process (``naviewer`` on the command line, the sqlite3 tool) could
        then checkpoint and reset the WAL under it: a corrupted database, seen once in a newcomer session."""
        if _open_connections(self.path) > 0:
            return
        try:
            with open(self.path, "rb") as handle:
                head = handle.read(16)
        except OSError as exc:
            raise NaviewerError(f"cannot read the workspace database: {describe_os_error(exc)}", self.path) from None
        if not head:
            raise NaviewerError("not a valid naviewer database (the file is empty)", self.path)
        if head != b"SQLite format 3\x00":
            raise NaviewerError("not a valid naviewer database (not an SQLite file)", self.path)
        # another program's SQLite file: refused before the writable connection turns it to WAL mode, which changed
        # the file a refused command should leave as it was (a bad-input probe, session 27). A read-only look; where
        # it cannot tell (no -shm can be made, a lock), the full open below says what is wrong.
        try:
            probe = sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=ro", uri=True, timeout=1.0)
            try:
                found = probe.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
            finally:
                probe.close()
        except sqlite3.Error:
            return
        if found is None:
            raise NaviewerError("not a naviewer database (no such table: meta): another program's SQLite file?",
                                self.path)

    def _writable(self) -> bool:
        folder = self.path.parent
        return os.access(self.path, os.W_OK) and os.access(folder, os.W_OK)

    # -- connections ------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.read_only:
                conn = self._connect_read_only()
            else:
                conn = sqlite3.connect(
                    self.path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False
                )
                try:
                    conn.execute("PRAGMA journal_mode=WAL").fetchone()
                    conn.execute("PRAGMA synchronous=FULL")
                    conn.execute("PRAGMA foreign_keys=ON")
                except BaseException:
                    conn.close()
                    raise
                if self._identity is None:
                    with contextlib.suppress(OSError):
                        info = os.stat(self.path)
                        self._identity = (info.st_dev, info.st_ino)
            conn.text_factory = _text_reader(self.path)
            self._local.conn = conn
            with self._registry_lock:
                self._connections.append(conn)
            _count_connections(self.path, +1)
        return conn

    def _connect_read_only(self) -> sqlite3.Connection:
        """``mode=ro``; when even that needs a file it cannot create (the WAL index of a database on a
        read-only folder), ``immutable=1``: nothing can write there, so nothing can change under it."""
        uri = "file:" + urllib.parse.quote(os.path.abspath(self.path)) + "?mode=ro"
        if not self._immutable:
            conn = sqlite3.connect(uri, uri=True, timeout=self._busy_timeout_s, isolation_level=None,
                                   check_same_thread=False)
            try:
                conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
                return conn
            except sqlite3.OperationalError:
                conn.close()
                self._immutable = True
        conn = sqlite3.connect(uri + "&immutable=1", uri=True, timeout=self._busy_timeout_s, isolation_level=None,
                               check_same_thread=False)
        return conn

    @contextlib.contextmanager
    def _write(self, checkpoint: bool = False, wait_s: Optional[float] = None) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed (and synced) before the caller's method returns.

        ``checkpoint``: also copy the WAL into the database file afterwards (passive: skipped where a
        reader holds it). For the analyst's decisions: a workspace copied while the window is open, the
        database file without its ``-wal`` beside it, had lost every decision since the last checkpoint."""
        if self.read_only:
            if self._read_only_reason:
                raise NaviewerError(f"cannot write the workspace database: {self._read_only_reason}; nothing was "
                                    "changed", self.path)
            raise NaviewerError("the workspace is open read-only (its folder or database cannot be written here); "
                                "nothing was changed", self.path)
        with self._write_lock:
            conn = self._conn()
            self._check_same_file()
            try:
                if wait_s is not None:  # this write alone waits less for another process's lock (set back below)
                    conn.execute(f"PRAGMA busy_timeout = {max(0, int(wait_s * 1000))}")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                if checkpoint:
                    with contextlib.suppress(sqlite3.Error):  # committed already; a busy checkpoint waits for the next
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.OperationalError as exc:  # disk full, read-only, locked past busy_timeout, I/O error
                raise NaviewerError(f"cannot write the workspace database: {sqlite_reason(exc)}; nothing was changed",
                                    self.path) from None
            finally:
                if wait_s is not None:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")

    def _check_same_file(self) -> None:
        """Refuse a write when the database at the path is no longer the file this store opened: replaced or deleted
        while the window had it open, later decisions were "recorded" into the unlinked file and lost without a
        word (a GUI sweep). One stat a write."""
        if self._identity is None:
            return
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            raise NaviewerError("the workspace database was moved or deleted while it was open; nothing was changed: "
                                "reopen the workspace", self.path) from None
        except OSError:
            return  # the write itself says what is wrong
        if (info.st_dev, info.st_ino) != self._identity:
            raise NaviewerError("the workspace database was replaced by another file while it was open; nothing was "
                                "changed (it would have gone into the old one): reopen the workspace", self.path)

    def check_writable(self, wait_s: float = 3.0) -> None:
        """Refuse at once when another process holds the database locked for writing (a write transaction, a
        database browser): a detection ran for minutes, waited 30 s without a word and threw its pass away (a
        sweep, session 19). Waits ``wait_s`` for a short write of another naviewer to end. A workspace open
        read-only is refused too: detect ran its whole pass and printed the verdict before it could not save it."""
        if self.read_only:
            if self._read_only_reason:  # a full disk read as a permissions problem (a bad-input probe, session 27)
                raise NaviewerError(f"cannot write the workspace database: {self._read_only_reason}, and this saves "
                                    "into it: free some space and run it again", self.path)
            raise NaviewerError("the workspace is open read-only (its folder or database cannot be written here), "
                                "and this saves into it: copy the workspace somewhere writable, or fix its "
                                "permissions", self.path)
        try:
            conn = sqlite3.connect(self.path, timeout=wait_s, isolation_level=None)
        except sqlite3.Error:
            return  # the real write says what is wrong
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc).lower() or "busy" in str(exc).lower():
                raise NaviewerError("another process holds the workspace's database locked for writing (a write in "
                                    "progress, or a database browser): close it, or wait for it; nothing was started",
                                    self.path) from None
        finally:
            conn.close()

    def close(self) -> None:
        """Close the connections of every thread (call once no thread uses the store)."""
        with self._registry_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        _count_connections(self.path, -len(connections))
        self._local = threading.local()

    def __enter__(self) -> "WorkspaceStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema -----------------------------------------------------------------------------
    def _create_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        for statement in _split_sql(_SCHEMA_SQL):
            conn.execute(statement)
        conn.execute("INSERT INTO meta(key, value) VALUES('schema', ?)", (str(STORE_SCHEMA),))
        conn.execute("INSERT INTO meta(key, value) VALUES('created', ?)", (repr(time.time()),))
        for statement in _SUMMARY_TRIGGERS:
            conn.execute(statement)
        conn.execute("COMMIT")

    def _check(self, conn: sqlite3.Connection) -> None:
        try:
            summary = self._summary(conn, verify=True)
            large = self.path.stat().st_size > FULL_CHECK_BYTES
        except (sqlite3.DatabaseError, OSError):
            summary, large = None, False
        if summary is not None and large:
            # every table but samples, whose summary (kept by triggers) vouches for its rows: no scan of 10M rows
            tables = [row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT IN ('samples', 'sqlite_sequence')")]
            result = []
            for table in tables:
                result += [row[0] for row in conn.execute(f"PRAGMA quick_check({_quoted(table)})").fetchall()]
            result = [line for line in result if line != "ok"] or ["ok"]
        else:
            result = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
        if result != ["ok"]:
            # one line: SQLite's report holds newlines ("*** in database main ***", one problem a line; a fuzz)
            problems = [part.strip() for line in result for part in str(line).splitlines()
                        if part.strip() and not part.strip().startswith("***")]
            first = problems[0] if problems else "integrity check failed"
            more = f" (and {len(problems) - 1:,} more problem{'s' if len(problems) != 2 else ''})" if len(problems) > 1 else ""
            raise NaviewerError(f"the database is corrupted: {first[:200]}{more}; restore the workspace from a backup "
                                "or make it again (naviewer new)", self.path)
        self._checked_summary = summary
        try:
            row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.OperationalError as exc:
            raise NaviewerError(f"not a naviewer database ({exc})", self.path) from exc
        if row is None:
            raise NaviewerError("not a naviewer database (no schema version)", self.path)
        try:
            schema = int(row[0])
        except ValueError as exc:
            raise NaviewerError(f"bad schema version {row[0]!r}", self.path) from exc
        if schema > STORE_SCHEMA:
            raise NaviewerError(
                f"database schema {schema} is newer than this naviewer supports ({STORE_SCHEMA}); "
                "upgrade naviewer",
                self.path,
            )
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        missing = [name for name in REQUIRED_TABLES if name not in tables]
        if missing:  # a table dropped by another tool: the first read of it was an sqlite3 traceback
            raise NaviewerError(f"the workspace database is damaged: table{'s' if len(missing) > 1 else ''} "
                                f"{', '.join(missing)} missing (dropped by another tool?); restore the workspace "
                                "from a copy", self.path)
        self._check_content(conn)

    def _check_content(self, conn: sqlite3.Connection) -> None:
        """What other code relies on and another tool could break: ids 0..N-1, typed rows, known review states."""
        try:
            # ids: a b-tree count and two single-row lookups; labels: one pass (about 0.25 s for 1.28M rows).
            # The text columns are checked where they are read whole (the export), not at every open.
            # With a summary (written at registration, dropped by triggers on any other change) the count and
            # label range come from it and only the two id lookups touch the table: O(log N), not a scan.
            summary = self._checked_summary
            if summary is not None:
                count, low_label, high_label, mistyped = summary["count"], summary["label_min"], summary["label_max"], 0
            else:
                count = conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
            low = conn.execute("SELECT MIN(id) FROM samples").fetchone()[0]
            high = conn.execute("SELECT MAX(id) FROM samples").fetchone()[0]
            if summary is None:
                mistyped, low_label, high_label = conn.execute(
                    "SELECT TOTAL(typeof(label) != 'integer'), MIN(label), MAX(label) FROM samples").fetchone()
            if count and (low != 0 or high != count - 1):
                raise NaviewerError(
                    f"the samples table is damaged: {count} rows with ids {low}..{high}, expected 0..{count - 1} "
                    "(rows were deleted or added by another tool)", self.path)
            if mistyped:
                bad = conn.execute("SELECT id, label FROM samples WHERE typeof(label) != 'integer' LIMIT 1").fetchone()
                raise NaviewerError(f"the samples table is damaged: sample {bad[0]} has a value of the wrong type "
                                    f"(label {bad[1]!r})", self.path)
            #: (smallest, largest) label of the samples, (None, None) when there are none
            self.label_range = (low_label, high_label)
            marks = ",".join("?" * len(REVIEW_STATES))
            rows = conn.execute(
                f"SELECT sample_id, state FROM review WHERE state NOT IN ({marks}) OR typeof(state) != 'text' "
                "LIMIT 3", REVIEW_STATES).fetchall()
            if rows:
                shown = ", ".join(f"sample {sid}: {state!r}" for sid, state in rows)
                raise NaviewerError(
                    f"unknown review state ({shown}); naviewer records only {', '.join(REVIEW_STATES)} "
                    "(was the database edited by another tool?)", self.path)
            row = conn.execute("SELECT sample_id FROM review WHERE sample_id < 0 OR sample_id >= ? "
                               "OR typeof(sample_id) != 'integer' LIMIT 1", (count,)).fetchone()
            if row is not None:
                raise NaviewerError(f"a review decision names sample {row[0]!r}, which does not exist "
                                    f"(the workspace has {count} samples)", self.path)
        except sqlite3.OperationalError as exc:
            raise NaviewerError(f"not a naviewer database ({exc})", self.path) from exc

    @property
    def schema(self) -> int:
        row = self._conn().execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        return int(row[0])

    # -- samples ----------------------------------------------------------------------------
    def add_samples(self, source_keys: Sequence[str], hashes: Sequence[str], labels: "np.ndarray | Sequence[int]") -> None:
        """Register samples; ids continue from the current count (0..N-1 for a fresh store)."""
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        n = len(source_keys)
        if len(hashes) != n or len(labels) != n:
            raise NaviewerError(f"add_samples: {n} keys, {len(hashes)} hashes, {len(labels)} labels")
        self.add_sample_rows(zip(source_keys, hashes, labels.tolist()))

    def add_sample_rows(self, rows: Iterable[tuple[str, str, int]], chunk: int = ROW_CHUNK,
                        on_chunk: Optional[Callable[[int], None]] = None) -> int:
        """Register ``(source_key, content_hash, label)`` rows from any iterable (a generator for 10M samples).

        The iterable is consumed ``chunk`` rows at a time, each chunk handed to one ``executemany``;
        nothing per sample is kept, only the running count and label range. All rows go in one
        transaction (a failure or an exception from the iterable or ``on_chunk`` leaves the store as it
        was). Ids continue from the current count. ``on_chunk(total so far)`` runs after every chunk
        (progress, cancel). Returns the number of rows added. Records the sample summary and the labels
        blob that let :meth:`open <__init__>` skip scanning the samples.
        """
        chunk = max(1, int(chunk))
        labels_parts: list[np.ndarray] = []
        with self._write() as conn:
            conn.execute(_SAMPLE_ARRAYS_SQL)
            for statement in _SUMMARY_TRIGGERS:  # not per row while we insert; recreated below
                conn.execute(f"DROP TRIGGER IF EXISTS {statement.split()[5]}")
            summary = self._summary(conn, verify=False)
            start = summary["count"] if summary is not None else conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
            old_labels = self._labels_blob(conn, start) if summary is not None else None
            if start and old_labels is None:
                old_labels = self._scan_labels(conn)
            if old_labels is not None and start:
                labels_parts.append(old_labels)
            next_id = start
            iterator = iter(rows)
            while True:
                batch = list(itertools.islice(iterator, chunk))
                if not batch:
                    break
                keys, hashes, raw_labels = zip(*batch)
                labels = np.asarray(raw_labels, dtype=np.int64).reshape(-1)
                conn.executemany(
                    "INSERT INTO samples(id, source_key, hash, label) VALUES(?, ?, ?, ?)",
                    zip(range(next_id, next_id + len(batch)), map(str, keys), map(str, hashes), labels.tolist()),
                )
                del keys, hashes, raw_labels
                next_id += len(batch)
                labels_parts.append(labels)
                del batch
                if on_chunk is not None:
                    on_chunk(next_id - start)
            all_labels = np.concatenate(labels_parts) if labels_parts else np.zeros(0, np.int64)
            del labels_parts
            record = {"count": int(next_id),
                      "label_min": int(all_labels.min()) if len(all_labels) else None,
                      "label_max": int(all_labels.max()) if len(all_labels) else None}
            conn.execute("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                         (_SUMMARY_KEY, json.dumps(record)))
            conn.execute("INSERT OR REPLACE INTO sample_arrays(name, data) VALUES('label', ?)",
                         (sqlite3.Binary(_encode_array(all_labels)),))
            for statement in _SUMMARY_TRIGGERS:
                conn.execute(statement)
        self._samples_cache = None
        if record["count"]:
            self.label_range = (record["label_min"], record["label_max"])
        return int(next_id - start)

    def _summary(self, conn: sqlite3.Connection, verify: bool) -> Optional[dict[str, int]]:
        """The sample summary, or None when there is none to trust (no summary; with ``verify``, also
        when a trigger that keeps it honest is missing or the id range disagrees)."""
        try:
            row = conn.execute("SELECT value FROM meta WHERE key=?", (_SUMMARY_KEY,)).fetchone()
        except sqlite3.OperationalError:
            return None
        if row is None:
            return None
        try:
            value = json_loads(row[0])
            summary = {"count": int(value["count"]), "label_min": value["label_min"], "label_max": value["label_max"]}
        except (TypeError, ValueError, KeyError, OverflowError):  # (a count of 1e999 is inf: int() overflows)
            return None
        if verify:
            names = [statement.split()[5] for statement in _SUMMARY_TRIGGERS]
            marks = ",".join("?" * len(names))
            found = conn.execute(f"SELECT COUNT(*) FROM sqlite_master WHERE type='trigger' AND name IN ({marks})",
                                 names).fetchone()[0]
            if found != len(names):
                return None
        return summary

    def _labels_blob(self, conn: sqlite3.Connection, n: int) -> Optional[np.ndarray]:
        try:
            row = conn.execute("SELECT data FROM sample_arrays WHERE name='label'").fetchone()
        except sqlite3.OperationalError:
            return None
        if row is None:
            return None
        try:
            array = _decode_array(row[0])
        except (zlib.error, ValueError, TypeError, OSError, EOFError):
            return None
        if array.ndim != 1 or len(array) != n or not np.issubdtype(array.dtype, np.integer):
            return None
        return array.astype(np.int64, copy=False)

    @staticmethod
    def _scan_labels(conn: sqlite3.Connection) -> np.ndarray:
        cursor = conn.execute("SELECT label FROM samples ORDER BY id")
        parts = []
        while True:
            rows = cursor.fetchmany(ROW_CHUNK)
            if not rows:
                break
            parts.append(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def sample_count(self) -> int:
        conn = self._conn()
        summary = self._summary(conn, verify=False)
        if summary is not None:
            return summary["count"]
        return int(conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0])

    def labels(self) -> np.ndarray:
        """Every sample's label by id (int64): the registration's blob when it is current, else one scan."""
        cached = self._samples_cache
        n = self.sample_count()
        if cached is not None and len(cached["id"]) == n:
            return cached["label"]
        conn = self._conn()
        array = self._labels_blob(conn, n) if self._summary(conn, verify=False) is not None else None
        return array if array is not None else self._scan_labels(conn)

    def source_keys(self) -> "SampleColumn":
        """The source keys as a lazy read-only sequence (read from SQLite in windows, nothing loaded up front)."""
        return SampleColumn(self, "source_key", self.sample_count())

    def sample_rows(self, start: int, stop: int, column: str = "source_key") -> list[str]:
        """``column`` ("source_key" or "hash") of ids ``start..stop-1`` (one indexed range query)."""
        if column not in ("source_key", "hash"):
            raise ValueError(f"unknown sample column {column!r}")
        try:
            rows = self._conn().execute(f"SELECT {column} FROM samples WHERE id >= ? AND id < ? ORDER BY id",
                                        (int(start), int(stop))).fetchall()
        except sqlite3.DatabaseError as exc:  # a large store's open checks the samples through its summary only
            raise NaviewerError(f"cannot read samples {start}..{stop - 1}: the database is corrupted ({exc})",
                                self.path) from None
        return [row[0] for row in rows]

    def sample_values(self, ids: "Sequence[int] | np.ndarray", column: str = "source_key") -> dict[int, str]:
        """``column`` of a few scattered ids (one query): id -> value."""
        if column not in ("source_key", "hash"):
            raise ValueError(f"unknown sample column {column!r}")
        ids = [int(i) for i in ids]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        try:
            rows = self._conn().execute(f"SELECT id, {column} FROM samples WHERE id IN ({marks})", ids).fetchall()
        except sqlite3.DatabaseError as exc:
            raise NaviewerError(f"cannot read samples: the database is corrupted ({exc})", self.path) from None
        return {int(i): value for i, value in rows}

    def label_conflicts(self, limit: int = 3) -> tuple[int, list[tuple[int, int]]]:
        """Samples with identical content under different labels: (how many such contents, up to ``limit``
        (id, id) pairs of two of them). A file hard-linked or copied into two class folders is registered
        once in each, with two labels; one GROUP BY over the hashes."""
        sql = ("SELECT hash, MIN(id), MAX(id) FROM samples GROUP BY hash HAVING COUNT(DISTINCT label) > 1")
        try:
            rows = self._conn().execute(sql).fetchall()
        except sqlite3.DatabaseError as exc:
            raise NaviewerError(f"cannot read samples: the database is corrupted ({exc})", self.path) from None
        pairs = []
        for content, first, _last in rows[:limit]:
            other = self._conn().execute("SELECT id FROM samples WHERE hash = ? AND label != "
                                         "(SELECT label FROM samples WHERE id = ?) LIMIT 1", (content, first)).fetchone()
            pairs.append((int(first), int(other[0])))
        return len(rows), pairs

    def sample_chunks(self, chunk: int = ROW_CHUNK) -> Iterator[dict[str, Any]]:
        """Every sample row by id, ``chunk`` rows at a time: ``{"id": int64 array, "source_key": list,
        "hash": list, "label": int64 array}`` per chunk (what :meth:`samples` returns, one id range at a
        time, so a reader of 10M rows holds ``chunk`` of them as Python objects, never all).

        One indexed range query per chunk. Ids are 0..N-1 (checked when the store opened); a chunk that
        comes back short, or rows that change count under the reader, are a NaviewerError."""
        chunk = max(1, int(chunk))
        n = self.sample_count()
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            try:
                rows = self._conn().execute(
                    "SELECT id, source_key, hash, label FROM samples WHERE id >= ? AND id < ? ORDER BY id",
                    (start, stop)).fetchall()
            except sqlite3.DatabaseError as exc:
                raise NaviewerError(f"cannot read samples {start}..{stop - 1}: the database is corrupted ({exc})",
                                    self.path) from None
            if len(rows) != stop - start:
                raise NaviewerError(f"the samples table is damaged: {len(rows)} rows with ids {start}..{stop - 1}, "
                                    f"expected {stop - start} (rows were deleted or added by another tool)", self.path)
            ids, keys, hashes, labels = zip(*rows)
            del rows
            yield {
                "id": np.asarray(ids, dtype=np.int64),
                "source_key": list(keys),
                "hash": list(hashes),
                "label": np.asarray(labels, dtype=np.int64),
            }

    def samples(self) -> dict[str, Any]:
        """``{"id": int64 array, "source_key": list, "hash": list, "label": int64 array}`` by id."""
        n = self.sample_count()
        cached = self._samples_cache
        if cached is not None and len(cached["id"]) == n:
            return cached
        rows = self._conn().execute("SELECT id, source_key, hash, label FROM samples ORDER BY id").fetchall()
        if rows:
            ids, keys, hashes, labels = zip(*rows)
        else:
            ids, keys, hashes, labels = (), (), (), ()
        result = {
            "id": np.asarray(ids, dtype=np.int64),
            "source_key": list(keys),
            "hash": list(hashes),
            "label": np.asarray(labels, dtype=np.int64),
        }
        self._samples_cache = result
        return result

    def _validate_ids(self, sample_ids: "int | Iterable[int] | np.ndarray") -> np.ndarray:
        ids = np.atleast_1d(np.asarray(sample_ids if not isinstance(sample_ids, (set, frozenset)) else sorted(sample_ids)))
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise NaviewerError(f"sample ids must be integers, got {ids.dtype}")
        ids = ids.astype(np.int64).reshape(-1)
        n = self.sample_count()
        if ids.size and (ids.min() < 0 or ids.max() >= n):
            raise NaviewerError(f"sample id out of range 0..{n - 1}", self.path)
        _, first = np.unique(ids, return_index=True)
        return ids[np.sort(first)]

    # -- detection passes -------------------------------------------------------------------
    def add_detection_pass(
        self,
        method: str,
        scores: dict[str, np.ndarray],
        settings: dict[str, Any],
        run: Optional[str] = None,
        epoch: Optional[int] = None,
    ) -> int:
        """Store one detection pass (score arrays indexed by sample id); returns its id."""
        n = self.sample_count()
        arrays: dict[str, np.ndarray] = {}
        for name, values in scores.items():
            array = np.asarray(values)
            if array.ndim != 1 or len(array) != n:
                raise NaviewerError(f"detection score {name!r} has shape {array.shape}, expected ({n},)")
            kind = SCORE_KEYS.get(name)
            if kind == "f":
                array = array if np.issubdtype(array.dtype, np.floating) else array.astype(np.float64)
            elif kind is not None:
                array = array.astype(kind)
            elif not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
                raise NaviewerError(f"detection score {name!r} must be numeric, got {array.dtype}")
            arrays[str(name)] = np.ascontiguousarray(array)
        settings_json = json.dumps(settings or {}, default=json_default, sort_keys=True)
        blobs = [(name, _encode_array(array)) for name, array in arrays.items()]
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO detection_passes(method, run, epoch, created, n, settings_json) VALUES(?, ?, ?, ?, ?, ?)",
                (str(method), run, None if epoch is None else int(epoch), time.time(), n, settings_json),
            )
            pass_id = int(cursor.lastrowid)
            conn.executemany(
                "INSERT INTO pass_arrays(pass_id, name, data) VALUES(?, ?, ?)",
                [(pass_id, name, sqlite3.Binary(blob)) for name, blob in blobs],
            )
        return pass_id

    def review_pass_id(self) -> Optional[int]:
        """The pass a review opens by default (``naviewer review``, ``export``, the window): the latest, passing over
        follow-up passes (:data:`FOLLOW_UP_KEY`). Accept-all's check after the retrain saves one after DIFT's pass,
        and the window then opened that check, all its flags confirmed, with a Fine-tune tab that read "fine-tuned"
        (session 35). None without a pass; the latest when every pass is a follow-up."""
        rows = self._conn().execute("SELECT id, settings_json FROM detection_passes ORDER BY id DESC").fetchall()
        for pid, text in rows:
            if f'"{FOLLOW_UP_KEY}"' in str(text or ""):  # parsed only where the key's name appears at all
                try:
                    settings = json_loads(str(text))
                except ValueError:
                    settings = None
                if isinstance(settings, dict) and FOLLOW_UP_KEY in settings:
                    continue
            return int(pid)
        return int(rows[0][0]) if rows else None

    def latest_pass_id(self, method: Optional[str] = None) -> Optional[int]:
        if method is None:
            row = self._conn().execute("SELECT MAX(id) FROM detection_passes").fetchone()
        else:
            row = self._conn().execute("SELECT MAX(id) FROM detection_passes WHERE method=?", (method,)).fetchone()
        return None if row[0] is None else int(row[0])

    def pass_scores(self, pass_id: int) -> dict[str, np.ndarray]:
        """The score arrays of a pass, each checked: one value per sample, plain numbers (no pickles)."""
        rows = self._conn().execute("SELECT name, data FROM pass_arrays WHERE pass_id=?", (int(pass_id),)).fetchall()
        if not rows:
            info = self.pass_info(pass_id)
            if info is None:
                raise NaviewerError(f"no detection pass {pass_id}", self.path)
            if info.get("n"):  # read as "0 flagged" and an export that kept everything, rc 0 (a sweep)
                raise NaviewerError(f"detection pass {pass_id} has no score arrays: they were deleted from the "
                                    "database (a damaged workspace); detect again", self.path)
        n = self.sample_count()
        return {str(name): self._checked_array(pass_id, name, blob, n) for name, blob in rows}

    def pass_array(self, pass_id: int, name: str) -> Optional[np.ndarray]:
        """One score array of a pass (checked as :meth:`pass_scores` checks it), decoding only that one:
        e.g. the ``flagged`` column of an earlier pass costs one array, not all eight (1.7-1.9 s at 10M).
        None when the pass has no such array; a NaviewerError when there is no such pass."""
        row = self._conn().execute("SELECT data FROM pass_arrays WHERE pass_id=? AND name=?",
                                   (int(pass_id), str(name))).fetchone()
        if row is None:
            if self.pass_info(pass_id) is None:
                raise NaviewerError(f"no detection pass {pass_id}", self.path)
            return None
        return self._checked_array(pass_id, name, row[0], self.sample_count())

    def _checked_array(self, pass_id: int, name: str, blob: bytes, n: int) -> np.ndarray:
        try:
            array = _decode_array(blob)
        except (zlib.error, ValueError, TypeError, OSError, EOFError) as exc:
            raise NaviewerError(f"detection pass {pass_id}: score {name!r} is corrupted ({exc})", self.path) from None
        if array.ndim != 1 or len(array) != n:
            raise NaviewerError(f"detection pass {pass_id}: score {name!r} has shape {array.shape}, expected ({n},) "
                                "(one value per sample)", self.path)
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise NaviewerError(f"detection pass {pass_id}: score {name!r} is {array.dtype}, not numbers", self.path)
        return array

    def pass_info(self, pass_id: int) -> Optional[dict[str, Any]]:
        rows = self._pass_rows("WHERE p.id=?", (int(pass_id),))
        return rows[0] if rows else None

    def passes(self) -> list[dict[str, Any]]:
        """Every pass, oldest first: id, method, run, epoch, created, n, settings, scores (names)."""
        return self._pass_rows("", ())

    def _pass_rows(self, where: str, params: tuple) -> list[dict[str, Any]]:
        conn = self._conn()
        rows = conn.execute(
            "SELECT p.id, p.method, p.run, p.epoch, p.created, p.n, p.settings_json, "
            "(SELECT group_concat(name, ',') FROM pass_arrays a WHERE a.pass_id = p.id) "
            f"FROM detection_passes p {where} ORDER BY p.id",
            params,
        ).fetchall()
        for pid, _method, _run, epoch, _created, n, _settings, _names in rows:
            # text where a number goes (another tool's edit) was a ValueError traceback of review (a fuzz, session 34)
            for name, value in (("epoch", epoch), ("sample count", n)):
                if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                    raise NaviewerError(f"the workspace database is damaged: detection pass {pid}'s {name} is "
                                        f"{value!r}, not a whole number", self.path)
        return [
            {
                "id": pid,
                "method": method,
                "run": run,
                "epoch": epoch,
                "created": created,
                "n": n,
                "settings": self._json_object(settings, f"the settings of detection pass {pid}"),
                "scores": sorted(names.split(",")) if names else [],
            }
            for pid, method, run, epoch, created, n, settings, names in rows
        ]

    def _json_object(self, text: Any, what: str) -> dict[str, Any]:
        """A JSON object column; garbled text (another tool's edit) is a NaviewerError naming the row."""
        try:
            value = json_loads(text)
        except (TypeError, ValueError) as exc:
            raise NaviewerError(f"{what} are garbled ({exc})", self.path) from None
        if not isinstance(value, dict):
            raise NaviewerError(f"{what} are not a JSON object", self.path)
        return value

    # -- review -----------------------------------------------------------------------------
    def set_review(
        self, sample_ids: "int | Iterable[int] | np.ndarray", state: str, reviewer: str, note: str = "", *,
        skip_unchanged: bool = False, only_from: "Optional[str | dict[int, str]]" = None,
    ) -> tuple[Optional[int], np.ndarray]:
        """Record one decision for every id, as one batch (one undo step), committed at once; returns (the batch's
        id or None when nothing was written, the ids written).

        Read inside the write's own transaction: ``skip_unchanged`` leaves out the ids already in ``state``;
        ``only_from`` writes only the ids now in that state (a mapping: each id only when in its own). A window's copy of the states is up to a poll old, so
        a check against it dropped a key on a sample another writer had just changed, and a revert put back a
        decision another reviewer had made since (a review-key probe, session 25)."""
        if state not in REVIEW_STATES:
            raise NaviewerError(f"unknown review state {state!r}; expected one of {', '.join(REVIEW_STATES)}")
        if not reviewer or not str(reviewer).strip():
            raise NaviewerError("a review decision needs a reviewer name")
        from naviewer.data.names import bad_name_char, describe_char

        char = bad_name_char(str(reviewer)) or next((c for c in str(reviewer) if c in BIDI_CONTROLS), None)
        # the audit log and the HTML report show the name on one line, and as written: a bidi override let a name
        # read as another one ("eve\u202egnp.exe" shows as "eveexe.png"; a bad-input sweep, session 26)
        if char is not None:
            raise NaviewerError(f"the reviewer name {str(reviewer)!r} contains {describe_char(char)}")
        if len(str(reviewer)) > REVIEWER_MAX:  # a 1 MB name was stored with every decision
            raise NaviewerError(f"the reviewer name is {len(str(reviewer)):,} characters long; at most {REVIEWER_MAX}")
        ids = self._validate_ids(sample_ids)
        if ids.size == 0:
            return None, ids
        expected_states = [only_from] if isinstance(only_from, str) else list(dict(only_from or {}).values())
        bad = [v for v in expected_states if v not in REVIEW_STATES]
        if bad:
            raise NaviewerError(f"unknown review state {bad[0]!r}; expected one of {', '.join(REVIEW_STATES)}")
        now = time.time()
        with self._write(checkpoint=True, wait_s=self.review_wait_s) as conn:
            # "is there anything to undo?" asks NOT EXISTS(undo_of = id) a batch: without this index 1.9 s on the GUI
            # thread after each decision with 10,000 batches (a review, session 25); databases made before get it here
            conn.execute(_UNDO_INDEX_SQL)
            old = self._current_states(conn, ids)
            if only_from is not None and not isinstance(only_from, str):
                expected = {int(k): str(v) for k, v in dict(only_from).items()}
                keep = [old.get(int(i), UNREVIEWED) == expected.get(int(i)) and
                        (old.get(int(i), UNREVIEWED) != state or not skip_unchanged) for i in ids.tolist()]
                ids = ids[np.asarray(keep, dtype=bool)]
                if ids.size == 0:
                    return None, ids
            elif skip_unchanged or only_from is not None:
                keep = [(old.get(int(i), UNREVIEWED) != state or not skip_unchanged)
                        and (only_from is None or old.get(int(i), UNREVIEWED) == only_from) for i in ids.tolist()]
                ids = ids[np.asarray(keep, dtype=bool)]
                if ids.size == 0:
                    return None, ids
            batch = conn.execute(
                "INSERT INTO review_batches(reviewer, time, kind, note) VALUES(?, ?, 'set', ?)",
                (reviewer, now, note),
            ).lastrowid
            id_list = ids.tolist()
            conn.executemany(
                "INSERT INTO review(sample_id, state, reviewer, time) VALUES(?, ?, ?, ?) "
                "ON CONFLICT(sample_id) DO UPDATE SET state=excluded.state, reviewer=excluded.reviewer, "
                "time=excluded.time",
                [(sid, state, reviewer, now) for sid in id_list],
            )
            conn.executemany(
                "INSERT INTO audit(sample_id, old, new, reviewer, time, note, batch) VALUES(?, ?, ?, ?, ?, ?, ?)",
                [(sid, old.get(sid, UNREVIEWED), state, reviewer, now, note, batch) for sid in id_list],
            )
        return int(batch), ids

    def last_batch_id(self) -> int:
        """The newest review batch's id (0 when none): where a window's own decisions begin."""
        row = self._conn().execute("SELECT MAX(id) FROM review_batches").fetchone()
        return int(row[0] or 0) if row else 0

    @staticmethod
    def _current_states(conn: sqlite3.Connection, ids: "np.ndarray | Sequence[int]") -> dict[int, str]:
        states: dict[int, str] = {}
        id_list = [int(i) for i in ids]
        for chunk in _chunks(id_list):
            marks = ",".join("?" * len(chunk))
            states.update(conn.execute(f"SELECT sample_id, state FROM review WHERE sample_id IN ({marks})", chunk))
        return states

    @staticmethod
    def _undoable(conn: sqlite3.Connection, reviewer: Optional[str], mine: Optional[OwnBatches]) -> Optional[tuple]:
        """(id, reviewer) of the newest decision batch not undone, of ``reviewer`` if given and among ``mine`` if
        given (the window's own batches, and its reviewer's from before it opened): the same login name in the
        command line or a second window is another hand, whose decisions U undid (a review-key probe)."""
        query = ("SELECT b.id, b.reviewer FROM review_batches b WHERE b.kind='set' "
                 "AND NOT EXISTS (SELECT 1 FROM review_batches u WHERE u.undo_of = b.id) ")
        params: tuple = ()
        if reviewer is not None:
            query += "AND b.reviewer=? "
            params = (reviewer,)
        for row in conn.execute(query + "ORDER BY b.id DESC", params):
            if mine is None or mine.holds(int(row[0])):
                return int(row[0]), row[1]
        return None

    def has_undoable(self, reviewer: Optional[str] = None, mine: Optional[OwnBatches] = None) -> bool:
        """Whether :meth:`undo_last` has a decision batch (of ``reviewer``, among ``mine``, if given) left; a read."""
        return self._undoable(self._conn(), reviewer, mine) is not None

    def undoable_batch(self, reviewer: Optional[str] = None, mine: Optional[OwnBatches] = None) -> Optional[int]:
        """The batch :meth:`undo_last` would undo now (None: none); a read, for a button that names it."""
        found = self._undoable(self._conn(), reviewer, mine)
        return None if found is None else int(found[0])

    def batch_summary(self, batch: int) -> Optional[tuple[str, int, float]]:
        """(the state it set, how many samples, when) of decision batch ``batch``; None when there is no such batch.
        What an Undo button names before it is pressed (a newcomer's fresh window undid a batch of an earlier session
        with nothing saying which; session 28)."""
        conn = self._conn()
        when = conn.execute("SELECT time FROM review_batches WHERE id=?", (int(batch),)).fetchone()
        if when is None:
            return None
        row = conn.execute("SELECT new, COUNT(*) FROM audit WHERE batch=? GROUP BY new ORDER BY COUNT(*) DESC",
                           (int(batch),)).fetchone()
        count = conn.execute("SELECT COUNT(*) FROM audit WHERE batch=?", (int(batch),)).fetchone()
        return (str(row[0]) if row else "", int(count[0]) if count else 0, float(when[0]))

    def undo_last(self, reviewer: Optional[str] = None, mine: Optional[OwnBatches] = None) -> list[int]:
        """Revert the latest not-yet-undone decision batch (of ``reviewer`` and among ``mine`` if given).

        Only samples still in the state that batch set are reverted (a later decision by someone
        else is not clobbered). The undo is itself logged as a batch of audit rows, so the log
        stays append-only. Returns the reverted sample ids (empty if nothing to undo).
        """
        return self.undo_last_detail(reviewer, mine).reverted

    def undo_last_detail(self, reviewer: Optional[str] = None, mine: Optional[OwnBatches] = None) -> UndoResult:
        """:meth:`undo_last`, saying also which batch it took and which of its samples were decided again since
        (left as they are): an undo that reverted nothing read "Nothing of yours to undo" while it had used up a
        step (a review-key probe)."""
        with self._write(checkpoint=True, wait_s=self.review_wait_s) as conn:
            row = self._undoable(conn, reviewer, mine)
            if row is None:
                return UndoResult(None, [], [])
            batch_id, batch_reviewer = int(row[0]), row[1]
            entries = conn.execute("SELECT sample_id, old, new FROM audit WHERE batch=? ORDER BY id", (batch_id,)).fetchall()
            bad = [entry for entry in entries if entry[1] not in REVIEW_STATES or entry[2] not in REVIEW_STATES]
            if bad:
                raise NaviewerError(f"cannot undo batch {batch_id}: its audit rows hold an unknown state "
                                    f"({bad[0][1]!r} -> {bad[0][2]!r})", self.path)
            current = self._current_states(conn, [e[0] for e in entries])
            reverts = [(sid, old, new) for sid, old, new in entries if current.get(sid, UNREVIEWED) == new]
            who = reviewer if reviewer is not None else batch_reviewer
            now = time.time()
            note = f"undo of batch {batch_id}"
            undo_batch = conn.execute(
                "INSERT INTO review_batches(reviewer, time, kind, undo_of, note) VALUES(?, ?, 'undo', ?, ?)",
                (who, now, batch_id, note),
            ).lastrowid
            conn.executemany(
                "INSERT INTO review(sample_id, state, reviewer, time) VALUES(?, ?, ?, ?) "
                "ON CONFLICT(sample_id) DO UPDATE SET state=excluded.state, reviewer=excluded.reviewer, "
                "time=excluded.time",
                [(sid, old, who, now) for sid, old, _ in reverts],
            )
            conn.executemany(
                "INSERT INTO audit(sample_id, old, new, reviewer, time, note, batch) VALUES(?, ?, ?, ?, ?, ?, ?)",
                [(sid, new, old, who, now, note, undo_batch) for sid, old, new in reverts],
            )
            reverted = {int(sid) for sid, _, _ in reverts}
            skipped = sorted({int(sid) for sid, _, _ in entries} - reverted)
        return UndoResult(batch_id, [int(sid) for sid, _, _ in reverts], skipped)

    def review_states(self) -> np.ndarray:
        """Current state of every sample (``'<U10'`` array of length N, 'unreviewed' by default)."""
        states = np.full(self.sample_count(), UNREVIEWED, dtype="<U10")
        rows = self._conn().execute("SELECT sample_id, state FROM review WHERE state != ?", (UNREVIEWED,)).fetchall()
        if rows:
            ids, values = zip(*rows)
            states[np.asarray(ids, dtype=np.int64)] = values
        return states

    def review_codes(self) -> np.ndarray:
        """Current state of every sample as uint8 codes (index into ``REVIEW_STATES``): what
        :meth:`review_states` says in 1 byte a sample instead of 40 (400 MB of strings at 10M)."""
        codes = np.zeros(self.sample_count(), dtype=np.uint8)
        cursor = self._conn().execute("SELECT sample_id, state FROM review WHERE state != ?", (UNREVIEWED,))
        code_of = {name: code for code, name in enumerate(REVIEW_STATES)}
        while True:
            rows = cursor.fetchmany(ROW_CHUNK)
            if not rows:
                break
            ids, values = zip(*rows)
            codes[np.asarray(ids, dtype=np.int64)] = [code_of.get(v, 0) for v in values]
        return codes

    def review_summary(self) -> dict[str, dict[str, int]]:
        """Current decisions per reviewer: ``{reviewer: {state: count}}`` (unreviewed rows omitted)."""
        summary: dict[str, dict[str, int]] = {}
        rows = self._conn().execute(
            "SELECT reviewer, state, COUNT(*) FROM review WHERE state != ? GROUP BY reviewer, state", (UNREVIEWED,)
        )
        for reviewer, state, count in rows:
            summary.setdefault(reviewer, {})[state] = int(count)
        return summary

    def audit_log(self, limit: Optional[int] = None) -> list[dict[str, Any]]:
        """Audit rows oldest first; with ``limit``, the most recent ``limit`` rows (still oldest first)."""
        sql = "SELECT id, sample_id, old, new, reviewer, time, note, batch FROM audit"
        if limit is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY id DESC LIMIT {int(limit)})"
        rows = self._conn().execute(sql + " ORDER BY id").fetchall()
        keys = ("id", "sample_id", "old", "new", "reviewer", "time", "note", "batch")
        return [dict(zip(keys, row)) for row in rows]

    def audit_count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM audit").fetchone()[0])

    def audit_mark(self) -> int:
        """The newest audit row's id (0 with none): every decision and undo appends rows, so a changed mark means
        the review states changed, here or in another process (one rowid lookup, cheap to poll)."""
        row = self._conn().execute("SELECT MAX(id) FROM audit").fetchone()
        return int(row[0] or 0)

    # -- runs -------------------------------------------------------------------------------
    def add_run(self, name: str, kind: str, config: dict[str, Any]) -> None:
        """Register (or update the kind/config of) a run; ``created`` is kept from the first call."""
        config_json = json.dumps(config or {}, default=json_default, sort_keys=True)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runs(name, kind, created, config_json) VALUES(?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET kind=excluded.kind, config_json=excluded.config_json",
                (str(name), str(kind), time.time(), config_json),
            )

    def runs(self) -> list[dict[str, Any]]:
        rows = self._conn().execute("SELECT name, kind, created, config_json FROM runs ORDER BY created, name")
        return [
            {"name": name, "kind": kind, "created": created,
             "config": self._json_object(config, f"the settings of run {name!r}")}
            for name, kind, created, config in rows
        ]


class SampleColumn(Sequence):
    """A read-only sequence over one text column of the samples, read in windows of ``window`` ids.

    ``column[i]`` reads the window holding ``i`` (one range query) and keeps the last ``keep``
    windows; iterating streams the column window by window. Nothing is read until an item is asked for.
    """

    def __init__(self, store: WorkspaceStore, column: str, n: int, window: int = 4096, keep: int = 8) -> None:
        self.store, self.column, self.n, self.window, self.keep = store, column, int(n), int(window), int(keep)
        self._windows: dict[int, list[str]] = {}
        #: range queries made so far (a test reads it: items come in windows, not one query per item or all at once)
        self.queries = 0

    def __len__(self) -> int:
        return self.n

    def _window(self, w: int) -> list[str]:
        rows = self._windows.pop(w, None)
        if rows is None:
            self.queries += 1
            rows = self.store.sample_rows(w * self.window, min(self.n, (w + 1) * self.window), self.column)
        self._windows[w] = rows  # most recent last
        while len(self._windows) > self.keep:
            self._windows.pop(next(iter(self._windows)))
        return rows

    def __getitem__(self, index):  # noqa: ANN001, ANN204 - Sequence protocol
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.n))]
        i = int(index)
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(f"sample {index} out of range 0..{self.n - 1}")
        return self._window(i // self.window)[i % self.window]

    def __iter__(self) -> Iterator[str]:
        for w in range(0, (self.n + self.window - 1) // self.window):
            yield from self.store.sample_rows(w * self.window, min(self.n, (w + 1) * self.window), self.column)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sqlite_reason(exc: sqlite3.Error) -> str:
    """SQLite's error in the words the rest of naviewer uses."""
    text = str(exc)
    if "disk is full" in text:
        return "the disk is full"
    if "readonly" in text or "read-only" in text:
        return "the file system or the database is read-only"
    if "locked" in text or "busy" in text:
        return "another process kept the database locked"
    return text


def _split_sql(script: str) -> list[str]:
    """Split the schema script into statements (triggers contain ';' inside BEGIN..END)."""
    statements, current = [], []
    for line in script.strip().splitlines():
        current.append(line)
        text = "\n".join(current).strip()
        if text.endswith(";") and (not text.upper().startswith("CREATE TRIGGER") or text.upper().endswith("END;")):
            statements.append(text)
            current = []
    return statements
