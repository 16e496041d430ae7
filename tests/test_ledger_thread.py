"""The ledger's thread (picbeam.dedupe.LedgerThread): claims and records are written off the event loop, many
to a transaction, and each caller resumes once its own item is written; a long-lived batch (serve) writes on
the loop while that needs no waiting, and the thread waits for a busy ledger instead."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest
from picbeam.dedupe import LedgerThread
from picbeam.items import UploadResult
from picbeam.ledger import Ledger, WouldWait


def run(coroutine):
    return asyncio.run(coroutine)


class Ticker:
    """Counts how often a task gets the event loop, every ``interval`` seconds, inside ``async with``."""

    def __init__(self, interval: float) -> None:
        self.interval, self.ticks = interval, 0

    async def __aenter__(self) -> Ticker:
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await self._task

    async def _tick(self) -> None:
        while not self._stop.is_set():
            self.ticks += 1
            await asyncio.sleep(self.interval)


def test_items_handed_in_together_share_a_transaction_and_each_caller_waits_for_its_own():
    calls: list[list[int]] = []
    written: set[int] = set()

    def write(items: list[int]) -> None:
        time.sleep(0.02)  # a commit that takes a while: whatever comes meanwhile waits for the next one
        calls.append(items)
        written.update(items)

    async def main() -> None:
        thread = LedgerThread()
        add = thread.group(write)

        async def one(item: int) -> None:
            await asyncio.sleep(item * 0.001)  # handed in over ~100 ms, not all in one turn of the loop
            await add(item)
            assert item in written  # resumed only once its own item is written

        await asyncio.gather(*(one(item) for item in range(100)))
        thread.close()

    run(main())
    assert sorted(item for call in calls for item in call) == list(range(100))
    assert len(calls) < 50, calls  # grouped: one call per file would be 100


def test_the_event_loop_runs_while_a_transaction_is_written():
    threads: set[str] = set()

    def write(items: list[str]) -> None:
        threads.add(threading.current_thread().name)
        time.sleep(0.3)

    async def main() -> None:
        thread = LedgerThread()
        add = thread.group(write)
        async with Ticker(0.005) as ticker:
            before = ticker.ticks
            await add("row")
            during = ticker.ticks - before
        thread.close()
        # A commit written on the loop would have held it for the 0.3 s: no tick at all in between.
        assert during >= 10, during

    run(main())
    assert threads == {"picbeam-ledger"}


def test_a_failed_write_fails_every_caller_of_that_transaction_and_the_next_one_goes_on():
    failing = True

    def write(items: list[str]) -> None:
        if failing:
            raise OSError("disk full")

    async def main() -> None:
        nonlocal failing
        thread = LedgerThread()
        add = thread.group(write)
        outcomes = await asyncio.gather(add("a"), add("b"), return_exceptions=True)
        assert [str(outcome) for outcome in outcomes] == ["disk full", "disk full"]
        failing = False
        await add("c")  # the ledger works again: so does the next transaction
        thread.close()

    run(main())


def test_closing_ends_the_thread():
    async def main() -> None:
        thread = LedgerThread()
        add = thread.group(lambda items: None)
        await add(1)
        thread.close()

    run(main())
    assert not [t for t in threading.enumerate() if t.name.startswith("picbeam-ledger")]


def test_serve_records_every_upload_of_concurrent_clients(fake_host, images, tmp_path):
    """End to end through the API's long-lived batch (what serve keeps per host): every file of many
    concurrent callers is recorded once, with its own id, and a second round reuses them all."""
    from picbeam import HostSpec
    from picbeam.api import open_batch
    from picbeam.config import Config
    from picbeam.hosts import SpecHost
    from picbeam.inputs import Found
    from picbeam.ledger import Ledger

    clients = 8
    paths = images(clients * 5)
    host = SpecHost(HostSpec(name="mine", endpoint=fake_host.endpoint(), url_path="data.url"))
    ledger_file = tmp_path / "ledger.sqlite3"

    async def round_of_uploads() -> list:
        batch = open_batch(host, Config.load(()), ledger=str(ledger_file))
        await batch.__aenter__()
        try:
            per_client = [paths[n::clients] for n in range(clients)]
            groups = await asyncio.gather(
                *(batch.submit([Found(p, explicit=True, data=p.read_bytes()) for p in group]) for group in per_client)
            )
        finally:
            await batch.__aexit__(None, None, None)
        return [result for group in groups for result in group]

    first = run(round_of_uploads())
    assert all(result.ok and not result.reused for result in first)
    with Ledger(ledger_file) as ledger:
        rows = ledger.history()
    assert len(rows) == len(paths) and len({row["id"] for row in rows}) == len(paths)
    second = run(round_of_uploads())
    assert all(result.ok and result.reused for result in second)
    assert len(fake_host.requests) == len(paths)


def uploaded(number: int) -> UploadResult:
    return UploadResult(path=f"/p/{number}.png", host="mine", url=f"https://h/{number}", sha256=f"{number:064x}")


def test_a_write_that_would_wait_says_so_at_once_and_writes_nothing(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    other_process = sqlite3.connect(tmp_path / "ledger.sqlite3", isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")  # another picbeam holds SQLite's write lock
    with ledger.without_waiting(), pytest.raises(WouldWait):  # not a 30 s busy wait, then "database is locked"
        ledger.record(uploaded(1), "dest")
    other_process.execute("COMMIT")
    assert ledger.history() == []
    with ledger.without_waiting():
        ledger.record(uploaded(2), "dest")
    assert [row["url"] for row in ledger.history()] == ["https://h/2"]
    ledger.close()


def test_a_long_lived_batch_writes_on_the_loop_and_a_busy_ledger_holds_up_neither_the_loop_nor_a_row(
    fake_host, images, tmp_path
):
    from picbeam import HostSpec
    from picbeam.api import open_batch
    from picbeam.config import Config
    from picbeam.hosts import SpecHost
    from picbeam.inputs import Found

    paths = images(16)
    host = SpecHost(HostSpec(name="mine", endpoint=fake_host.endpoint(), url_path="data.url"))
    ledger_file = tmp_path / "ledger.sqlite3"

    def ledger_threads() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("picbeam-ledger")]

    async def main() -> None:
        batch = open_batch(host, Config.load(()), ledger=str(ledger_file))
        await batch.__aenter__()
        try:
            free = await asyncio.gather(*(batch.submit([Found(p, explicit=True, data=p.read_bytes())])
                                          for p in paths[:8]))  # fmt: skip
            assert ledger_threads() == []  # a free ledger: every claim and row was written on the loop
            other_process = sqlite3.connect(ledger_file, isolation_level=None, check_same_thread=False)
            other_process.execute("BEGIN IMMEDIATE")
            threading.Timer(1.0, other_process.execute, ("COMMIT",)).start()  # held for a second
            async with Ticker(0.01) as ticker:
                started = time.monotonic()
                busy = await asyncio.gather(*(batch.submit([Found(p, explicit=True, data=p.read_bytes())])
                                              for p in paths[8:]))  # fmt: skip
                waited = time.monotonic() - started
        finally:
            await batch.__aexit__(None, None, None)
        assert all(result.ok for [result] in free + busy)
        assert waited >= 0.9  # the claims waited for the lock (in the thread)...
        assert ticker.ticks >= waited / 0.01 / 4, (ticker.ticks, waited)  # ...while the loop ran on

    run(main())
    with Ledger(ledger_file) as ledger:
        assert sorted(row["path"] for row in ledger.history()) == sorted(str(p) for p in paths)


def test_the_loop_writing_leaves_the_checkpoints_to_the_thread(tmp_path, monkeypatch):
    import picbeam.dedupe

    monkeypatch.setattr(picbeam.dedupe, "CHECKPOINT_EVERY", 16)

    def write_log_size(checkpoints: bool) -> int:
        ledger = Ledger(tmp_path / f"ledger-{checkpoints}.sqlite3")

        async def main() -> None:
            thread = LedgerThread(window=0)
            thread.write_on_loop(ledger.without_waiting, ledger.checkpoint if checkpoints else lambda: None)
            add = thread.group(lambda results: ledger.record_many(results, "dest"))
            for number in range(400):
                await add(uploaded(number))
            thread.close()

        run(main())
        size = (tmp_path / f"ledger-{checkpoints}.sqlite3-wal").stat().st_size
        assert len(ledger.history()) == 400
        ledger.close()
        return size

    # The loop's commits never checkpoint: without the thread's, the log would grow with every row.
    assert write_log_size(checkpoints=True) * 3 < write_log_size(checkpoints=False)
