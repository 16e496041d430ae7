"""Each content is sent once: reused from the ledger, claimed against other processes, shared within a run.

For each file, in this order:

- **the ledger**: the same content, processed the same way, already uploaded to this destination is
  reused (:meth:`Dedupe.look_up`);
- **other processes** over the same ledger: a claim says "this process is sending it"; the others wait
  for it, then reuse what it recorded (:meth:`Dedupe.claim`, :meth:`Dedupe.send_once`);
- **this run**: files with the same content share one upload (:meth:`Dedupe.send_once`).

The key is the content's SHA-256. A big file hashed while it is sent (see :mod:`picbeam.loading`) is
known by its size until then: content nobody has uploaded at that size cannot be a duplicate, so it is
sent at once, under a claim on its size; a file of a size already recorded waits for its hash and is then
looked up like any other, and one of the size another upload holds waits for that upload first.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import queue
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

from .errors import LedgerError
from .items import UploadItem, UploadResult
from .ledger import TAKEN, WouldWait, is_size_key, size_key

T = TypeVar("T")


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

    def claim_size(self, size: int, host: str, destination: str, variant: str = "") -> str | None: ...

    def release(self, sha256s: list[str], host: str, destination: str, variant: str = "") -> None: ...

    def without_waiting(self) -> contextlib.AbstractContextManager[None]: ...

    def checkpoint(self) -> None: ...


# How long after a ledger transaction starts the next one may start: what is handed in meanwhile joins it.
# A run's workers wait for their rows while as many others keep the host busy (see Batch.run), so a run
# gathers for longer (fewer, larger transactions: less CPU); a long-lived batch (picbeam serve) answers
# each request only once its rows are written, so its rows go at once (with whatever arrived while the
# last transaction was being written).
RUN_WINDOW = 0.02
REQUEST_WINDOW = 0.0
# A long-lived batch's transactions between two checkpoints, in the thread (about 6 MB
# of write-ahead log at serve's rows; SQLite's own automatic checkpoint comes at about 4 MB).
CHECKPOINT_EVERY = 256


class LedgerThread:
    """The ledger's own thread, and its work grouped: whatever is handed in while a transaction is being
    written, or within ``window`` seconds of the last one's start, goes in the next one, so a busy run
    writes a few dozen transactions a second rather than one per file (a transaction, and the thread hop,
    cost more than a row); a file handed in after a quiet moment goes at once. The event loop keeps
    sending meanwhile and never waits for the ledger's lock: only this thread writes from the loop's side,
    or, for a long-lived batch (:meth:`write_on_loop`), the loop itself when the ledger is free."""

    def __init__(self, window: float = RUN_WINDOW) -> None:
        self.window = window
        # Set by write_on_loop(): the loop tries each transaction itself first.
        self._on_loop: Callable[[], contextlib.AbstractContextManager[None]] | None = None
        self._checkpoint: Callable[[], None] = lambda: None
        self._transactions = 0
        # A thread and a queue of its own rather than an executor: serve hands over two jobs per request,
        # and an executor's futures and wrappers cost the event loop a tenth of its time there.
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], Callable[[BaseException | None], object]] | None]
        self._jobs = queue.SimpleQueue()
        self._thread: threading.Thread | None = None  # started by the first job

    def group(self, write: Callable[[list[T]], object]) -> Callable[[T], Awaitable[None]]:
        """An ``await add(item)`` that returns once ``write`` (called in this thread, with every item
        handed in meanwhile) has written it; ``write``'s exception is raised to each of its callers."""
        pending: list[T] = []
        next_call: list[asyncio.Future[None]] = []  # the call the pending items go in, once there is one
        writing = False
        started = float("-inf")  # when the last call started, on the loop's clock

        def start() -> None:
            nonlocal started
            loop = asyncio.get_running_loop()
            started = loop.time()
            items, done = pending[:], next_call.pop()
            pending.clear()

            def in_thread() -> None:
                self._run(lambda: write(items), lambda error: loop.call_soon_threadsafe(finished, error, done))

            if self._on_loop is None:
                in_thread()
                return
            try:
                with self._on_loop():
                    write(items)
            except WouldWait:  # the ledger is busy: the thread waits for it instead
                in_thread()
            except Exception as exc:
                finished(exc, done)
            else:
                finished(None, done)
            self._count_for_checkpoint()  # after this transaction, in the thread's queue too

        def finished(error: BaseException | None, done: asyncio.Future[None]) -> None:
            nonlocal writing
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(None)
            if pending:
                later(start)
            else:
                writing = False

        def later(call: Callable[[], None]) -> None:
            loop = asyncio.get_running_loop()
            loop.call_at(max(loop.time(), started + self.window), call)

        async def add(item: T) -> None:
            nonlocal writing
            loop = asyncio.get_running_loop()
            if not next_call:
                next_call.append(loop.create_future())
            done = next_call[0]
            pending.append(item)
            if not writing:
                writing = True
                later(start)  # at the soonest after this turn of the loop: what else is handed in joins
            await asyncio.shield(done)

        return add

    def write_on_loop(
        self, without_waiting: Callable[[], contextlib.AbstractContextManager[None]], checkpoint: Callable[[], None]
    ) -> None:
        """Write each transaction on the event loop when that needs no waiting (``without_waiting()`` raises
        WouldWait otherwise, and the transaction goes to the thread), and ``checkpoint()`` in the thread
        every CHECKPOINT_EVERY transactions. For a long-lived batch whose callers each wait for a transaction or
        two (serve): the hop to the thread, and the thread's contention for the GIL with a busy loop, cost
        the loop more than the transaction itself (a sixth of serve's throughput, measured)."""
        self._on_loop, self._checkpoint = without_waiting, checkpoint

    def _count_for_checkpoint(self) -> None:
        """One more transaction (the loop's, or handed to the thread); every CHECKPOINT_EVERY, a checkpoint
        after them in the thread (the loop's connection never checkpoints by itself)."""
        self._transactions += 1
        if self._transactions % CHECKPOINT_EVERY == 0:
            self._run(self._checkpoint, lambda error: None)

    def _run(self, job: Callable[[], object], then: Callable[[BaseException | None], object]) -> None:
        """``job()`` in this thread, then ``then(its exception or None)``, from this thread too."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="picbeam-ledger", daemon=True)
            self._thread.start()
        self._jobs.put((job, then))

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            run, then = job
            try:
                run()
            except BaseException as exc:  # handed to every caller of the transaction, in the loop
                error: BaseException | None = exc
            else:
                error = None
            with contextlib.suppress(RuntimeError):  # the event loop is closed: a run cancelled mid-transaction
                then(error)

    def close(self) -> None:
        """The run is over (every call was awaited): the thread ends."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None


def key_of(item: UploadItem) -> str:
    """The item's dedupe key: its SHA-256, or its size while its hash is being computed."""
    return size_key(item.size) if item.hashing is not None else item.sha256


def reused(result: UploadResult, item: UploadItem) -> UploadResult:
    """``result`` (the ledger's, or another file's of this run) as the outcome of ``item``."""
    copy = dataclasses.replace(result, extra=dict(result.extra), reused=True)
    copy.index, copy.path, copy.bytes, copy.sha256 = item.index, item.label, item.size, item.sha256
    return copy


class Dedupe:
    """A batch's dedupe against its ledger (or none), for one host, destination and processing variant.

    ``on_ledger_error`` is told once when the ledger cannot be written; from then on nothing is recorded
    or claimed."""

    def __init__(
        self,
        ledger: Ledger | None,
        host: str,
        destination: str,
        variant: str,
        redact: Callable[[str], str],
        *,
        force: bool,
        dry_run: bool = False,
        on_ledger_error: Callable[[LedgerError], None],
    ) -> None:
        self.ledger, self.host, self.destination, self.variant = ledger, host, destination, variant
        self.force, self.dry_run = force, dry_run
        self._on_ledger_error = on_ledger_error
        self._thread = LedgerThread()
        self._writer: Callable[[UploadResult], Awaitable[None]] | None = None  # None: nothing is recorded
        if ledger is not None:
            # Each caller resumes once its row is committed: a result is never printed before it is recorded.
            self._writer = self._thread.group(lambda results: ledger.record_many(results, destination, redact, variant))
        self._claim_soon = self._thread.group(self.claim)
        # Keys this process claimed in the ledger (it uploads them), and keys another process holds.
        self._claimed: set[str] = set()
        self._busy: set[str] = set()
        # The file (by index) holding each size claim: only its own outcome lets the claim go.
        self._size_holders: dict[str, int] = {}
        self._in_flight: dict[str, asyncio.Future[UploadResult]] = {}

    # -- before sending (in loading threads) ----------------------------------------------------------
    def look_up(self, item: UploadItem) -> None:
        """Runs in a thread: ``item.previous``, the ledger's upload of the same content, when there is one.
        A file whose hash is still being computed is looked up by :meth:`claim` instead."""
        if self.ledger is None or self.force or item.hashing is not None:
            return
        previous = self.ledger.find(item.sha256, self.host, self.destination, self.variant)
        item.previous = reused(previous, item) if previous is not None else None

    def claim(self, items: Iterable[object]) -> None:
        """Runs in a thread: claim in the ledger the content about to be sent. What another process
        recorded is reused; what it is sending now is waited for (see :meth:`send_once`). A file whose hash
        is still being computed is claimed after processing instead (:meth:`claim_unhashed`)."""
        pending = [i for i in items if isinstance(i, UploadItem) and i.previous is None and i.hashing is None]
        if not self._claims:  # a dry run, --force, no ledger: nothing to claim, what is recorded is still reused
            for item in pending:
                self.look_up(item)
            return
        try:
            self._claim_hashes(pending)  # which reuses what is recorded, in the same transaction
        except LedgerError as exc:
            self.ledger_failed(exc)

    def for_requests(self) -> None:
        """This dedupe serves a long-lived batch, whose callers wait for their rows: write them at once,
        on the loop unless the ledger is busy."""
        self._thread.window = REQUEST_WINDOW
        if self.ledger is not None:
            self._thread.write_on_loop(self.ledger.without_waiting, self.ledger.checkpoint)

    @property
    def records(self) -> bool:
        """Whether successful uploads are recorded (there is a ledger, and it can be written)."""
        return self._writer is not None

    async def claim_in_group(self, item: object) -> None:
        """:meth:`claim` for one file loaded on the event loop (``picbeam serve``), in one transaction with
        the files handed in meanwhile (on the loop when the ledger is free, else in its thread)."""
        await self._claim_soon(item)

    @property
    def _claims(self) -> bool:
        return self.ledger is not None and not self.force and not self.dry_run and self._writer is not None

    async def claim_unhashed(
        self, item: UploadItem, stopping: Callable[[], bool], not_sent: Callable[[UploadItem, str], UploadResult]
    ) -> UploadResult | None:
        """Claim a file whose hash is still being computed, once processing has made what is sent: by the
        size sent (the ledger's rows hold that size). The ledger's upload of the same content, when that
        size is recorded and the hash matches; otherwise None (send it), after waiting for whoever holds it."""
        if item.hashing is None or not self._claims:
            return None
        await asyncio.to_thread(self._claim_one, item)
        return item.previous or await self._wait_for_claim(item, stopping, not_sent)

    def _claim_one(self, item: UploadItem) -> None:
        """Runs in a thread: claim one file, by its size while its hash is not known, else by its hash."""
        try:
            if item.hashing is None or not self._claim_size(item):
                self._claim_hashes([item])
        except LedgerError as exc:
            self.ledger_failed(exc)

    def _claim_size(self, item: UploadItem) -> bool:
        """Claim a file whose hash is not known yet by its size; False when it must be hashed and claimed
        by its hash after all (an upload of that size is recorded: it may be the same content)."""
        assert self.ledger is not None
        key = size_key(item.size)
        answer = self.ledger.claim_size(item.size, self.host, self.destination, self.variant)
        if answer == TAKEN:
            item.sha256  # noqa: B018 (waits for the hash: the upload of that size may be this content)
            self.look_up(item)
            return item.previous is not None
        if answer is None:
            self._claimed.add(key)
            self._size_holders[key] = item.index
        elif key not in self._claimed:  # held by another process (this one's own files meet in flight)
            self._busy.add(key)
        return True

    def _claim_hashes(self, items: list[UploadItem]) -> None:
        assert self.ledger is not None
        if not self._claims or not items:
            return
        largest = max(item.size for item in items)
        answers = self.ledger.claim(
            [i.sha256 for i in items], self.host, self.destination, self.variant, largest=largest
        )
        for item in items:
            answer = answers[item.sha256]
            if isinstance(answer, UploadResult):
                item.previous = reused(answer, item)
            elif answer is None:
                self._claimed.add(item.sha256)
            elif item.sha256 not in self._claimed:
                # Held by another process. A claim of this one is not waited for: two files of this run
                # with one content meet in flight (send_once), and waiting here too could wait forever.
                self._busy.add(item.sha256)

    def ledger_failed(self, exc: LedgerError) -> None:
        """The ledger cannot be written: record and claim nothing more, and say so once."""
        if self._writer is not None:
            self._writer = None
            self._on_ledger_error(exc)

    # -- sending ----------------------------------------------------------------------------------------
    async def send_once(
        self,
        item: UploadItem,
        upload: Callable[[UploadItem], Awaitable[UploadResult]],
        *,
        stopping: Callable[[], bool],
        not_sent: Callable[[UploadItem, str], UploadResult],
        same_destination: Callable[[UploadResult, UploadItem], bool],
    ) -> UploadResult:
        """Send ``item`` with ``upload`` unless its content is on its way already: then wait for that upload
        (this run's, or another process's claim) and reuse its URL."""
        key = key_of(item)
        earlier = None if self.force else self._in_flight.get(key)
        if earlier is not None and is_size_key(key):  # a file of the same size, which may hold other content
            first = await asyncio.shield(earlier)
            same = await asyncio.to_thread(_hashed_digest, item) == first.sha256
            if same and first.ok and same_destination(first, item):
                return reused(first, item)
            await asyncio.to_thread(self.claim, [item])  # by its hash, now that it is known
            if item.previous is not None:
                return item.previous
            key = item.sha256
            earlier = self._in_flight.get(key)
        if earlier is not None:
            first = await asyncio.shield(earlier)
            if first.ok and same_destination(first, item):
                return reused(first, item)
        future: asyncio.Future[UploadResult] = asyncio.get_running_loop().create_future()
        self._in_flight.setdefault(key, future)
        result = None
        try:
            result = await self._wait_for_claim(item, stopping, not_sent) or await upload(item)
            return result
        finally:
            future.set_result(result or not_sent(item, "not sent"))
            # A big file's upload stays on record for the run: a copy that comes later is compared with it
            # by hash (without a ledger nothing else would catch it; they are few).
            if self._in_flight.get(key) is future and not is_size_key(key):
                del self._in_flight[key]

    async def _wait_for_claim(
        self, item: UploadItem, stopping: Callable[[], bool], not_sent: Callable[[UploadItem, str], UploadResult]
    ) -> UploadResult | None:
        """Wait while another upload holds this content (or, for a file not hashed yet, its size): its
        result when it recorded one, None when this process holds the claim now (the other failed, or died)."""
        delay = 0.02
        while (key := key_of(item)) in self._busy:
            if stopping():
                return not_sent(item, "not sent: another picbeam is uploading it")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
            self._busy.discard(key)
            await asyncio.to_thread(self._claim_one, item)
            if item.previous is not None:
                return item.previous
        return None

    async def settle(self, item: UploadItem, result: UploadResult) -> int | None:
        """After ``item`` was sent: record a success (its ledger id is returned), or let the claim go so
        that another process may send it. Raises nothing: a ledger that fails is :meth:`ledger_failed`."""
        record_id = None
        if result.ok and self._writer is not None:
            try:
                await self._writer(result)
                record_id = int(result.extra["id"])
                self._claimed.discard(item.sha256)
            except LedgerError as exc:
                self.ledger_failed(exc)
        elif not result.ok and item.hashing is None and item.sha256 in self._claimed:
            await self._release([item.sha256])
        key = size_key(item.size)
        if self._size_holders.get(key) == item.index:
            del self._size_holders[key]
            await self._release([key])  # after the record: a process waiting for it then finds the upload
        return record_id

    def close(self) -> None:
        """The batch is over: nothing more is recorded."""
        self._thread.close()

    async def release_all(self) -> None:
        """Let go of every claim still held (the run ends)."""
        self._size_holders.clear()
        await self._release(list(self._claimed))

    async def _release(self, keys: list[str]) -> None:
        if self.ledger is not None and keys:
            self._claimed.difference_update(keys)
            await asyncio.to_thread(self.ledger.release, keys, self.host, self.destination, self.variant)


def _hashed_digest(item: UploadItem) -> str:
    """``item``'s hash, waited for in the calling thread (an UploadError when the file could not be read)."""
    return item.sha256
