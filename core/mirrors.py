"""Mirrors and failover, above the engine: one Batch per host over the same inputs, one session.

``--host a --host b`` sends every file to every host (each batch has its own gate, retries and ledger
rows); ``--fallback c`` sends a file the primary failed on to ``c`` (and on down the list). The
results are combined per input, in input order: the first host's result (or the fallback's that took
its place) carrying every host's URL in ``extra["mirrors"]``.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .engine import Summary
from .inputs import Discovery, Found
from .items import UploadResult
from .sending import new_session

if TYPE_CHECKING:
    from .engine import Batch
    from .hosts import Host, HostRegistry

_END: Any = object()


def hosts_for(
    registry: HostRegistry, names: Sequence[str], fallbacks: Sequence[str] = (), overrides: Any = ()
) -> tuple[list[Host], list[Host]]:
    """The hosts of a run: those named, then each one's permanent ``mirrors`` (once each, in order), and
    the fallbacks."""
    chosen: list[Host] = []
    for name in names:
        host = registry.select(name, overrides)
        for each in [host, *(registry.get(m) for m in getattr(host, "mirrors", ()))]:
            if each.name not in {h.name for h in chosen}:
                chosen.append(each)
    backups = [registry.select(name, overrides) for name in fallbacks if name not in {h.name for h in chosen}]
    return chosen, backups


class Feed:
    """Inputs handed to a batch one at a time from another producer (a thread-safe queue, ended by
    :meth:`close`). The batch reads it in a worker thread, so a blocking get is fine."""

    def __init__(self) -> None:
        import queue  # a one-host run never makes a Feed

        self._queue: queue.Queue[Any] = queue.Queue()

    def put(self, found: Found) -> None:
        self._queue.put(found)

    def close(self) -> None:
        self._queue.put(_END)

    def __iter__(self) -> Iterator[Found]:
        while (item := self._queue.get()) is not _END:
            yield item


class Tee:
    """Walks the inputs once and gives each batch its own feed of them (``picbeam watch`` yields files
    as they settle, so they cannot be listed first). ``found`` keeps each input by its index."""

    def __init__(self, source: Iterable[Found], copies: int) -> None:
        self.feeds = [Feed() for _ in range(copies)]
        self.found: dict[int, Found] = {}
        self.count = 0
        self._source = source
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="picbeam-mirrors", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for found in self._source:
                self.found[self.count] = found
                self.count += 1
                for feed in self.feeds:
                    feed.put(found)
        finally:
            for feed in self.feeds:
                feed.close()


@dataclass
class _Slot:
    """One host's results so far: by input index, and how far its in-order output has got."""

    results: dict[int, UploadResult] = field(default_factory=dict)
    frontier: int = 0
    done: bool = False

    def settled(self, index: int) -> bool:
        return index in self.results or self.done or self.frontier > index


class Mirrored:
    """Runs ``batches`` (the first is the primary) and ``fallbacks`` over the same inputs; ``emit`` gets
    one combined result per input in input order, ``report`` every other host's failure."""

    def __init__(
        self,
        batches: Sequence[Batch],
        fallbacks: Sequence[Batch] = (),
        *,
        emit: Callable[[UploadResult], None],
        report: Callable[[UploadResult], None] = lambda result: None,
    ) -> None:
        self.batches, self.fallbacks = list(batches), list(fallbacks)
        self.emit, self.report = emit, report
        self.summary = Summary()
        self._slots = [_Slot() for _ in self.batches]
        self._chain: dict[int, UploadResult] = {}  # the primary's final result after its fallbacks
        self._waiting: set[int] = set()  # primary failures a fallback is still trying
        self._next = 0
        self._count: Callable[[], int] = lambda: 0
        self._found: Callable[[int], Found] = {}.__getitem__

    @property
    def host(self) -> Host:
        return self.batches[0].host

    @property
    def every(self) -> list[Batch]:
        return [*self.batches, *self.fallbacks]

    def stop(self) -> None:
        for batch in self.every:
            batch.stop()
        self.summary.interrupted = True

    async def run(self, discovery: Iterable[Found]) -> Summary:
        if isinstance(discovery, Discovery | Sequence):  # a finite walk: listed once, chunked by every batch
            listed = await asyncio.to_thread(list, discovery)
            inputs: list[Iterable[Found]] = [listed] * len(self.batches)
            self._count, self._found = (lambda: len(listed)), listed.__getitem__
            tee = None
        else:
            # Each batch reads its feed in a worker thread that waits for the next file (picbeam watch):
            # the default pool must have a thread for each of them besides those that read files.
            from concurrent.futures import ThreadPoolExecutor

            spare = min(32, (os.cpu_count() or 1) + 4)
            asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(spare + len(self.batches)))
            tee = Tee(discovery, len(self.batches))
            inputs = list(tee.feeds)
            self._count, self._found = (lambda: tee.count), tee.found.__getitem__
            tee.start()
        feeds = [Feed() for _ in self.fallbacks]
        origins: list[list[int]] = [[] for _ in self.fallbacks]  # each fallback's inputs by original index
        for number, batch in enumerate(self.batches):
            batch.emit = self._collector(number, feeds[0] if feeds else None, origins[0] if origins else None)
        for level, batch in enumerate(self.fallbacks):
            following = (feeds[level + 1], origins[level + 1]) if level + 1 < len(feeds) else (None, None)
            batch.emit = self._fallback_collector(origins[level], *following)
        biggest = max(batch.jobs for batch in self.every)
        async with new_session(self.host.destination, biggest * len(self.every)) as session:

            async def primary_then_fallbacks() -> None:
                try:
                    await self.batches[0].run(inputs[0], session)
                finally:
                    self._slots[0].done = True
                    if feeds:
                        feeds[0].close()
                for level, batch in enumerate(self.fallbacks):
                    try:
                        await batch.run(feeds[level], session)
                    finally:
                        if level + 1 < len(feeds):
                            feeds[level + 1].close()
                self._drain()

            async def mirror(number: int) -> None:
                try:
                    await self.batches[number].run(inputs[number], session)
                finally:
                    self._slots[number].done = True
                    self._drain()

            try:
                await asyncio.gather(primary_then_fallbacks(), *(mirror(n) for n in range(1, len(self.batches))))
            finally:
                for feed in feeds:
                    feed.close()
        self._waiting.clear()
        self._drain()
        self._tally()
        return self.summary

    # -- collecting -----------------------------------------------------------------------------------
    def _collector(self, number: int, feed: Feed | None, origin: list[int] | None) -> Callable[[UploadResult], None]:
        slot = self._slots[number]

        def collect(result: UploadResult) -> None:
            slot.results[result.index] = result
            slot.frontier = result.index + 1
            if number == 0:
                if result.ok or feed is None or origin is None:
                    self._chain[result.index] = result
                else:  # a failure the fallbacks try
                    self.report(result)
                    self._waiting.add(result.index)
                    origin.append(result.index)
                    feed.put(self._found(result.index))
            self._drain()

        return collect

    def _fallback_collector(
        self, origin: list[int], feed: Feed | None, following: list[int] | None
    ) -> Callable[[UploadResult], None]:
        def collect(result: UploadResult) -> None:
            index = origin[result.index]
            result.index = index
            if result.ok or feed is None or following is None:
                self._chain[index] = result
                self._waiting.discard(index)
            else:
                self.report(result)
                following.append(index)
                feed.put(self._found(index))
            self._drain()

        return collect

    def _drain(self) -> None:
        """Emit every input whose results are all in, in input order."""
        while self._next < self._count():
            index = self._next
            if index in self._waiting or not all(slot.settled(index) for slot in self._slots):
                return
            primary = self._chain.get(index)
            others = [slot.results.pop(index) for slot in self._slots[1:] if index in slot.results]
            self._slots[0].results.pop(index, None)
            self._chain.pop(index, None)
            self._next += 1
            if primary is None and not others:
                continue  # passed over (not an image)
            every = [r for r in [primary, *others] if r is not None]
            chosen = next((r for r in every if r.ok), every[0])
            for result in every:
                if result is not chosen and result.error:
                    self.report(result)
            chosen.extra["mirrors"] = [{"host": r.host, "url": r.url} for r in every]
            # Counted per input, as the output lines are: a file is failed if any of its hosts failed.
            if any(r.error for r in every):
                self.summary.failed += 1
            elif all(r.reused for r in every):
                self.summary.reused += 1
            else:
                self.summary.uploaded += 1
            self.emit(chosen)

    def _tally(self) -> None:
        summaries = [batch.summary for batch in self.every]
        self.summary.skipped = self.batches[0].summary.skipped
        self.summary.not_started = max(s.not_started for s in summaries)
        self.summary.bytes = sum(s.bytes for s in summaries)
        self.summary.retries = sum(s.retries for s in summaries)
        self.summary.seconds = max(s.seconds for s in summaries)
        self.summary.interrupted = self.summary.interrupted or any(s.interrupted for s in summaries)
        self.summary.ledger_error = next((s.ledger_error for s in summaries if s.ledger_error), None)

    # -- like a Batch, for the commands ----------------------------------------------------------------
    @property
    def processing(self) -> Any:
        return self.batches[0].processing

    @property
    def warnings(self) -> list[str]:
        """Every batch's warnings (a plugin that failed), each said once."""
        return list(dict.fromkeys(line for batch in self.every for line in batch.warnings))

    def close(self) -> None:
        for batch in self.every:
            batch.close()

    def __enter__(self) -> Mirrored:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_uploads(
    registry: HostRegistry,
    names: Sequence[str],
    config: Any,
    *,
    fallbacks: Sequence[str] = (),
    overrides: Any = (),
    emit: Callable[[UploadResult], None],
    report: Callable[[UploadResult], None],
    on_progress: Callable[[str, int], None] | None = None,
    **options: Any,
) -> Batch | Mirrored:
    """A Batch for one host, or a Mirrored run when there are mirrors (named, or a host's ``mirrors``
    field) or fallbacks; ``options`` go to :func:`picbeam.api.open_batch` for every host."""
    from .api import open_batch

    hosts, backups = hosts_for(registry, names, fallbacks, overrides)
    progress = {"on_progress": on_progress} if on_progress is not None else {}
    if len(hosts) == 1 and not backups:
        return open_batch(hosts[0], config, emit=emit, **progress, **options)
    # Progress follows the first host only: the bar counts inputs, not uploads.
    batches = [open_batch(host, config, **(progress if n == 0 else {}), **options) for n, host in enumerate(hosts)]
    spares = [open_batch(host, config, **options) for host in backups]
    return Mirrored(batches, spares, emit=emit, report=report)
