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
    REUSED,
    Run,
    command,
    fail,
    on_two_interrupts,
    open_hosts,
    output_format,
    report_plugin_errors,
    run_async,
    warn,
)

# Names that are still being written by their program, or are not the user's files.
TEMPORARY_SUFFIXES = (".part", ".partial", ".crdownload", ".download", ".tmp", ".temp", ".swp", "~")
# How long a file that stopped changing but lacks its end marker is waited for before it is uploaded as it
# is (ten settle periods, 2 to 30 s): the marker check only delays a file, it never holds one back for good.
INCOMPLETE_GRACE = 30.0
PNG_END = b"IEND\xaeB`\x82"
TICK = 0.1
TAIL_BYTES = 4096


def register(app: typer.Typer) -> None:
    app.command("watch", no_args_is_help=True)(command(watch, "watch"))


def watch(
    folder: Annotated[Path, typer.Argument(help="The folder to watch.", show_default=False)],
    copy: Annotated[bool, typer.Option("--copy", help="Put each result on the clipboard as it lands.")] = False,
    existing: Annotated[
        bool, typer.Option("--existing", help="Also upload images already in the folder (those the ledger lacks).")
    ] = False,
    settle: Annotated[
        float, typer.Option("--settle", min=0.05, max=600, help="Seconds a file must stay unchanged before upload.")
    ] = 1.0,
    *,
    options: dict[str, Any],
    process: dict[str, Any],
) -> None:
    """Upload each new or changed image in a folder once it is completely written; Ctrl-C stops.

    It takes what `upload` takes: --set, the processing flags, --include/--exclude, --dry-run, --format.
    """
    from ..inputs import Discovery
    from ..mirrors import open_uploads

    run = Run(options)
    plugins, config, registry = open_hosts(run.hosts_dirs)
    fmt = output_format(run.format, config)
    if not folder.is_dir():
        fail(f"{folder}: not a folder")
    report = Report(fmt, copy, dry_run=run.dry_run)
    batch = open_uploads(registry, run.host or [config.default_host()], config, fallbacks=run.fallback,
                         overrides=run.overrides, plugins=plugins, **run.batch_options(), emit=report.emit,
                         report=report.failed, process=process)  # fmt: skip
    selection = Discovery([folder], include=run.include, exclude=run.exclude)
    watcher = Watcher(folder, batch, report, settle=settle, recursive=run.recursive,
                      follow_symlinks=run.follow_symlinks, selection=selection)  # fmt: skip
    with batch:
        interrupted = run_async(watcher.run(existing))
    summary = batch.summary
    for line in batch.warnings:
        warn(line)
    report_plugin_errors(plugins)
    warn(f"stopped: {summary.uploaded} uploaded, {summary.reused} {REUSED}, {summary.failed} failed"
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
    dry_run: bool = False
    quiet: set[int] = field(default_factory=set)

    def emit(self, result: Any) -> None:
        from ..output import format_result
        from .upload import dry_run_line

        if result.reused and result.index in self.quiet:
            return
        line = format_result(result, self.fmt)
        if self.dry_run and not result.error:
            line = dry_run_line(result, self.fmt, explain=False)
        if result.error:
            self.failed(result)
            return
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        if self.copy and not self.dry_run:
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
        return PNG_END in tail  # bytes after IEND (a tool's trailer) follow a complete image
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
        self.grace = min(INCOMPLETE_GRACE, max(2.0, 10 * settle))

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
            elif (complete := looks_complete(path)) or now - since >= self.grace:
                if not complete:
                    warn(f"{path}: no end marker, but unchanged for {self.grace:g} s: uploading it as it is")
                del self.pending[path]
                self.sent[path] = signature
                self.submit(path)


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
        self,
        folder: Path,
        batch: Any,
        report: Report,
        *,
        settle: float,
        recursive: bool,
        follow_symlinks: bool = False,
        selection: Any = None,
    ) -> None:
        self.folder, self.batch, self.report = folder, batch, report
        self.settle, self.recursive, self.follow_symlinks = settle, recursive, follow_symlinks
        self.real_folder = os.path.realpath(folder)
        self.selection = selection  # a Discovery whose --include/--exclude choose the files
        self.queue: queue.Queue[Any] = queue.Queue()
        self.submitted = 0

    def _submit(self, path: Path, *, quiet: bool = False) -> None:
        from ..inputs import Found, leads_outside
        from ..items import printable

        if self.selection is not None and not self.selection.wants(path, self.folder):
            return
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
