"""The web app's state in SQLite (standard library): sessions, jobs and images, in transactions.

Every change is one transaction (``with self._tx()``), so a crash leaves either the old or the new
state. An image moves ``queued → processing → done | failed``; the worker claims the oldest queued
image in one transaction (:meth:`Store.claim_next`), and :meth:`Store.requeue_unfinished` puts
images a stopped server left in ``processing`` back in the queue at start-up (their outputs are
written atomically, so nothing partial is taken as finished).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ImageRow", "JobRow", "Store", "new_id"]

STATES = ("queued", "processing", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    session TEXT NOT NULL REFERENCES sessions(id),
    created REAL NOT NULL,
    model TEXT NOT NULL,
    mode TEXT NOT NULL,
    diameter REAL,
    settings TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS images (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    job TEXT NOT NULL REFERENCES jobs(id),
    session TEXT NOT NULL REFERENCES sessions(id),
    stem TEXT NOT NULL,
    name TEXT NOT NULL,
    filename TEXT NOT NULL,
    condition TEXT NOT NULL,
    size INTEGER NOT NULL,
    state TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    error TEXT,
    n_objects INTEGER,
    n_planes INTEGER,
    seconds REAL,
    version INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    UNIQUE (session, stem)
);
CREATE INDEX IF NOT EXISTS images_state ON images(state, seq);
CREATE INDEX IF NOT EXISTS images_session ON images(session, seq);
"""


def new_id(nbytes: int = 16) -> str:
    """A random URL-safe id (unguessable: session ids are also their access keys)."""
    return secrets.token_urlsafe(nbytes)


@dataclass(frozen=True)
class JobRow:
    """A job: images uploaded together with one model, mode and object size."""

    id: str
    session: str
    created: float
    model: str
    mode: str
    diameter: float | None
    settings: dict


@dataclass(frozen=True)
class ImageRow:
    """One image of a job and where it stands."""

    id: str
    job: str
    session: str
    stem: str
    name: str
    filename: str
    condition: str
    size: int
    state: str
    progress: float
    error: str | None
    n_objects: int | None
    n_planes: int | None
    seconds: float | None
    version: int
    created: float
    started: float | None
    finished: float | None

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values (the session id left out)."""
        keys = ("id", "job", "stem", "name", "condition", "size", "state", "progress", "error",
                "n_objects", "n_planes", "seconds", "version", "created", "started", "finished")
        return {k: getattr(self, k) for k in keys}


_IMAGE_COLS = ", ".join(ImageRow.__dataclass_fields__)


class Store:
    """The database of one server (thread-safe: one connection per call, writes serialised).

    Parameters
    ----------
    path : Path
        SQLite file (created with its tables).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT, rolled back on any error)."""
        with self._write_lock:
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            finally:
                conn.close()

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        conn = self._connect()
        try:
            return conn.execute(sql, tuple(args)).fetchall()
        finally:
            conn.close()

    # sessions ---------------------------------------------------------------------------------

    def create_session(self) -> str:
        """A new session; returns its id."""
        sid = new_id()
        with self._tx() as conn:
            conn.execute("INSERT INTO sessions (id, created) VALUES (?, ?)", (sid, time.time()))
        return sid

    def has_session(self, sid: str) -> bool:
        return bool(self._read("SELECT 1 FROM sessions WHERE id = ?", (sid,)))

    # jobs and images --------------------------------------------------------------------------

    def taken_stems(self, sid: str) -> list[str]:
        return [r[0] for r in self._read("SELECT stem FROM images WHERE session = ?", (sid,))]

    def create_job(self, sid: str, *, model: str, mode: str, diameter: float | None,
                   settings: dict, images: Sequence[dict]) -> tuple[JobRow, list[ImageRow]]:
        """A job with its images (each a dict of stem, name, filename, condition, size), queued.

        Raises
        ------
        sqlite3.IntegrityError
            When a stem is already taken in the session (nothing is added).
        """
        jid = new_id(12)
        now = time.time()
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO jobs (id, session, created, model, mode, diameter, settings) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (jid, sid, now, model, mode, diameter, json.dumps(settings)),
            )
            for im in images:
                conn.execute(
                    "INSERT INTO images (id, job, session, stem, name, filename, condition, size, "
                    "state, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?)",
                    (new_id(12), jid, sid, im["stem"], im["name"], im["filename"],
                     im["condition"], int(im["size"]), now),
                )
        return self.job(jid), self.images(sid, job=jid)

    def job(self, jid: str) -> JobRow | None:
        rows = self._read("SELECT id, session, created, model, mode, diameter, settings FROM jobs "
                          "WHERE id = ?", (jid,))
        if not rows:
            return None
        r = rows[0]
        return JobRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6] or "{}"))

    def jobs(self, sid: str) -> list[JobRow]:
        rows = self._read("SELECT id FROM jobs WHERE session = ? ORDER BY created", (sid,))
        return [j for (jid,) in rows if (j := self.job(jid)) is not None]

    def images(self, sid: str, *, job: str | None = None) -> list[ImageRow]:
        """The session's images in upload order (one job's only when ``job`` is given)."""
        if job is None:
            rows = self._read(f"SELECT {_IMAGE_COLS} FROM images WHERE session = ? ORDER BY seq",
                              (sid,))
        else:
            rows = self._read(f"SELECT {_IMAGE_COLS} FROM images WHERE session = ? AND job = ? "
                              "ORDER BY seq", (sid, job))
        return [ImageRow(*r) for r in rows]

    def image(self, sid: str, iid: str) -> ImageRow | None:
        """Image ``iid`` of session ``sid`` (None when it belongs to another session)."""
        rows = self._read(f"SELECT {_IMAGE_COLS} FROM images WHERE session = ? AND id = ?",
                          (sid, iid))
        return ImageRow(*rows[0]) if rows else None

    def counts(self) -> dict[str, int]:
        """Images per state over all sessions."""
        out = dict.fromkeys(STATES, 0)
        out.update(dict(self._read("SELECT state, COUNT(*) FROM images GROUP BY state")))
        return out

    # the worker -------------------------------------------------------------------------------

    def claim_next(self) -> ImageRow | None:
        """Mark the oldest queued image ``processing`` and return it (None: queue empty)."""
        with self._tx() as conn:
            row = conn.execute("SELECT id, session FROM images WHERE state = 'queued' "
                               "ORDER BY seq LIMIT 1").fetchone()
            if row is None:
                return None
            conn.execute("UPDATE images SET state = 'processing', progress = 0, error = NULL, "
                         "started = ? WHERE id = ?", (time.time(), row[0]))
        return self.image(row[1], row[0])

    def set_progress(self, iid: str, progress: float) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE images SET progress = ? WHERE id = ? AND state = 'processing'",
                         (float(progress), iid))

    def finish(self, iid: str, *, n_objects: int, n_planes: int, seconds: float) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE images SET state = 'done', progress = 1, error = NULL, "
                         "n_objects = ?, n_planes = ?, seconds = ?, finished = ?, "
                         "version = version + 1 WHERE id = ?",
                         (int(n_objects), int(n_planes), float(seconds), time.time(), iid))

    def fail(self, iid: str, reason: str) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE images SET state = 'failed', error = ?, finished = ? "
                         "WHERE id = ?", (reason[:2000], time.time(), iid))

    def edited(self, iid: str, n_objects: int) -> int:
        """Record an edit (new object count); returns the image's new version."""
        with self._tx() as conn:
            conn.execute("UPDATE images SET n_objects = ?, version = version + 1 WHERE id = ?",
                         (int(n_objects), iid))
            return int(conn.execute("SELECT version FROM images WHERE id = ?",
                                    (iid,)).fetchone()[0])

    def requeue_unfinished(self) -> int:
        """Put images left ``processing`` (a stopped server) back in the queue; returns how many."""
        with self._tx() as conn:
            cur = conn.execute("UPDATE images SET state = 'queued', progress = 0, started = NULL "
                               "WHERE state = 'processing'")
            return int(cur.rowcount)
