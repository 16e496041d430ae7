"""The batch: a fixed pool of workers over a bounded queue, one aiohttp session, results in input order.

Memory stays flat however many files a run has: discovery feeds the queue from a thread and blocks
while the window of unfinished files is full; results leave in input order as soon as they can.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from .dedupe import Dedupe, Ledger
from .errors import LedgerError, UploadError
from .hosts import Host
from .inputs import DOWNLOAD_MAX_BYTES, DOWNLOAD_TIMEOUT, Discovery, Found
from .items import UploadItem, UploadResult, escape_controls, printable, url_problem
from .loading import NOT_LOADED, Refused, changed, check_unchanged, load, refuse
from .redaction import Redactor
from .sending import HostGate, RetryPolicy, Tally, network_message, new_session, tries

if TYPE_CHECKING:
    from .loader import Plugins
    from .processing import Processing

DISCOVERY_CHUNK = 64
# Files up to this size are read while discovering (bounding memory to a chunk plus the queue of these).
PRELOAD_LIMIT = 256 * 1024
Loaded = Any  # an UploadItem, a failed UploadResult, None for a file passed over, or NOT_LOADED
Job = tuple[int, Found, Loaded]


@dataclass
class Summary:
    uploaded: int = 0
    reused: int = 0
    failed: int = 0
    skipped: int = 0  # non-images found in folders
    passed_over: list[Path] = field(default_factory=list)  # ... and their paths
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
        self._next_index = 0
        self._stopping = False
        self._recorded: list[int] = []  # ledger ids of this run's uploads, withdrawn if the host's finish fails
        self._downloads: Path | None = None  # the folder of files downloaded from addresses, made on first use
        if self.processing is None and self.plugins is not None:
            from .processing import Processing, collect_steps

            self.processing = Processing(steps=collect_steps(self.plugins))
        # The ledger's dedupe key is the original content plus what processing does to it.
        self.variant = self.processing.signature if self.processing is not None else ""
        self.dedupe = Dedupe(
            self.ledger, self.host.name, self.destination, self.variant, self.redact, force=self.force,
            dry_run=self.dry_run, on_ledger_error=self._ledger_failed,
        )  # fmt: skip
        # A big file is hashed while it is sent when the host does not need its hash first.
        self._hash_while_sending = type(self.host).hash_while_sending and not self.dry_run
        # One line per problem that is the run's rather than a file's (a plugin that failed), for stderr.
        self.warnings: list[str] = []
        self._failed_plugins: set[str] = set()
        self._warn_lock = threading.Lock()
        self._has_after = bool(self.plugins and self.plugins.hooks.has("after_upload"))

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
        self._retry = RetryPolicy(retries=self.retries, wait=self.retry_wait, gate=self._gate)
        async with contextlib.AsyncExitStack() as owned:
            self.session = session or await owned.enter_async_context(new_session(self.host.destination, self.jobs))
            # With a ledger, as many workers again wait for their rows' commit (see picbeam.dedupe.RUN_WINDOW).
            count = self._workers + (self.jobs if self.dedupe.records else 0)
            workers = [asyncio.create_task(self._worker()) for _ in range(count)]
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
                await self.dedupe.release_all()
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
            raise UploadError(f"{self.host.name}: {self.redact(network_message(exc))}") from None

    # -- a long-lived batch: files handed in over time by many callers (picbeam serve) --------------
    async def __aenter__(self) -> Batch:
        """Open the session once for the batch's life; then :meth:`submit` files, from any number of tasks."""
        self._gate = HostGate(self.host, self.jobs)
        self._retry = RetryPolicy(retries=self.retries, wait=self.retry_wait, gate=self._gate)
        self.session = new_session(self.host.destination, self.jobs)
        self.dedupe.for_requests()
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
                    # A small file in memory is hashed on the loop and claimed with the files handed in meanwhile
                    # (like any run's claim: a `picbeam upload` of the same file at the same time waits for it);
                    # loading it in a loading thread instead measured slower (the threads contend for the GIL).
                    loaded = NOT_LOADED
                    if file.data is not None and len(file.data) <= PRELOAD_LIMIT:
                        loaded = self._load(index, file, look_up=False)
                        await self.dedupe.claim_in_group(loaded)
                    result = await self._process(index, file, loaded)
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
        self.dedupe.close()
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
            (index, found, self._load(index, found, PRELOAD_LIMIT, look_up=False) if size > 1 else NOT_LOADED)
            for index, found in enumerate(itertools.islice(found_files, size), start=first)
        ]
        self.dedupe.claim(loaded for _, _, loaded in jobs)
        return jobs

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
            except UploadError as exc:  # this file's own trouble (a hash it could not read), in its one line
                result = self._failure(index, found.label, exc.message)
            except Exception as exc:  # a bug in a host or plugin fails this file, not the run
                from .loader import debugging, print_traceback

                print_traceback(exc)
                hint = "" if debugging() else "; --debug shows the traceback"
                plugin = f"plugin '{self.host.plugin}'" if self.host.plugin else f"host '{self.host.name}'"
                message = f"internal error in {plugin}: {type(exc).__name__}: {exc}{hint}"
                result = self._failure(index, found.label, message)
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
            self.summary.passed_over.append(found.path)
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
        """Send a file unless the same content is already on its way (see :mod:`picbeam.dedupe`)."""
        return await self.dedupe.send_once(
            item,
            self._upload,
            stopping=lambda: self._stopping,
            not_sent=self._not_sent,
            same_destination=self._same_destination,
        )

    def _not_sent(self, item: UploadItem, message: str) -> UploadResult:
        return self._failure(item.index, item.label, message, item=item)

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
            earlier = await self.dedupe.claim_unhashed(item, lambda: self._stopping, self._not_sent)
            if earlier is not None:
                return earlier
            result = await self._send(item)
            self._check_urls(result)
            if item.data is None:
                await asyncio.to_thread(check_unchanged, item)
        except UploadError as exc:
            # A file that changed under its upload breaks the request; the change is what to report.
            message = (await asyncio.to_thread(changed, item) if item.data is None else None) or exc.message
            result = self._failure(item.index, item.label, message, status=exc.status, item=item)
        finally:
            if self.processing is not None:
                self.processing.release(item)
        if self._has_after:
            await asyncio.to_thread(self._after, result)
        record_id = await self.dedupe.settle(item, result)
        if record_id is not None:
            self._recorded.append(record_id)
        return result

    def _ledger_failed(self, exc: LedgerError) -> None:
        """The ledger cannot be written: the host has the file, so its result still counts and prints, but
        nothing new starts (each upload would be one more the ledger cannot remember)."""
        if self.summary.ledger_error is None:
            self.summary.ledger_error = self.redact(exc.message)
        self._stopping = True

    def _check_urls(self, result: UploadResult) -> None:
        """A URL that would garble a terminal or a page, or run script where it is pasted, fails the file."""
        for url, strict in ((result.url, True), (result.thumbnail_url, False), (result.delete_url, False)):
            problem = url_problem(url, self.host.url_schemes, strict=strict)
            if problem:
                raise UploadError(problem, status=result.status)

    def _load_and_claim(self, index: int, found: Found) -> Loaded:
        loaded = self._load(index, found, look_up=False)
        self.dedupe.claim([loaded])
        return loaded

    def _load(self, index: int, found: Found, limit: int | None = None, *, look_up: bool = True) -> Loaded:
        """Runs in a thread: the file loaded (see :mod:`picbeam.loading`) and looked up in the ledger. The
        host's limits are checked here too, unless processing re-encodes (then after processing). A file
        over ``limit`` bytes, or an address (downloaded by a worker first), is left to a worker (NOT_LOADED)."""
        if found.url is not None:
            return NOT_LOADED  # downloaded by a worker first
        reencodes = self.processing is not None and self.processing.reencodes
        loaded = load(
            index,
            found,
            self.host,
            limit=limit,
            check_limits=not reencodes,
            hash_while_sending=self._hash_while_sending,
        )
        if isinstance(loaded, Refused):
            return self._failure(index, loaded.path, loaded.message, item=loaded.item)
        if isinstance(loaded, UploadItem) and look_up:  # else the claim that follows looks it up
            self.dedupe.look_up(loaded)
        return loaded

    async def _prepare(self, item: UploadItem, dry_run: bool = False) -> None:
        """Run the processors on ``item`` (raises UploadError), then check what will be sent against the
        host's limits: processing changes sizes and types."""
        if item.size and self.processing is not None and (not dry_run or self.processing.explain):
            await self.processing.prepare(item, splice=self.host.streams_files)
        problem = refuse(item, self.host)
        if problem:
            raise UploadError(problem)

    def _after(self, result: UploadResult) -> None:
        """Runs in a thread. A plugin that raises is reported once and never undoes the upload: the file
        is on the host, so its result is printed and recorded all the same."""
        assert self.plugins is not None
        self.plugins.hooks.after_upload(result, on_error=self._plugin_failed)

    def _plugin_failed(self, plugin: str, message: str) -> None:
        with self._warn_lock:
            if plugin not in self._failed_plugins:
                self._failed_plugins.add(plugin)
                assert self.plugins is not None
                self.warnings.append(escape_controls(f"{self.plugins.label(plugin)}: {self.redact(message)}"))

    async def _send(self, item: UploadItem) -> UploadResult:
        """Upload through the host's gate by the one retry policy (transient failures back off, honouring
        Retry-After; a 429 pauses every worker), with a fresh body for each attempt."""
        tally = Tally()

        async def attempt() -> UploadResult:
            async with self._gate:
                return await self.host.upload(item, self.session)

        try:
            result = await self._retry.run(attempt, tally)
        except UploadError as exc:
            exc.message = self.redact(exc.message) + tries(tally.attempts)
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise UploadError(self.redact(network_message(exc)) + tries(tally.attempts)) from None
        finally:
            self.summary.retries += max(0, tally.attempts - 1)
        if item.hashing is not None:  # a big file hashed while it was sent: its hash, without holding the loop
            await asyncio.wrap_future(item.hashing)  # an UploadError when the file could not be read
        _stamp(result, item)
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
            sha256=item.known_sha256 if item else "",
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


def _count(found_files: Iterator[Found]) -> int:
    return sum(1 for _ in found_files)


def _stamp(result: UploadResult, item: UploadItem) -> UploadResult:
    """Set the bookkeeping fields of ``result`` for ``item``: the engine alone sets them (a host's result
    carries the host's part only)."""
    result.index, result.path = item.index, item.label  # an address for a download, else the path
    result.bytes, result.sha256 = item.size, item.sha256
    return result
