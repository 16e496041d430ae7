"""The batch: a fixed pool of workers over a bounded queue, one aiohttp session, results in input order.

Memory stays flat however many files a run has: discovery feeds the queue from a thread and blocks
while the window of unfinished files is full; results leave in input order as soon as they can.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import itertools
import json
import os
import random
import stat
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from . import __version__
from .errors import LedgerError, UploadError
from .hosts import Host
from .inputs import (
    DOWNLOAD_MAX_BYTES,
    DOWNLOAD_TIMEOUT,
    SNIFF_BYTES,
    Discovery,
    Found,
    as_input,
    guess_type,
    sniff_image,
)
from .items import IN_MEMORY_LIMIT, ExactFile, UploadItem, UploadResult, escape_controls, printable, url_problem
from .redaction import Redactor

if TYPE_CHECKING:
    from .config import Config
    from .loader import Plugins
    from .processing import Processing

USER_AGENT = f"picbeam/{__version__} (+https://pypi.org/project/picbeam/)"
HASH_CHUNK = 1024 * 1024
DISCOVERY_CHUNK = 64
# Files up to this size are read while discovering (bounding memory to a chunk plus the queue of these).
PRELOAD_LIMIT = 256 * 1024
NOT_LOADED: Any = object()
Loaded = Any  # an UploadItem, a failed UploadResult, None for a file passed over, or NOT_LOADED
Job = tuple[int, Found, Loaded]


class Ledger(Protocol):
    """What the engine needs from the upload record (see :mod:`picbeam.ledger`)."""

    def find(self, sha256: str, host: str, destination: str, variant: str = "") -> UploadResult | None: ...

    def record_many(
        self, results: list[UploadResult], destination: str, redact: Callable[[str], str], variant: str = ""
    ) -> list[int]: ...

    def mark_deleted(self, record_id: int) -> None: ...

    def claim(
        self, sha256s: list[str], host: str, destination: str, variant: str = "", largest: int = 0
    ) -> dict[str, UploadResult | str | None]: ...

    def release(self, sha256s: list[str], host: str, destination: str, variant: str = "") -> None: ...


@dataclass
class Summary:
    uploaded: int = 0
    reused: int = 0
    failed: int = 0
    skipped: int = 0  # non-images found in folders
    not_started: int = 0
    bytes: int = 0
    retries: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    # Why the ledger could not record uploads (the run then started nothing new), in one line.
    ledger_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.not_started == 0 and not self.interrupted and self.ledger_error is None


class GroupCommit:
    """Records successful uploads in the ledger, one transaction for all that finish in the same turn of
    the event loop (a commit costs more than an insert). Each caller resumes once its row is committed,
    so a result is never printed before it is recorded.

    It runs on the loop, not in a thread: a few inserts take less time than a thread hop.
    """

    def __init__(self, ledger: Ledger, destination: str, redact: Callable[[str], str], variant: str) -> None:
        self.ledger, self.destination, self.redact, self.variant = ledger, destination, redact, variant
        self._pending: list[UploadResult] = []
        self._committed: asyncio.Future[None] | None = None

    async def record(self, result: UploadResult) -> int:
        if not self._pending:
            self._committed = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(self._commit)
        self._pending.append(result)
        assert self._committed is not None
        await asyncio.shield(self._committed)
        return int(result.extra["id"])

    def _commit(self) -> None:
        results, self._pending = self._pending, []
        committed, self._committed = self._committed, None
        assert committed is not None
        try:
            self.ledger.record_many(results, self.destination, self.redact, self.variant)
        except Exception as exc:
            committed.set_exception(exc)
        else:
            committed.set_result(None)


class HostGate:
    """Per-host limits shared by every worker: a concurrency cap, a request rate, and shared backoff.

    When the host throttles one request (429), every worker waits: the pause is the host's, not the file's.
    """

    def __init__(self, host: Host, jobs: int) -> None:
        self._slots = asyncio.Semaphore(min(jobs, host.concurrency or jobs))
        self._interval = 1.0 / host.rate_limit if host.rate_limit else 0.0
        self._next_start = 0.0
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> None:
        await self._slots.acquire()
        try:
            async with self._lock:
                now = time.monotonic()
                start = max(now, self._next_start, self._paused_until)
                self._next_start = start + self._interval
            if start > now:
                await asyncio.sleep(start - now)
        except BaseException:
            self._slots.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._slots.release()

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)


class FinishGate:
    """Lets a long-lived batch call the host's ``finish`` between uploads, never during one: a finish
    waits for the uploads in progress, and uploads that come in meanwhile wait for it (so it cannot
    starve). Finishes that queue up run one after another; the host's finish is cheap when nothing is left."""

    def __init__(self) -> None:
        self._changed = asyncio.Condition()
        self._uploading = 0
        self._finishes = 0

    @contextlib.asynccontextmanager
    async def uploading(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: self._finishes == 0)
            self._uploading += 1
        try:
            yield
        finally:
            async with self._changed:
                self._uploading -= 1
                self._changed.notify_all()

    async def finish(self, finish: Callable[[], Awaitable[None]]) -> None:
        async with self._changed:
            self._finishes += 1
            try:
                await self._changed.wait_for(lambda: self._uploading == 0)
                await finish()
            finally:
                self._finishes -= 1
                self._changed.notify_all()


@dataclass
class Batch:
    """One run: uploads what discovery finds to one host and reports each result in input order."""

    host: Host
    jobs: int = 4
    retries: int = 3
    retry_wait: float = 0.5
    dry_run: bool = False
    force: bool = False
    plugins: Plugins | None = None
    ledger: Ledger | None = None
    # Processors run on each file before it is sent (see picbeam.processing); open_batch sets it up.
    processing: Processing | None = None
    # Limits for inputs that are addresses (`picbeam upload https://...`): size in bytes, time in seconds.
    download_max_bytes: int = DOWNLOAD_MAX_BYTES
    download_timeout: float = DOWNLOAD_TIMEOUT
    emit: Callable[[UploadResult], None] = lambda result: None
    on_progress: Callable[[str, int], None] = lambda event, amount: None
    summary: Summary = field(default_factory=Summary)

    def __post_init__(self) -> None:
        self.jobs = max(1, self.jobs)
        self.redact = Redactor(self.host.secret_values())
        # The ledger's key and record of where uploads went, without a password or key written in the URL.
        self.destination = self.redact(self.host.destination)
        self._window = max(64, self.jobs * 8)
        self._pending: dict[int, UploadResult | None] = {}
        self._in_flight: dict[str, asyncio.Future[UploadResult]] = {}
        self._next_index = 0
        self._stopping = False
        # Content this process claimed in the ledger (it uploads it), and content another process holds.
        self._claimed: set[str] = set()
        self._busy: set[str] = set()
        self._recorded: list[int] = []  # ledger ids of this run's uploads, withdrawn if the host's finish fails
        self._downloads: Path | None = None  # the folder of files downloaded from addresses, made on first use
        if self.processing is None and self.plugins is not None:
            from .processing import Processing, collect_steps

            self.processing = Processing(steps=collect_steps(self.plugins))
        # The ledger's dedupe key is the original content plus what processing does to it.
        self.variant = self.processing.signature if self.processing is not None else ""
        self._writer = None
        if self.ledger is not None:
            self._writer = GroupCommit(self.ledger, self.destination, self.redact, self.variant)
        # One line per problem that is the run's rather than a file's (a plugin that failed), for stderr.
        self.warnings: list[str] = []
        self._failed_plugins: set[str] = set()
        self._warn_lock = threading.Lock()
        self._has_after = bool(self.plugins and self.plugins.manager.hook.after_upload.get_hookimpls())

    # -- the run ------------------------------------------------------------------------------------
    @property
    def _workers(self) -> int:
        # While `jobs` files upload (the HostGate admits no more), extra workers process the next files.
        extra = self.processing.workers if self.processing is not None and self.processing.active else 0
        return self.jobs + extra

    async def run(self, discovery: Iterable[Found], session: aiohttp.ClientSession | None = None) -> Summary:
        """Upload what ``discovery`` yields; ``session`` lets several batches (mirrors) share one."""
        started = time.monotonic()
        self._slots = asyncio.Semaphore(self._window)
        self._queue: asyncio.Queue[Job | None] = asyncio.Queue(maxsize=self.jobs * 2)
        self._gate = HostGate(self.host, self.jobs)
        async with contextlib.AsyncExitStack() as owned:
            self.session = session or await owned.enter_async_context(new_session(self.host.destination, self.jobs))
            workers = [asyncio.create_task(self._worker()) for _ in range(self._workers)]
            try:
                await self._feed(discovery)
                for _ in workers:
                    await self._queue.put(None)
                await asyncio.gather(*workers)
            except BaseException:  # cancelled (a second Ctrl-C): stop the workers and the producer now
                self._stopping = self.summary.interrupted = True
                for worker in workers:
                    worker.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                raise
            finally:
                self.summary.seconds = time.monotonic() - started
                await self._release_claims(list(self._claimed))
            await self._finish_host()
        return self.summary

    async def _finish_host(self) -> None:
        """The host completes what it batched (GitHub: one commit) and closes its connections (SFTP)."""
        recorded, self._recorded = self._recorded, []
        try:
            await self.host.finish(self.session)
        except (UploadError, TimeoutError, aiohttp.ClientError) as exc:
            # What the run recorded is not on the host: the ledger must not offer it for reuse.
            if self.ledger is not None:
                for record_id in recorded:
                    await asyncio.to_thread(self.ledger.mark_deleted, record_id)
            if isinstance(exc, UploadError):
                exc.message = f"{self.host.name}: {self.redact(exc.message)}"
                raise
            raise UploadError(f"{self.host.name}: {self.redact(_network_message(exc))}") from None

    # -- a long-lived batch: files handed in over time by many callers (picbeam serve) --------------
    async def __aenter__(self) -> Batch:
        """Open the session once for the batch's life; then :meth:`submit` files, from any number of tasks."""
        self._gate = HostGate(self.host, self.jobs)
        self.session = new_session(self.host.destination, self.jobs)
        self._admitted = asyncio.Semaphore(self._workers)
        self._finishing = FinishGate()
        self._batches_finish = type(self.host).finish is not Host.finish
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self._batches_finish:
                await self._finishing.finish(self._finish_host)
        finally:
            await self.session.close()
            self.close()

    async def submit(self, found: Sequence[Found]) -> list[UploadResult | None]:
        """Upload ``found`` beside whatever else is in flight; the results in the order given (None for a
        file passed over: not an image). The host limits (jobs, concurrency, rate) and the in-flight
        dedupe are the batch's, shared by every caller. Before returning, a host that batches its uploads
        (GitHub) completes them, so the URLs work when the caller gets them."""
        first = self._next_index
        self._next_index += len(found)

        async def one(index: int, file: Found) -> UploadResult | None:
            async with self._admitted:
                try:
                    # A small file in memory is hashed and looked up at once: cheaper than a thread hop.
                    small = file.data is not None and len(file.data) <= PRELOAD_LIMIT
                    result = await self._process(index, file, self._load(index, file) if small else NOT_LOADED)
                except Exception as exc:  # a bug in a host or plugin fails this file, not the others
                    result = self._failure(index, file.path, f"internal error: {type(exc).__name__}: {exc}")
            if result is not None:
                self._count(result)
            return result

        async with self._finishing.uploading():
            results = await asyncio.gather(*(one(first + n, file) for n, file in enumerate(found)))
        if self._batches_finish:
            await self._finishing.finish(self._finish_host)
        return results

    def close(self) -> None:
        if self._downloads is not None:
            import shutil

            shutil.rmtree(self._downloads, ignore_errors=True)
        if self.processing is not None:
            self.processing.close()
        if self.ledger is not None and hasattr(self.ledger, "close"):
            self.ledger.close()

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stop(self) -> None:
        """Start no more files; those in flight finish (the first Ctrl-C)."""
        self._stopping = True
        self.summary.interrupted = True

    async def _feed(self, discovery: Iterable[Found]) -> None:
        """Walk the inputs (in a thread) and queue them, waiting while the window is full.

        A folder walk or a list is read a chunk at a time; any other iterable (``picbeam watch`` feeds one
        that blocks until a file settles) one item at a time, so no item waits for the next.
        """
        found_files = iter(discovery)
        finite = isinstance(discovery, Discovery | Sequence)
        chunk_size = DISCOVERY_CHUNK if finite else 1
        index = 0
        while not self._stopping:
            chunk = await asyncio.to_thread(self._next_chunk, found_files, chunk_size, index)
            if not chunk:
                return
            for position, job in enumerate(chunk):
                await self._slots.acquire()
                if self._stopping:
                    self._slots.release()
                    self.summary.not_started += len(chunk) - position
                    break
                await self._queue.put(job)
                index += 1
                self.on_progress("found", 1)
        if finite:  # stopped early: what discovery has not reached yet never started either
            rest = await asyncio.to_thread(_count, found_files)  # awaited first: workers count meanwhile
            self.summary.not_started += rest

    def _next_chunk(self, found_files: Iterator[Found], size: int, first: int) -> list[Job]:
        """Runs in a thread: the next files, with the small ones already read, hashed, looked up and
        claimed, so that a batch of small files costs one thread hop (and one ledger write) per chunk
        rather than one per file."""
        jobs = [
            (index, found, self._load(index, found, PRELOAD_LIMIT) if size > 1 else NOT_LOADED)
            for index, found in enumerate(itertools.islice(found_files, size), start=first)
        ]
        self._claim([loaded for _, _, loaded in jobs])
        return jobs

    # -- claims: two picbeam processes over one ledger send each content once ------------------------
    def _claim(self, loaded: list[Loaded]) -> None:
        """Runs in a thread: claim in the ledger the content about to be sent. What another process
        recorded meanwhile is reused; what it is sending now is waited for (see _wait_for_claim)."""
        items = [i for i in loaded if isinstance(i, UploadItem) and i.previous is None]
        if self.ledger is None or self.force or self.dry_run or not items:
            return
        largest = max(item.size for item in items)
        try:
            answers = self.ledger.claim(
                [i.sha256 for i in items], self.host.name, self.destination, self.variant, largest=largest
            )
        except LedgerError as exc:
            self._ledger_failed(exc)
            return
        for item in items:
            answer = answers[item.sha256]
            if isinstance(answer, UploadResult):
                item.previous = dataclasses.replace(answer, path=printable(item.source), index=item.index)
            elif answer is None:
                self._claimed.add(item.sha256)
            else:
                self._busy.add(item.sha256)

    async def _wait_for_claim(self, item: UploadItem) -> UploadResult | None:
        """Wait while another process uploads this content: its result when it recorded one, None when
        this process holds the claim now (the other failed, or died)."""
        delay = 0.02
        while item.sha256 in self._busy:
            if self._stopping:
                return self._failure(item.index, item.source, "not sent: another picbeam is uploading it", item=item)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
            self._busy.discard(item.sha256)
            await asyncio.to_thread(self._claim, [item])
            if item.previous is not None:
                return item.previous
        return None

    async def _release_claims(self, sha256s: list[str]) -> None:
        if self.ledger is not None and sha256s:
            self._claimed.difference_update(sha256s)
            await asyncio.to_thread(self.ledger.release, sha256s, self.host.name, self.destination, self.variant)

    async def _worker(self) -> None:
        while (job := await self._queue.get()) is not None:
            index, found, loaded = job
            if self._stopping:
                self._finish(index, None)
                self.summary.not_started += 1
                continue
            try:
                result = await self._process(index, found, loaded)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug in a host or plugin fails this file, not the run
                result = self._failure(index, found.label, f"internal error: {type(exc).__name__}: {exc}")
            self._finish(index, result)

    def _finish(self, index: int, result: UploadResult | None) -> None:
        """Count a result and hand results out in input order; ``None`` marks a file passed over."""
        if result is not None:
            self._count(result)
        self._pending[index] = result
        while self._next_index in self._pending:
            ready = self._pending.pop(self._next_index)
            self._next_index += 1
            self._slots.release()
            if ready is not None:
                self.emit(ready)

    # -- one file -----------------------------------------------------------------------------------
    async def _process(self, index: int, found: Found, loaded: Loaded) -> UploadResult | None:
        if found.url is not None:
            return await self._process_download(index, found)
        if loaded is NOT_LOADED:
            loaded = await asyncio.to_thread(self._load_and_claim, index, found)
        if loaded is None:
            self.summary.skipped += 1
            self.on_progress("skipped", 1)
            return None
        if isinstance(loaded, UploadResult):
            return loaded
        item = loaded
        self.on_progress("bytes_found", item.size)
        if item.previous is not None:
            return item.previous
        if self.dry_run:
            return await self._dry_run(item)
        return await self._upload_once(item)

    async def _process_download(self, index: int, found: Found) -> UploadResult | None:
        """An address the user named: downloaded into this run's own folder, uploaded, then removed."""
        import shutil
        import tempfile

        from .inputs import download

        assert found.url is not None
        if self._downloads is None:
            self._downloads = Path(tempfile.mkdtemp(prefix="picbeam-download-"))
        folder = self._downloads / str(index)
        try:
            path = await download(found.url, self.session, folder, max_bytes=self.download_max_bytes,
                                  timeout=self.download_timeout)  # fmt: skip
        except UploadError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            return self._failure(index, found.url, exc.message)
        try:
            loaded = await asyncio.to_thread(self._load, index, Found(path, explicit=True))
            if isinstance(loaded, UploadItem):
                loaded.origin = found.url
                if loaded.previous is not None:
                    loaded.previous.path = found.url
            elif isinstance(loaded, UploadResult):
                loaded.path = found.url
            return await self._process(index, Found(path, explicit=True), loaded)
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)

    async def _dry_run(self, item: UploadItem) -> UploadResult:
        """What would be sent; with ``--explain``, the file is processed (and the result thrown away)."""
        try:
            await self._prepare(item, dry_run=True)
        except UploadError as exc:
            return self._failure(item.index, item.label, exc.message, item=item)
        finally:
            if self.processing is not None:
                self.processing.release(item)
        extra: dict[str, Any] = {"mime": item.mime, "name": item.name, "notes": item.notes}
        preview = self.host.request_preview(item)
        if preview is not None:  # masked by name; a secret value under another name is caught by redact
            extra["request"] = json.loads(self.redact(json.dumps(preview, ensure_ascii=False)))
        return UploadResult(
            path=item.label,
            host=self.host.name,
            bytes=item.size,
            sha256=item.sha256,
            index=item.index,
            extra=extra,
        )

    async def _upload_once(self, item: UploadItem) -> UploadResult:
        """Send a file unless the same content is already on its way in this run: then wait for that
        upload and reuse its URL (the ledger covers uploads that have finished)."""
        earlier = None if self.force else self._in_flight.get(item.sha256)
        if earlier is not None:
            first = await asyncio.shield(earlier)
            if first.ok and self._same_destination(first, item):
                return dataclasses.replace(
                    first, path=item.label, index=item.index, reused=True, extra=dict(first.extra)
                )
        future: asyncio.Future[UploadResult] = asyncio.get_running_loop().create_future()
        self._in_flight.setdefault(item.sha256, future)
        result = None
        try:
            result = await self._wait_for_claim(item) or await self._upload(item)
            return result
        finally:
            future.set_result(result or self._failure(item.index, item.label, "not sent", item=item))
            if self._in_flight.get(item.sha256) is future:
                del self._in_flight[item.sha256]

    def _same_destination(self, first: UploadResult, item: UploadItem) -> bool:
        """Whether ``item``, with the content of ``first``, may take its URL. With the ledger, yes (it
        reuses uploads by content too). Without it, only where a storage host would store it at the same
        path: identical files under their own names ({name}{ext}) are each stored, rather than all given
        the URL of whichever finished first."""
        from .storage import StorageHost

        if self.ledger is not None or not isinstance(self.host, StorageHost):
            return True
        try:
            return isinstance(first.answer, dict) and first.answer.get("path") == self.host.place(item)[0]
        except UploadError:
            return False  # its own upload reports the bad path

    async def _upload(self, item: UploadItem) -> UploadResult:
        try:
            await self._prepare(item)
            result = await self._send(item)
            self._check_urls(result)
            if item.data is None:
                await asyncio.to_thread(_check_unchanged, item)
        except UploadError as exc:
            result = self._failure(item.index, item.label, exc.message, status=exc.status, item=item)
        finally:
            if self.processing is not None:
                self.processing.release(item)
        if self._has_after:
            await asyncio.to_thread(self._after, result)
        if result.ok and self._writer is not None:
            try:
                self._recorded.append(await self._writer.record(result))
                self._claimed.discard(item.sha256)
            except LedgerError as exc:
                self._ledger_failed(exc)
        elif not result.ok and item.sha256 in self._claimed:
            await self._release_claims([item.sha256])  # another process may send it now
        return result

    def _ledger_failed(self, exc: LedgerError) -> None:
        """The ledger cannot be written: the host has the file, so its result still counts and prints, but
        nothing new starts (each upload would be one more the ledger cannot remember)."""
        if self.summary.ledger_error is None:
            self.summary.ledger_error = self.redact(exc.message)
        self._writer = None
        self._stopping = True

    def _check_urls(self, result: UploadResult) -> None:
        """A URL that would garble a terminal or a page, or run script where it is pasted, fails the file."""
        for url, strict in ((result.url, True), (result.thumbnail_url, False), (result.delete_url, False)):
            problem = url_problem(url, self.host.url_schemes, strict=strict)
            if problem:
                raise UploadError(problem, status=result.status)

    def _load_and_claim(self, index: int, found: Found) -> Loaded:
        loaded = self._load(index, found)
        self._claim([loaded])
        return loaded

    def _load(self, index: int, found: Found, limit: int | None = None) -> Loaded:
        """Runs in a thread: checks the file, recognises its type, hashes it (small files are read once)
        and looks it up in the ledger. A file over ``limit`` bytes is left to a worker (NOT_LOADED)."""
        if found.url is not None:
            return NOT_LOADED  # downloaded by a worker first
        path = found.path
        if found.error:
            return self._failure(index, path, found.error)
        mtime_ns = 0
        try:
            if found.data is not None:
                data: bytes | None = found.data
            else:
                info = path.stat()
                if limit is not None and info.st_size > limit:
                    return NOT_LOADED
                if not stat.S_ISREG(info.st_mode):
                    # A FIFO or a device in a folder is passed over like a file that is not an image.
                    return self._failure(index, path, "not a regular file") if found.explicit else None
                mtime_ns = info.st_mtime_ns
                with open(path, "rb") as handle:
                    if info.st_size <= IN_MEMORY_LIMIT:
                        data = handle.read()
                    else:
                        data, head = None, handle.read(SNIFF_BYTES)
                        digest = _hash_rest(handle, head)
            if data is not None:
                head, digest = data[:SNIFF_BYTES], hashlib.sha256(data).hexdigest()
        except OSError as exc:
            if not found.explicit and isinstance(exc, FileNotFoundError) and path.is_symlink():
                return None  # a dangling symlink in a folder, passed over like a file that is not an image
            return self._failure(index, path, f"cannot read: {exc.strerror or exc}")
        mime = sniff_image(head)
        if mime is None and not found.explicit:
            return None
        size = len(data) if data is not None else info.st_size
        item = UploadItem(
            source=path,
            index=index,
            mime=mime or guess_type(path.name),
            size=size,
            sha256=digest,
            data=data,
            mtime_ns=mtime_ns,
        )
        # Before processing too, unless processing re-encodes (a big photo may fit the host once converted).
        problem = None if self.processing is not None and self.processing.reencodes else self._refuse(item)
        if problem:
            return self._failure(index, path, problem, item=item)
        if self.ledger is not None and not self.force:
            item.previous = self.ledger.find(item.sha256, self.host.name, self.destination, self.variant)
            if item.previous is not None:
                item.previous.path, item.previous.index = printable(path), index
        return item

    def _refuse(self, item: UploadItem) -> str | None:
        host = self.host
        if item.size == 0:
            return "the file is empty"
        if host.max_bytes and item.size > host.max_bytes:
            return f"{_size(item.size)} is over the host's limit of {_size(host.max_bytes)}"
        if host.accept and not any(_mime_matches(item.mime, pattern) for pattern in host.accept):
            return f"the host takes only {', '.join(host.accept)}, and this file is {item.mime}"
        return None

    async def _prepare(self, item: UploadItem, dry_run: bool = False) -> None:
        """Run the processors on ``item`` (raises UploadError), then check what will be sent against the
        host's limits: processing changes sizes and types."""
        if item.size and self.processing is not None and (not dry_run or self.processing.explain):
            await self.processing.prepare(item, splice=self.host.streams_files)
        problem = self._refuse(item)
        if problem:
            raise UploadError(problem)

    def _after(self, result: UploadResult) -> None:
        """Runs in a thread. A plugin that raises is reported once and never undoes the upload: the file
        is on the host, so its result is printed and recorded all the same."""
        assert self.plugins is not None
        self.plugins.run_each("after_upload", on_error=self._plugin_failed, result=result)

    def _plugin_failed(self, plugin: str, message: str) -> None:
        with self._warn_lock:
            if plugin not in self._failed_plugins:
                self._failed_plugins.add(plugin)
                self.warnings.append(escape_controls(f"plugin {plugin}: {self.redact(message)}"))

    async def _send(self, item: UploadItem) -> UploadResult:
        """Upload with retries: transient failures back off (honouring Retry-After), a fresh body each try."""
        gate = self._gate
        attempts = 0

        def backoff(exc: Exception) -> bool | float:
            if not _is_transient(exc):
                return False
            wait = getattr(exc, "retry_after", None)
            if isinstance(exc, UploadError) and exc.status == 429:
                wait = wait if wait is not None else self.retry_wait * 4
                gate.pause(wait)
                return 0.0  # the gate itself makes every worker wait
            return wait if wait is not None else True

        async def attempt() -> UploadResult:
            nonlocal attempts
            attempts += 1
            async with gate:
                return await self.host.upload(item, self.session)

        try:
            try:
                # Most uploads succeed at once; building stamina's retry state for each of them costs more
                # than the request itself on a fast host, so stamina takes over from the first failure.
                result = await attempt()
            except Exception as failure:
                wait = backoff(failure)
                if wait is False or self.retries == 0:
                    raise
                await asyncio.sleep(wait if not isinstance(wait, bool) else self.retry_wait * (1 + random.random()))
                async for retry in _stamina().retry_context(
                    on=backoff,
                    attempts=self.retries,
                    timeout=None,
                    wait_initial=self.retry_wait * 2,
                    wait_max=30.0,
                    wait_jitter=self.retry_wait,
                ):
                    with retry:
                        result = await attempt()
        except UploadError as exc:
            exc.message = self.redact(exc.message) + _tries(attempts)
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise UploadError(self.redact(_network_message(exc)) + _tries(attempts)) from None
        finally:
            self.summary.retries += max(0, attempts - 1)
        result.index, result.path = item.index, item.label
        result.bytes, result.sha256 = item.size, item.sha256
        result.extra.setdefault("name", item.name)  # the name it was sent under, for {filename} in --format
        # What the Python API returns and the ledger keeps: the answer and endpoint without credentials.
        result.answer = self.redact.data(result.answer)
        if result.endpoint:
            result.endpoint = self.redact(result.endpoint)
        return result

    # -- results ------------------------------------------------------------------------------------
    def _failure(
        self, index: int, path: Path | str, message: str, *, status: int | None = None, item: UploadItem | None = None
    ) -> UploadResult:
        return UploadResult(
            path=printable(path),
            host=self.host.name,
            error=escape_controls(self.redact(message)),  # a host's text may hold terminal escapes
            status=status,
            index=index,
            bytes=item.size if item else 0,
            sha256=item.sha256 if item else "",
        )

    def _count(self, result: UploadResult) -> None:
        if result.error:
            self.summary.failed += 1
        elif result.reused:
            self.summary.reused += 1
        else:
            self.summary.uploaded += 1
            self.summary.bytes += result.bytes
        self.on_progress("done", result.bytes)


@functools.cache
def _stamina() -> Any:
    """stamina, imported on the first failure only (most runs never retry, and every run pays imports)."""
    import stamina

    # picbeam reports retries in its own words; stamina's default hook would log every one to stderr.
    stamina.instrumentation.set_on_retry_hooks([])
    return stamina


def new_session(destination: str, jobs: int) -> aiohttp.ClientSession:
    """A run's session: ``jobs`` uploads in flight (and as many connections waiting), the proxy looked up once."""
    connector = aiohttp.TCPConnector(limit=jobs * 2, limit_per_host=0)
    return aiohttp.ClientSession(connector=connector, headers={"User-Agent": USER_AGENT}, **proxy_options(destination))


def proxy_options(destination: str) -> dict[str, Any]:
    """Session options that honour HTTP(S)_PROXY / NO_PROXY.

    For an http(s) destination the proxy is looked up once per run: aiohttp's ``trust_env`` would look it
    up again in a worker thread for every request. Other destinations keep the per-request lookup.
    """
    from aiohttp.helpers import get_env_proxy_for_url
    from yarl import URL

    url = URL(destination) if destination.startswith(("http://", "https://")) else None
    if url is None:
        return {"trust_env": True}
    try:
        proxy, auth = get_env_proxy_for_url(url)
    except LookupError:
        return {}
    return {"proxy": proxy, "proxy_auth": auth}


class _ExactFilePayload(aiohttp.payload.BufferedReaderPayload):
    """aiohttp's file payload, sized by the length declared (aiohttp asks the file system, which counts
    what the file has grown by since)."""

    _value: ExactFile

    @property
    def size(self) -> int | None:
        if self._start_position is None:
            self._start_position = self._value.tell()
        return max(0, self._value.length - self._start_position)


aiohttp.payload.register_payload(_ExactFilePayload, ExactFile, order=aiohttp.payload.Order.try_first)


def _check_unchanged(item: UploadItem) -> None:
    """A streamed file that changed while it was sent may have arrived mixed: say so, do not record it."""
    read = item.on_disk()
    if read is None:
        return
    path, size, mtime_ns = read
    try:
        info = path.stat()
    except OSError:
        raise UploadError("the file disappeared while it was being uploaded; run again") from None
    if (info.st_size, info.st_mtime_ns) != (size, mtime_ns):
        raise UploadError("the file changed while it was being uploaded; run again to send its new content")


def _count(found_files: Iterator[Found]) -> int:
    return sum(1 for _ in found_files)


def _hash_rest(handle: Any, head: bytes) -> str:
    digest = hashlib.sha256(head)
    while chunk := handle.read(HASH_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, UploadError):
        return exc.transient
    # ConnectionError: a broken pipe or a reset from a host's own transport (SSH), as aiohttp's are retried.
    return isinstance(
        exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError | asyncio.TimeoutError | ConnectionError
    )


def _network_message(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out waiting for the host (check the endpoint or your network)"
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or exc.os_error
        return f"cannot connect to {exc.host}:{exc.port} ({reason}); check the endpoint or your network"
    if isinstance(exc, aiohttp.TooManyRedirects):
        return "the host redirected the upload too many times (check the endpoint)"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the host closed the connection before answering"
    if isinstance(exc, aiohttp.ClientError):
        return f"network error: {type(exc).__name__}: {exc}"
    reason = getattr(exc, "strerror", None) or exc
    if isinstance(exc, ConnectionError):
        return f"the connection to the host broke ({reason}); check the endpoint or your network"
    if isinstance(exc, OSError) and exc.filename is not None:  # only a named file is a local file's fault
        return f"cannot read {exc.filename}: {reason}"
    return f"input/output error while sending ({reason})"


def _tries(attempts: int) -> str:
    return f" (after {attempts} attempts)" if attempts > 1 else ""


def _mime_matches(mime: str, pattern: str) -> bool:
    return pattern in ("*", "*/*", mime) or (pattern.endswith("/*") and mime.startswith(pattern[:-1]))


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


# -- the public API --------------------------------------------------------------------------------
def open_batch(
    host: Host,
    config: Config,
    *,
    plugins: Plugins | None = None,
    jobs: int | None = None,
    retries: int | None = None,
    ledger: bool | str | os.PathLike[str] = True,
    process: Mapping[str, Any] | None = None,
    explain: bool = False,
    **options: Any,
) -> Batch:
    """A Batch for ``host`` with the user's settings as defaults and the ledger opened.

    ``ledger`` is True for the configured ledger, False for none, or a path. ``process`` holds processing
    options given for this run (``{"convert": "webp"}``), over the host's ``[process]`` table and
    config.toml's; ``explain`` makes a dry run process files to say what it would do. Close the batch
    when done.
    """
    from .hosts import keep_process
    from .ledger import Ledger, ledger_path
    from .processing import Processing

    processing = Processing.for_run(
        plugins, flags=process, host=host.process, config=config.get("process"), host_name=host.name, explain=explain
    )
    record = None
    if ledger is not False:
        record = Ledger(ledger_path(None if ledger is True else ledger, config))
    return Batch(
        keep_process(host, host.prepared()),
        processing=processing,
        jobs=jobs or config.get("jobs", 4),
        retries=config.get("retries", 3) if retries is None else retries,
        retry_wait=config.get("retry_wait", 0.5),
        download_max_bytes=config.get("download_max_bytes", DOWNLOAD_MAX_BYTES),
        download_timeout=config.get("download_timeout", DOWNLOAD_TIMEOUT),
        plugins=plugins,
        ledger=record,
        **options,
    )


async def upload_async(
    paths: Sequence[str | os.PathLike[str]],
    host: str | Host | None = None,
    *,
    jobs: int | None = None,
    recursive: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    retries: int | None = None,
    overrides: Sequence[str] = (),
    hosts_dirs: Sequence[str | os.PathLike[str]] = (),
    force: bool = False,
    ledger: bool | str | os.PathLike[str] = True,
    process: Mapping[str, Any] | None = None,
    follow_symlinks: bool = False,
) -> list[UploadResult]:
    """Upload files and folders to a host (by name, or a :class:`Host`); results in input order.

    Failures are results too (``result.error``), so one bad file never hides the others' URLs. The
    ledger is used as by the command line (``ledger=False`` for none, or a path); ``force`` re-sends
    files the ledger already has. ``process`` sets processing options as the command line's flags do
    (``{"convert": "webp", "max_width": 1600}``; see the README's "Processing"). In folders, symbolic
    links that lead outside the folder named are passed over unless ``follow_symlinks``.
    """
    from .config import Config
    from .loader import load_plugins

    plugins = load_plugins()
    config = Config.load([Path(d) for d in hosts_dirs])
    if not isinstance(host, Host):
        host = plugins.hosts(config).select(host or config.default_host(), overrides)
    results: list[UploadResult] = []
    batch = open_batch(
        host,
        config,
        plugins=plugins,
        jobs=jobs,
        retries=retries,
        ledger=ledger,
        force=force,
        process=process,
        emit=results.append,
    )
    with batch:
        discovery = Discovery(
            [as_input(p) for p in paths],
            recursive=recursive,
            include=include,
            exclude=exclude,
            follow_symlinks=follow_symlinks,
        )
        await batch.run(discovery)
    return results


def upload(
    paths: Sequence[str | os.PathLike[str]], host: str | Host | None = None, **options: Any
) -> list[UploadResult]:
    """The synchronous form of :func:`upload_async`."""
    return asyncio.run(upload_async(paths, host, **options))
