"""The on-disk answer cache: every generated sample, keyed by request and sample index, kept across runs.

SQLite in WAL mode: each commit is in the log before the call returns, so a process killed at any instant (SIGKILL
included) loses at most the answers not yet committed. ``synchronous=NORMAL`` skips the fsync per commit, which
guards against power loss, not process death. Several processes may share one file (``busy_timeout``): the first
writer of a ``(key, index)`` wins and :meth:`ResponseCache.store_many` returns the winners. The ``requests`` table
holds each key's JSON payload, so an entry can be inspected without re-deriving it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from vlm_capcurriculum.data.client import Sample

SCHEMA_VERSION = 1
_BUSY_TIMEOUT_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (
    key TEXT NOT NULL,
    idx INTEGER NOT NULL,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    finish_reason TEXT,
    created REAL NOT NULL,
    PRIMARY KEY (key, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS requests (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    payload TEXT NOT NULL
) WITHOUT ROWID;
"""
_INSERT_SAMPLE = (
    "INSERT OR IGNORE INTO samples (key, idx, model, text, finish_reason, created, completion_tokens) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


class CacheError(RuntimeError):
    """The cache file cannot be used (another tool's database, a newer schema)."""


class ResponseCache:
    """A sample store keyed by :func:`~vlm_capcurriculum.data.request.request_key` and sample index."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit, one transaction per statement.
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=_BUSY_TIMEOUT_S)
        try:
            self._set_up()
        except sqlite3.DatabaseError as err:
            self._db.close()
            raise CacheError(f"{self.path}: not a usable answer cache ({err})") from err

    def _set_up(self) -> None:
        # Switching a new file to WAL needs an exclusive lock and SQLite reports SQLITE_BUSY at once, without its
        # busy handler, when another process opens the same new file at that instant: retry for as long as the
        # busy timeout would have waited.
        deadline = time.monotonic() + _BUSY_TIMEOUT_S
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(_SCHEMA)
                row = self._db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
                if row is None:
                    self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                elif int(row[0]) != SCHEMA_VERSION:
                    raise CacheError(f"{self.path}: cache schema {row[0]}, this version reads {SCHEMA_VERSION}")
                columns = {row[1] for row in self._db.execute("PRAGMA table_info(samples)")}
                if "completion_tokens" not in columns:  # a file from before the column
                    with contextlib.suppress(sqlite3.OperationalError):  # another process added it just now
                        self._db.execute("ALTER TABLE samples ADD COLUMN completion_tokens INTEGER")
                return
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def get(self, key: str, n: int) -> dict[int, Sample]:
        """The cached samples ``0..n-1`` of ``key`` (possibly fewer, possibly none)."""
        rows = self._db.execute(
            "SELECT idx, text, finish_reason, completion_tokens FROM samples WHERE key = ? AND idx < ?", (key, n)
        ).fetchall()
        return {idx: Sample(text, finish_reason, tokens) for idx, text, finish_reason, tokens in rows}

    def store_many(
        self, entries: Iterable[tuple[str, str, str, Sequence[tuple[int, Sample]]]]
    ) -> dict[str, dict[int, Sample]]:
        """Store ``(key, model, key blob, [(index, sample), ...])`` entries in one transaction. Returns, per key, the
        samples the cache then holds for those indexes: the given ones, or those another process stored first."""
        now = time.time()
        stored: dict[str, dict[int, Sample]] = {}
        self._db.execute("BEGIN IMMEDIATE")  # the write lock first, so the rows read back are the committed winners
        with self._db:  # commits, or rolls back on any error
            for key, model, blob, samples in entries:
                self._db.execute("INSERT OR IGNORE INTO requests VALUES (?, ?, ?)", (key, model, blob))
                self._db.executemany(
                    _INSERT_SAMPLE,
                    [(key, index, model, s.text, s.finish_reason, now, s.completion_tokens) for index, s in samples],
                )
                indexes = [index for index, _ in samples]
                rows = self._db.execute(
                    "SELECT idx, text, finish_reason, completion_tokens FROM samples "
                    f"WHERE key = ? AND idx IN ({','.join('?' * len(indexes))})",
                    (key, *indexes),
                ).fetchall()
                stored[key] = {idx: Sample(text, finish_reason, tokens) for idx, text, finish_reason, tokens in rows}
        return stored

    def close(self) -> None:
        self._db.close()
