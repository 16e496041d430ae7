"""The batch: a fixed pool of workers over a bounded queue, one aiohttp session, results in input order.

Memory stays flat however many files a run has: discovery feeds the queue from a thread and blocks
while the window of unfinished files is full; results leave in input order as soon as they can.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import itertools
import os
import random
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from . import __version__
from .errors import UploadError
from .hosts import Host
from .inputs import SNIFF_BYTES, Discovery, Found, guess_type, sniff_image
from .items import IN_MEMORY_LIMIT, UploadItem, UploadResult, printable
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

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.not_started == 0 and not self.interrupted


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
    emit: Callable[[UploadResult], None] = lambda result: None
    on_progress: Callable[[str, int], None] = lambda event, amount: None
    summary: Summary = field(default_factory=Summary)

    def __post_init__(self) -> None:
        self.jobs = max(1, self.jobs)
        self.redact = Redactor(self.host.secret_values())
        self.destination = self.host.destination
        self._window = max(64, self.jobs * 8)
        self._pending: dict[int, UploadResult | None] = {}
        self._in_flight: dict[str, asyncio.Future[UploadResult]] = {}
        self._next_index = 0
        self._stopping = False
        self._recorded: list[int] = []  # ledger ids of this run's uploads, withdrawn if the host's finish fails
        if self.processing is None and self.plugins is not None:
            from .processing import Processing, collect_steps

            self.processing = Processing(steps=collect_steps(self.plugins))
        # The ledger's dedupe key is the original content plus what processing does to it.
        self.variant = self.processing.signature if self.processing is not None else ""
        self._writer = None
        if self.ledger is not None:
            self._writer = GroupCommit(self.ledger, self.destination, self.redact, self.variant)
        self._has_after = bool(self.plugins and self.plugins.hooks.has("after_upload"))

    # -- the run ------------------------------------------------------------------------------------
    async def run(self, discovery: Iterable[Found]) -> Summary:
        started = time.monotonic()
        self._slots = asyncio.Semaphore(self._window)
        self._queue: asyncio.Queue[Job | None] = asyncio.Queue(maxsize=self.jobs * 2)
        self._gate = HostGate(self.host, self.jobs)
        connector = aiohttp.TCPConnector(limit=self.jobs * 2, limit_per_host=0)
        async with aiohttp.ClientSession(
            connector=connector, headers={"User-Agent": USER_AGENT}, **proxy_options(self.host.destination)
        ) as self.session:
            # While `jobs` files upload (the HostGate admits no more), extra workers process the next files.
            extra = self.processing.workers if self.processing is not None and self.processing.active else 0
            workers = [asyncio.create_task(self._worker()) for _ in range(self.jobs + extra)]
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
            await self._finish_host()
        return self.summary

    async def _finish_host(self) -> None:
        """The host completes what it batched (GitHub: one commit) and closes its connections (SFTP)."""
        try:
            await self.host.finish(self.session)
        except (UploadError, TimeoutError, aiohttp.ClientError) as exc:
            # What the run recorded is not on the host: the ledger must not offer it for reuse.
            if self.ledger is not None:
                for record_id in self._recorded:
                    await asyncio.to_thread(self.ledger.mark_deleted, record_id)
            if isinstance(exc, UploadError):
                exc.message = f"{self.host.name}: {self.redact(exc.message)}"
                raise
            raise UploadError(f"{self.host.name}: {self.redact(_network_message(exc))}") from None

    def close(self) -> None:
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
        chunk_size = DISCOVERY_CHUNK if isinstance(discovery, Discovery | Sequence) else 1
        index = 0
        while not self._stopping:
            chunk = await asyncio.to_thread(self._next_chunk, found_files, chunk_size, index)
            if not chunk:
                return
            for job in chunk:
                await self._slots.acquire()
                if self._stopping:
                    return
                await self._queue.put(job)
                index += 1
                self.on_progress("found", 1)

    def _next_chunk(self, found_files: Iterator[Found], size: int, first: int) -> list[Job]:
        """Runs in a thread: the next files, with the small ones already read, hashed and looked up, so
        that a batch of small files costs one thread hop per chunk rather than one per file."""
        return [
            (index, found, self._load(index, found, PRELOAD_LIMIT) if size > 1 else NOT_LOADED)
            for index, found in enumerate(itertools.islice(found_files, size), start=first)
        ]

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
                from .loader import debugging, print_traceback

                print_traceback(exc)
                hint = "" if debugging() else "; --debug shows the traceback"
                plugin = f"plugin '{self.host.plugin}'" if self.host.plugin else f"host '{self.host.name}'"
                message = f"internal error in {plugin}: {type(exc).__name__}: {exc}{hint}"
                result = self._failure(index, found.path, message)
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
        if loaded is NOT_LOADED:
            loaded = await asyncio.to_thread(self._load, index, found)
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

    async def _dry_run(self, item: UploadItem) -> UploadResult:
        """What would be sent; with ``--explain``, the file is processed (and the result thrown away)."""
        try:
            await self._prepare(item, dry_run=True)
        except UploadError as exc:
            return self._failure(item.index, item.source, exc.message, item=item)
        finally:
            if self.processing is not None:
                await self.processing.release(item)
        extra = {"mime": item.mime, "name": item.name, "notes": item.notes}
        return UploadResult(
            path=printable(item.source),
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
            if first.ok:
                return dataclasses.replace(
                    first, path=printable(item.source), index=item.index, reused=True, extra=dict(first.extra)
                )
        future: asyncio.Future[UploadResult] = asyncio.get_running_loop().create_future()
        self._in_flight.setdefault(item.sha256, future)
        result = None
        try:
            result = await self._upload(item)
            return result
        finally:
            future.set_result(result or self._failure(item.index, item.source, "not sent", item=item))
            if self._in_flight.get(item.sha256) is future:
                del self._in_flight[item.sha256]

    async def _upload(self, item: UploadItem) -> UploadResult:
        try:
            await self._prepare(item)
            result = await self._send(item)
            if item.data is None:
                await asyncio.to_thread(_check_unchanged, item)
        except UploadError as exc:
            result = self._failure(item.index, item.source, exc.message, status=exc.status, item=item)
        finally:
            if self.processing is not None:
                await self.processing.release(item)
        if self._has_after:
            await asyncio.to_thread(self._after, result)
        if result.ok and self._writer is not None:
            self._recorded.append(await self._writer.record(result))
        return result

    def _load(self, index: int, found: Found, limit: int | None = None) -> Loaded:
        """Runs in a thread: checks the file, recognises its type, hashes it (small files are read once)
        and looks it up in the ledger. A file over ``limit`` bytes is left to a worker (NOT_LOADED)."""
        path = found.path
        if found.error:
            return self._failure(index, path, found.error)
        try:
            info = path.stat()
            if limit is not None and info.st_size > limit:
                return NOT_LOADED
            if not stat.S_ISREG(info.st_mode):
                return self._failure(index, path, "not a regular file")
            with open(path, "rb") as handle:
                if info.st_size <= IN_MEMORY_LIMIT:
                    data: bytes | None = handle.read()
                    head, digest = data[:SNIFF_BYTES], hashlib.sha256(data).hexdigest()
                else:
                    data, head = None, handle.read(SNIFF_BYTES)
                    digest = _hash_rest(handle, head)
        except OSError as exc:
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
            mtime_ns=info.st_mtime_ns,
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
            await self.processing.prepare(item)
        problem = self._refuse(item)
        if problem:
            raise UploadError(problem)

    def _after(self, result: UploadResult) -> None:
        assert self.plugins is not None
        self.plugins.hooks.after_upload(result)

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
        result.index, result.path = item.index, printable(item.source)
        result.bytes, result.sha256 = item.size, item.sha256
        return result

    # -- results ------------------------------------------------------------------------------------
    def _failure(
        self, index: int, path: Path, message: str, *, status: int | None = None, item: UploadItem | None = None
    ) -> UploadResult:
        return UploadResult(
            path=printable(path),
            host=self.host.name,
            error=self.redact(message),
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


def proxy_options(destination: str) -> dict[str, Any]:
    """Session options that honour HTTP(S)_PROXY / NO_PROXY.

    For an http(s) destination the proxy is looked up once per run: aiohttp's ``trust_env`` would look it
    up again in a worker thread for every request. Other destinations keep the per-request lookup.
    """
    from yarl import URL

    url = URL(destination) if destination.startswith(("http://", "https://")) else None
    if url is None:
        return {"trust_env": True}
    found = env_proxy(url)
    if found is None:
        return {}
    proxy, auth = found
    return {"proxy": proxy, "proxy_auth": auth}


def env_proxy(url: Any) -> tuple[Any, aiohttp.BasicAuth | None] | None:
    """The proxy the environment gives for ``url`` (HTTP(S)_PROXY, NO_PROXY), with its credentials from
    the proxy URL or ~/.netrc; None when there is none or the host is exempt. An https:// proxy is not
    supported by aiohttp and is ignored, as aiohttp's own lookup does."""
    import urllib.request

    from yarl import URL

    if url.host is not None and urllib.request.proxy_bypass(url.host):
        return None
    address = urllib.request.getproxies().get(url.scheme)
    if not address:
        return None
    proxy = URL(address)
    if proxy.scheme not in ("http", ""):
        return None
    auth = aiohttp.BasicAuth(proxy.user, proxy.password or "") if proxy.user else None
    proxy = proxy.with_user(None)
    if auth is None and proxy.host:
        auth = _netrc_auth(proxy.host)
    return proxy, auth


def _netrc_auth(host: str) -> aiohttp.BasicAuth | None:
    import netrc

    try:
        entry = netrc.netrc(os.environ.get("NETRC")).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return None
    if entry is None:
        return None
    login, _, password = entry
    return aiohttp.BasicAuth(login or "", password or "")


def _check_unchanged(item: UploadItem) -> None:
    """A streamed file that changed while it was sent may have arrived mixed: say so, do not record it."""
    try:
        info = item.path.stat()
    except OSError:
        raise UploadError("the file disappeared while it was being uploaded; run again") from None
    if (info.st_size, info.st_mtime_ns) != (item.size, item.mtime_ns):
        raise UploadError("the file changed while it was being uploaded; run again to send its new content")


def _hash_rest(handle: Any, head: bytes) -> str:
    digest = hashlib.sha256(head)
    while chunk := handle.read(HASH_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, UploadError):
        return exc.transient
    return isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError | asyncio.TimeoutError)


def _network_message(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out waiting for the host (check the endpoint or your network)"
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or exc.os_error
        return f"cannot connect to {exc.host}:{exc.port} ({reason}); check the endpoint or your network"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the host closed the connection before answering"
    if isinstance(exc, aiohttp.ClientError):
        return f"network error: {type(exc).__name__}: {exc}"
    return f"cannot read the file: {getattr(exc, 'strerror', None) or exc}"


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
    flags_from: str = "command line",
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
        plugins,
        flags=process,
        host=host.process,
        config=config.get("process"),
        host_name=host.name,
        explain=explain,
        flags_from=flags_from,
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
        plugins=plugins,
        ledger=record,
        **options,
    )
