"""The upload ledger: one committed SQLite row per successful upload, written the moment the host answers.

It makes re-runs cheap and safe (a file whose content already went to the same destination is not sent
again), survives ``kill -9`` at any moment (WAL mode, one transaction per row), and may be shared by
several picbeam processes at once (SQLite's locking, with a busy timeout).
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import json
import os
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from .config import Config, data_dir
from .errors import ConfigError, LedgerError
from .items import UploadResult, absolute

SCHEMA_VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    path TEXT NOT NULL,
    host TEXT NOT NULL,
    destination TEXT NOT NULL,
    variant TEXT NOT NULL DEFAULT '',
    endpoint TEXT,
    url TEXT NOT NULL,
    delete_url TEXT,
    thumbnail_url TEXT,
    answer TEXT,
    created REAL NOT NULL,
    deleted REAL
);
CREATE INDEX IF NOT EXISTS uploads_by_content ON uploads (sha256, host, destination, variant);
CREATE INDEX IF NOT EXISTS uploads_by_url ON uploads (url);
CREATE TABLE IF NOT EXISTS claims (
    sha256 TEXT NOT NULL,
    host TEXT NOT NULL,
    destination TEXT NOT NULL,
    variant TEXT NOT NULL DEFAULT '',
    machine TEXT NOT NULL,
    pid INTEGER NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (sha256, host, destination, variant)
);
"""
# How long a claim holds when its owner cannot be checked (another machine, or a live process that hangs),
# beyond the time the file needs on a slow link.
CLAIM_LEASE = 600.0
_NEWEST_LIVE = (
    "SELECT * FROM uploads WHERE sha256 = ? AND host = ? AND destination = ? AND variant = ? "
    "AND deleted IS NULL ORDER BY id DESC LIMIT 1"
)
_DROP_OWN_CLAIM = (
    "DELETE FROM claims WHERE sha256 = ? AND host = ? AND destination = ? AND variant = ? AND machine = ? AND pid = ?"
)
BUSY = "busy"  # what claim() answers for content another live process is uploading now
TAKEN = "taken"  # what claim_size() answers when an upload of that size is recorded
_SIZE_LIVE = (
    "SELECT 1 FROM uploads WHERE size = ? AND host = ? AND destination = ? AND variant = ? AND deleted IS NULL LIMIT 1"
)


def size_key(size: int) -> str:
    """The claim key of a file known by its size alone (its hash is computed while it is sent)."""
    return f"size:{size}"


def is_size_key(key: str) -> bool:
    return key.startswith("size:")


COLUMNS = (
    "id",
    "sha256",
    "size",
    "path",
    "host",
    "destination",
    "variant",
    "endpoint",
    "url",
    "delete_url",
    "thumbnail_url",
    "answer",
    "created",
    "deleted",
)


def ledger_path(option: str | os.PathLike[str] | None = None, config: Config | None = None) -> Path:
    """``--ledger PATH``, then ``PICBEAM_LEDGER``, then ``ledger`` in config.toml, then the data folder."""
    chosen = option or os.environ.get("PICBEAM_LEDGER") or (config.get("ledger") if config else None)
    return Path(chosen).expanduser() if chosen else data_dir() / "ledger.sqlite3"


BUSY_TIMEOUT_MS = 30000
# Set by Ledger.without_waiting(), in the calling thread's context only.
_AT_ONCE: contextvars.ContextVar[bool] = contextvars.ContextVar("picbeam_ledger_at_once", default=False)


class WouldWait(Exception):
    """A write inside :meth:`Ledger.without_waiting` found the ledger busy (another thread of this process
    writing, or another process holding SQLite's write lock): nothing was written; write it where waiting
    does no harm."""


class Ledger:
    """The record of every upload. Safe to call from worker threads (one connection, one lock)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._checkpoints_elsewhere = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._connect()
            self._db.execute("PRAGMA journal_mode=WAL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ConfigError(
                    f"ledger {self.path} was written by a newer picbeam (schema {version}); upgrade picbeam"
                )
            if version < SCHEMA_VERSION:
                with self._db:
                    self._db.executescript(f"BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
            self._db.execute("SELECT count(*) FROM uploads WHERE id < 0").fetchone()
            # Dedupe look-ups run in loading threads while the run records uploads: with WAL, a second
            # connection reads without waiting for the writer's lock.
            self._reader = self._connect()
        except sqlite3.DatabaseError as exc:
            raise ConfigError(
                f"ledger {self.path} cannot be used ({exc}); it was left untouched: move it aside, "
                "or choose another with --ledger PATH"
            ) from None
        except OSError as exc:
            raise ConfigError(f"ledger {self.path} cannot be created: {exc.strerror or exc}") from None

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level=None
        )
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    def close(self) -> None:
        with self._lock, self._read_lock:
            self._db.close()
            self._reader.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the engine's side ----------------------------------------------------------------------------
    def find(self, sha256: str, host: str, destination: str, variant: str = "") -> UploadResult | None:
        """The newest live upload of this content to this destination, as a reused result."""
        rows = self._all(
            _NEWEST_LIVE,
            (sha256, host, destination, variant),
            reader=True,
        )
        return _reused(rows[0]) if rows else None

    def claim(
        self, sha256s: list[str], host: str, destination: str, variant: str = "", largest: int = 0
    ) -> dict[str, UploadResult | str | None]:
        """Claim content for this process to upload, so that a second picbeam over the same ledger does not
        send it too. For each digest: the recorded upload when there is one (reuse it), :data:`BUSY` while
        another live process holds it (wait, then ask again), or None: this process holds it now, until
        :meth:`record_many` records it or :meth:`release` lets it go. A dead owner's claim is void, and
        any claim lapses after a lease long enough to send ``largest`` bytes on a slow link."""
        answers: dict[str, UploadResult | str | None] = {}
        now = time.time()
        lease = CLAIM_LEASE + largest / (256 * 1024)
        with self._transaction():
            for sha256 in dict.fromkeys(sha256s):
                key = (sha256, host, destination, variant)
                row = self._fetch(_NEWEST_LIVE, key)
                answers[sha256] = _reused(row) if row is not None else self._take(key, now, lease)
        return answers

    def claim_size(self, size: int, host: str, destination: str, variant: str = "") -> str | None:
        """Claim "a file of ``size`` bytes" for a file whose hash is not known yet (a big file hashed while
        it is sent): :data:`TAKEN` when a live upload of that size is recorded (it may be the same content:
        hash the file first, then :meth:`claim` it), :data:`BUSY` while another live process holds a file
        of that size, or None: this process holds it until :meth:`release` (``size_key(size)``)."""
        now = time.time()
        with self._transaction():
            if self._fetch(_SIZE_LIVE, (size, host, destination, variant)) is not None:
                return TAKEN
            answer = self._take((size_key(size), host, destination, variant), now, CLAIM_LEASE + size / (256 * 1024))
        return answer

    def _take(self, key: tuple[str, str, str, str], now: float, lease: float) -> str | None:
        """Inside a transaction: claim ``key`` for this process, or :data:`BUSY` while a live one holds it."""
        holder = self._fetch(
            "SELECT machine, pid, expires FROM claims "
            "WHERE sha256 = ? AND host = ? AND destination = ? AND variant = ?",
            key,
        )
        if holder is not None and _holds(holder, now):
            return BUSY
        self._db.execute(
            "INSERT OR REPLACE INTO claims (sha256, host, destination, variant, machine, pid, expires)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (*key, _MACHINE, os.getpid(), now + lease),
        )
        return None

    def release(self, sha256s: list[str], host: str, destination: str, variant: str = "") -> None:
        """Let go of this process's claims on content it did not upload (it failed, or was not started)."""
        # A claim left behind (the ledger cannot be written) is void once this process has ended.
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.executemany(
                _DROP_OWN_CLAIM, [(sha256, host, destination, variant, _MACHINE, os.getpid()) for sha256 in sha256s]
            )

    def _fetch(self, sql: str, args: tuple[Any, ...]) -> dict[str, Any] | None:
        cursor = self._db.execute(sql, args)
        row = cursor.fetchone()
        return None if row is None else dict(zip([d[0] for d in cursor.description], row, strict=True))

    def record(
        self, result: UploadResult, destination: str, redact: Callable[[str], str] = str, variant: str = ""
    ) -> int:
        """Commit one successful upload; returns its id. ``redact`` scrubs secrets from the stored answer."""
        return self.record_many([result], destination, redact, variant)[0]

    def record_many(
        self, results: list[UploadResult], destination: str, redact: Callable[[str], str] = str, variant: str = ""
    ) -> list[int]:
        """Commit several successful uploads in one transaction (each gets ``extra["id"]``)."""
        ids = []
        with self._transaction():
            for result in results:
                answer = None
                if result.answer is not None:
                    answer = redact(json.dumps(result.answer, ensure_ascii=False, default=str))
                cursor = self._db.execute(
                    "INSERT INTO uploads (sha256, size, path, host, destination, variant, endpoint, url,"
                    " delete_url, thumbnail_url, answer, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        result.sha256,
                        result.bytes,
                        absolute(result.path),
                        result.host,
                        destination,
                        variant,
                        result.endpoint,
                        result.url,
                        result.delete_url,
                        result.thumbnail_url,
                        answer,
                        time.time(),
                    ),
                )
                result.extra["id"] = int(cursor.lastrowid or 0)
                ids.append(result.extra["id"])
                self._db.execute(
                    _DROP_OWN_CLAIM,
                    (result.sha256, result.host, destination, variant, _MACHINE, os.getpid()),
                )
        return ids

    @contextlib.contextmanager
    def without_waiting(self) -> Iterator[None]:
        """Writes made inside (in this thread) raise :class:`WouldWait` instead of waiting for the ledger,
        and never checkpoint its write-ahead log: an event loop may write here, and leaves the waiting and
        the checkpoints (:meth:`checkpoint`) to a thread. Once used, this connection no longer
        checkpoints by itself."""
        token = _AT_ONCE.set(True)
        try:
            yield
        finally:
            _AT_ONCE.reset(token)

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the database, as SQLite's automatic checkpoint does (passive: other
        processes' writes go on). It holds this process's writes meanwhile: the next one then starts the log
        over, which a write made during the checkpoint would prevent (and the log would only grow)."""
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction; a failure to write is a LedgerError naming the ledger and SQLite's own
        reason (not the error of the rollback that follows it)."""
        at_once = _AT_ONCE.get()
        if not self._lock.acquire(blocking=not at_once):
            raise WouldWait
        try:
            try:
                self._begin(at_once)
                yield
                self._db.execute("COMMIT")
            except BaseException as exc:
                self._abandon()
                if isinstance(exc, sqlite3.Error):
                    raise LedgerError(f"ledger {self.path}: {exc}") from None
                raise
        finally:
            self._lock.release()

    def _begin(self, at_once: bool) -> None:
        if not at_once:
            self._db.execute("BEGIN IMMEDIATE")
            return
        if not self._checkpoints_elsewhere:
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpoints_elsewhere = True
        self._db.execute("PRAGMA busy_timeout=0")
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if (exc.sqlite_errorcode & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):  # and extended codes
                raise WouldWait from None
            raise
        finally:
            self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    def _abandon(self) -> None:
        """Roll back what is left of a failed transaction. SQLite has already rolled back after a full disk
        or an I/O error, and a second rollback's error would hide the one that matters."""
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    # -- history and delete ---------------------------------------------------------------------------
    def get(self, record_id: int) -> dict[str, Any] | None:
        return self._one("SELECT * FROM uploads WHERE id = ?", (record_id,))

    def by_url(self, url: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM uploads WHERE url = ? OR delete_url = ? ORDER BY id DESC LIMIT 1", (url, url))

    def copies(self, sha256: str) -> list[dict[str, Any]]:
        """Every live upload of this content, on any host, newest first (mirrors of one file)."""
        return self._all("SELECT * FROM uploads WHERE sha256 = ? AND deleted IS NULL ORDER BY id DESC", (sha256,))

    def last(self, count: int, host: str | None = None) -> list[dict[str, Any]]:
        """The newest ``count`` live uploads (optionally to one host), newest first."""
        where, args = "deleted IS NULL", []
        if host:
            where += " AND host = ?"
            args.append(host)
        return self._all(f"SELECT * FROM uploads WHERE {where} ORDER BY id DESC LIMIT ?", (*args, count))

    def history(
        self, host: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Uploads, oldest first (the newest ``limit`` when a limit is given)."""
        clauses, args = [], []
        if host:
            clauses.append("host = ?")
            args.append(host)
        if since:
            clauses.append("created >= ?")
            args.append(since.timestamp())
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._all(f"SELECT * FROM uploads {where} ORDER BY id DESC LIMIT ?", (*args, limit or -1))
        return rows[::-1]

    def page(
        self,
        *,
        search: str = "",
        host: str | None = None,
        since: float | None = None,
        until: float | None = None,
        offset: int = 0,
        limit: int = 60,
    ) -> tuple[int, list[dict[str, Any]]]:
        """One page of uploads, newest first, whose path contains ``search`` (any case), to ``host``, made
        in [since, until) (unix times); and how many match in all. For the web app's gallery."""
        clauses, args = [], []
        if search:
            clauses.append(r"path LIKE ? ESCAPE '\'")
            args.append("%" + re.sub(r"([\\%_])", r"\\\1", search) + "%")
        if host:
            clauses.append("host = ?")
            args.append(host)
        if since is not None:
            clauses.append("created >= ?")
            args.append(since)
        if until is not None:
            clauses.append("created < ?")
            args.append(until)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        total = self._one(f"SELECT count(*) AS n FROM uploads {where}", tuple(args), reader=True)
        rows = self._all(f"SELECT * FROM uploads {where} ORDER BY id DESC LIMIT ? OFFSET ?",
                         (*args, limit, offset), reader=True)  # fmt: skip
        return int(total["n"]) if total else 0, rows

    def mark_deleted(self, record_id: int) -> None:
        with self._lock:
            self._db.execute("UPDATE uploads SET deleted = ? WHERE id = ?", (time.time(), record_id))

    def count(self) -> int:
        return int(self._one("SELECT count(*) AS n FROM uploads", ())["n"])  # type: ignore[index]

    def _one(self, sql: str, args: tuple[Any, ...], reader: bool = False) -> dict[str, Any] | None:
        rows = self._all(sql, args, reader)
        return rows[0] if rows else None

    def _all(self, sql: str, args: tuple[Any, ...], reader: bool = False) -> list[dict[str, Any]]:
        try:
            with self._read_lock if reader else self._lock:
                cursor = (self._reader if reader else self._db).execute(sql, args)
                names = [d[0] for d in cursor.description]
                return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"ledger {self.path} cannot be read ({exc}); it was left untouched") from None


def public_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ledger row as `history --json` and exports show it (times as ISO 8601, answer as data)."""
    out = dict(row)
    out["answer"] = _loads(row.get("answer"))
    out["created"] = _iso(row.get("created"))
    out["deleted"] = _iso(row.get("deleted"))
    return out


def export(rows: list[dict[str, Any]], kind: str) -> Iterator[str]:
    """Rows as CSV (with a header) or as JSON Lines."""
    if kind == "json":
        for row in rows:
            yield json.dumps(public_record(row), ensure_ascii=False)
        return
    import csv  # only for an export: not on every run's path

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        record = public_record(row)
        record["answer"] = row.get("answer") or ""
        writer.writerow(["" if record.get(c) is None else record.get(c) for c in COLUMNS])
    yield buffer.getvalue().rstrip("\n")


_MACHINE = socket.gethostname()


def _reused(row: Mapping[str, Any]) -> UploadResult:
    """A recorded upload as the result of a file that is not sent again."""
    return UploadResult(
        path=row["path"],
        host=row["host"],
        url=row["url"],
        delete_url=row["delete_url"],
        thumbnail_url=row["thumbnail_url"],
        bytes=row["size"],
        sha256=row["sha256"],
        reused=True,
        endpoint=row["endpoint"],
        answer=_loads(row["answer"]),
        extra={"id": row["id"]},
    )


def _holds(claim: Mapping[str, Any], now: float) -> bool:
    """Whether a claim still stands: its lease runs, and its owner, when it is on this machine, lives."""
    if claim["expires"] <= now:
        return False
    if claim["machine"] != _MACHINE:
        return True
    try:
        os.kill(claim["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        pass
    return True


def _loads(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def _iso(stamp: float | None) -> str | None:
    return datetime.fromtimestamp(stamp).astimezone().isoformat(timespec="seconds") if stamp else None
