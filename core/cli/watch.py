"""`picbeam watch DIR`: upload each new or changed image once it is completely written.

A file is sent when it has stopped changing for ``--settle`` seconds and, for the formats that have an
end marker (PNG, JPEG, GIF), when the marker is there: a writer that pauses half-way is waited for. One
batch runs for the whole session, so the ledger, dedupe and retries are those of ``picbeam upload``, and
a file whose content the host already has (a restart, a re-saved file) is not sent again.
"""

from __future__ import annotations

import asyncio
import functools
import os
import queue
import stat
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    FallbackOption,
    HostsDirOption,
    fail,
    on_two_interrupts,
    open_hosts,
    output_format,
    warn,
)

# Names that are still being written by their program, or are not the user's files.
TEMPORARY_SUFFIXES = (".part", ".partial", ".crdownload", ".download", ".tmp", ".temp", ".swp", "~")
# How long a file that stopped changing but lacks its end marker is waited for before it is reported.
INCOMPLETE_GRACE = 30.0
TICK = 0.1
TAIL_BYTES = 4096


def register(app: typer.Typer) -> None:
    app.command("watch", no_args_is_help=True)(watch)


def watch(
    folder: Annotated[Path, typer.Argument(help="The folder to watch.", show_default=False)],
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            "-H",
            help="Host name (default: PICBEAM_HOST, config default_host, or 'local'); repeat it for mirrors.",
            show_default=False,
        ),
    ] = None,
    fallback: FallbackOption = None,
    fmt: Annotated[
        str | None, typer.Option("--format", "-f", help="Output format: url, markdown, html, bbcode, json.")
    ] = None,
    copy: Annotated[bool, typer.Option("--copy", help="Put each result on the clipboard as it lands.")] = False,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Watch sub-folders too.")] = False,
    follow_symlinks: Annotated[
        bool, typer.Option("--follow-symlinks", help="Follow symbolic links that lead outside the folder.")
    ] = False,
    existing: Annotated[
        bool, typer.Option("--existing", help="Also upload images already in the folder (those the ledger lacks).")
    ] = False,
    settle: Annotated[
        float, typer.Option("--settle", min=0.05, max=600, help="Seconds a file must stay unchanged before upload.")
    ] = 1.0,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", min=1, max=256, help="Uploads in flight at once.")] = None,
    retries: Annotated[
        int | None, typer.Option("--retries", min=0, max=20, help="Retries of transient failures (default: 3).")
    ] = None,
    ledger: Annotated[
        Path | None, typer.Option("--ledger", help="Ledger database (also PICBEAM_LEDGER).", show_default=False)
    ] = None,
    hosts_dir: HostsDirOption = None,
) -> None:
    """Upload each new or changed image in a folder once it is completely written; Ctrl-C stops."""
    from ..mirrors import open_uploads

    plugins, config, registry = open_hosts(hosts_dir)
    fmt = output_format(fmt, config)
    if not folder.is_dir():
        fail(f"{folder}: not a folder")
    report = Report(fmt, copy)
    batch = open_uploads(registry, host or [config.default_host()], config, fallbacks=fallback or (),
                         plugins=plugins, jobs=jobs, retries=retries, ledger=ledger or True, emit=report.emit,
                         report=report.failed)  # fmt: skip
    with batch:
        interrupted = asyncio.run(
            Watcher(folder, batch, report, settle=settle, recursive=recursive, follow_symlinks=follow_symlinks).run(
                existing
            )
        )
    summary = batch.summary
    for line in batch.warnings:
        warn(line)
    warn(f"stopped: {summary.uploaded} uploaded, {summary.reused} already uploaded, {summary.failed} failed"
         + (f", {summary.not_started} not started" if summary.not_started else ""))  # fmt: skip
    if summary.ledger_error:
        from .upload import ledger_stopped

        warn(ledger_stopped(summary))
    if interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    if summary.failed or summary.ledger_error:
        raise typer.Exit(EXIT_FAILED)


@dataclass
class Report:
    """Prints each result as it lands (and copies it with --copy). Reused results of the start-up scan are
    not printed: those files were uploaded before."""

    fmt: str
    copy: bool
    quiet: set[int] = field(default_factory=set)

    def emit(self, result: Any) -> None:
        from ..output import format_result

        if result.reused and result.index in self.quiet:
            return
        line = format_result(result, self.fmt)
        if result.error:
            self.failed(result)
            return
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        if self.copy:
            from ..clipboard import copy_results

            copy_results([line])

    def failed(self, result: Any) -> None:
        print(f"picbeam: {result.path}: {result.host}: {result.error}", file=sys.stderr, flush=True)


def looks_complete(path: Path) -> bool:
    """False when an image whose format has an end marker does not end with it yet (a partial write)."""
    from ..inputs import SNIFF_BYTES, sniff_image

    try:
        with open(path, "rb") as handle:
            mime = sniff_image(handle.read(SNIFF_BYTES))
            handle.seek(max(0, os.fstat(handle.fileno()).st_size - TAIL_BYTES))
            tail = handle.read().rstrip(b"\x00")
    except OSError:
        return True  # gone or unreadable: the engine reports it
    if mime == "image/png":
        return tail.endswith(b"IEND\xaeB`\x82")
    if mime == "image/jpeg":
        return b"\xff\xd9" in tail  # the end-of-image marker never occurs inside JPEG scan data
    if mime == "image/gif":
        return tail.endswith(b";")
    return True


class Settler:
    """Files seen changing, handed on once they have stopped changing and look complete."""

    def __init__(self, settle: float, submit: Callable[[Path], None]) -> None:
        self.settle, self.submit = settle, submit
        self.pending: dict[Path, tuple[tuple[int, int] | None, float]] = {}
        self.sent: dict[Path, tuple[int, int]] = {}
        self.reported: set[Path] = set()

    def changed(self, path: Path) -> None:
        self.pending[path] = (None, time.monotonic())

    def removed(self, path: Path) -> None:
        self.pending.pop(path, None)
        self.sent.pop(path, None)

    def tick(self) -> None:
        now = time.monotonic()
        for path, (seen, since) in list(self.pending.items()):
            try:
                info = path.stat()
            except OSError:
                del self.pending[path]
                continue
            if not stat.S_ISREG(info.st_mode):
                del self.pending[path]
                continue
            signature = (info.st_size, info.st_mtime_ns)
            if signature != seen:
                self.pending[path] = (signature, now)
            elif now - since < self.settle:
                continue
            elif self.sent.get(path) == signature:
                del self.pending[path]  # an event for a state already sent (e.g. a second notification)
            elif looks_complete(path):
                del self.pending[path]
                self.sent[path] = signature
                self.submit(path)
            elif now - since >= INCOMPLETE_GRACE and path not in self.reported:
                self.reported.add(path)
                warn(
                    f"{path}: looks incomplete (no end marker) after {INCOMPLETE_GRACE:.0f} s; waiting for it to change"
                )


@functools.cache
def _default_filter() -> Any:
    import watchfiles

    return watchfiles.DefaultFilter()


def _wanted(change: Any, path: str) -> bool:
    name = os.path.basename(path)
    if name.startswith(".") or name.endswith(TEMPORARY_SUFFIXES):
        return False
    return bool(_default_filter()(change, path))


class Watcher:
    """One watch session: the file watcher, the settler and one batch fed through a queue."""

    def __init__(
        self, folder: Path, batch: Any, report: Report, *, settle: float, recursive: bool, follow_symlinks: bool = False
    ) -> None:
        self.folder, self.batch, self.report = folder, batch, report
        self.settle, self.recursive, self.follow_symlinks = settle, recursive, follow_symlinks
        self.real_folder = os.path.realpath(folder)
        self.queue: queue.Queue[Any] = queue.Queue()
        self.submitted = 0

    def _submit(self, path: Path, *, quiet: bool = False) -> None:
        from ..inputs import Found, leads_outside
        from ..items import printable

        if not self.follow_symlinks and leads_outside(path, self.real_folder):
            warn(
                f"skipped {printable(path)}: a symlink that leads outside {self.folder}/ "
                "(--follow-symlinks to follow it)"
            )
            return
        if quiet:
            self.report.quiet.add(self.submitted)
        self.submitted += 1
        self.queue.put(Found(path, explicit=False))  # not explicit: files that are not images are passed over

    def _feed(self) -> Iterator[Any]:
        while (found := self.queue.get()) is not None:
            yield found

    async def run(self, existing: bool) -> bool:
        """Watch until Ctrl-C; True when stopped by a second Ctrl-C (uploads in flight abandoned)."""
        import watchfiles

        stop = asyncio.Event()
        uploads = asyncio.create_task(self.batch.run(self._feed()))
        on_two_interrupts(stop.set, uploads.cancel)
        settler = Settler(self.settle, self._submit)
        started = False
        async for changes in watchfiles.awatch(self.folder, watch_filter=_wanted, debounce=200, step=50,
                                               rust_timeout=int(TICK * 1000), yield_on_timeout=True,
                                               recursive=self.recursive, stop_event=stop):  # fmt: skip
            if not started:  # the first yield: the watcher is active, nothing written from now on is missed
                started = True
                if existing:
                    await asyncio.to_thread(self._scan)
                print(f"picbeam: watching {self.folder} (host {self.batch.host.name}); Ctrl-C stops",
                      file=sys.stderr, flush=True)  # fmt: skip
            for change, name in changes:
                path = Path(name)
                if change == watchfiles.Change.deleted:
                    settler.removed(path)
                else:
                    settler.changed(path)
            settler.tick()
            if uploads.done() or self.batch.summary.ledger_error:
                break
        self.batch.stop()  # start nothing new; uploads in flight finish
        self.queue.put(None)
        try:
            await uploads
        except asyncio.CancelledError:
            return True
        return False

    def _scan(self) -> None:
        from ..inputs import Discovery

        discovery = Discovery([self.folder], recursive=self.recursive, follow_symlinks=self.follow_symlinks)
        for found in discovery:
            if not _wanted(None, str(found.path)):
                continue
            self._submit(found.path, quiet=True)
        for line in discovery.summary():
            warn(line)
