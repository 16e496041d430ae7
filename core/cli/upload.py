"""`picbeam upload`: files and folders to a host, one result line per file on stdout."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer

from ..clipboard import copy_results
from ..items import printable
from ..options import PROCESS_PANEL
from ..output import format_result
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
from .progress import ProgressReport


def retries_note(retries: int) -> str:
    return f", {retries} {'retry' if retries == 1 else 'retries'}" if retries else ""


def register(app: typer.Typer) -> None:
    app.command("upload", no_args_is_help=True)(command(upload, "upload"))


def upload(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Files, folders and http(s) addresses to upload; - reads them from stdin, one per line.",
            show_default=False,
        ),
    ] = None,
    clipboard: Annotated[
        bool, typer.Option("--clipboard", help="Upload the image on the clipboard (before any files named).")
    ] = False,
    copy: Annotated[bool, typer.Option("--copy", help="Put the results on the clipboard as well.")] = False,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            rich_help_panel=PROCESS_PANEL,
            help="With --dry-run: process each file and say what was done to it.",
        ),
    ] = False,
    *,
    options: dict[str, Any],
    process: dict[str, Any],
) -> None:
    """Upload files (and the images in folders) to a host; print one result per file, in order."""
    from ..inputs import Discovery, expected, read_inputs
    from ..mirrors import open_uploads

    run = Run(options)
    if explain and not run.dry_run:
        fail("--explain goes with --dry-run: picbeam upload --dry-run --explain ...")
    # Lazy: a one-file upload (a Typora paste) asks only the plugins that may define the hosts it names.
    plugins, config, registry = open_hosts(run.hosts_dirs, lazy=True)
    fmt = output_format(run.format, config)
    if not paths and not clipboard:
        fail("name the files or folders to upload, or use --clipboard")
    cleanup = ExitStack()  # the clipboard's image lives in a temporary folder until the run ends
    named = read_inputs(paths or (), sys.stdin)
    if paths and not named and not clipboard:
        fail("standard input named no files or URLs (one per line)")
    inputs = [_clipboard_image(cleanup), *named] if clipboard else named

    def walk() -> Discovery:
        return Discovery(
            inputs,
            recursive=run.recursive,
            include=run.include,
            exclude=run.exclude,
            follow_symlinks=run.follow_symlinks,
        )

    discovery = walk()
    dry_run = run.dry_run
    progress = ProgressReport(enabled=sys.stderr.isatty() and not dry_run)
    copied: list[str] = []

    def emit(result: Any) -> None:
        line = dry_run_line(result, fmt, explain) if dry_run and not result.error else format_result(result, fmt)
        progress.print(line)
        if dry_run and fmt != "json":  # stdout keeps one line per file; the request is for the person
            for detail in request_lines(result.extra.get("request")):
                print(detail, file=sys.stderr, flush=True)
        if copy and result.ok and not dry_run:
            copied.append(line)
        if result.error:
            progress.error(f"{result.path}: {result.host}: {result.error}")

    with cleanup:
        batch = open_uploads(
            registry,
            run.host or [config.default_host()],
            config,
            fallbacks=run.fallback,
            overrides=run.overrides,
            report=lambda result: progress.error(f"{result.path}: {result.host}: {result.error}"),
            plugins=plugins,
            **run.batch_options(),
            emit=emit,
            on_progress=progress.update,
            process=process,
            explain=explain,
        )
        with batch, progress:
            progress.count_ahead(walk, expected)
            summary = run_async(_run_interruptible(batch, discovery))
    for line in [*discovery.summary(non_images=summary.skipped), *batch.processing.warnings, *batch.warnings]:
        warn(line)
    report_plugin_errors(plugins)
    if copied:
        copy_results(copied)
    if summary.interrupted:
        warn(
            f"interrupted: {summary.uploaded} uploaded, {summary.reused} {REUSED}, {summary.failed} failed, "
            f"{summary.not_started} not started"
        )
        raise typer.Exit(EXIT_INTERRUPTED)
    if summary.ledger_error:
        warn(ledger_stopped(summary))
    files = summary.uploaded + summary.reused + summary.failed
    if files == 0:
        for folder in (p for p in inputs if isinstance(p, Path) and p.is_dir()):
            warn(f"no files to upload in {printable(folder)}")
    elif dry_run and files > 1:
        warn(
            f"dry run: {summary.uploaded} to upload, {summary.reused} {REUSED}, {summary.failed} failed; "
            "nothing was sent"
        )
    elif files > 1 or summary.retries:
        warn(
            f"done: {summary.uploaded} uploaded, {summary.reused} {REUSED}, {summary.failed} failed "
            f"in {summary.seconds:.1f} s{retries_note(summary.retries)}"
        )
    if summary.failed or summary.ledger_error:
        raise typer.Exit(EXIT_FAILED)


def ledger_stopped(summary: Any) -> str:
    """The one line for a run the ledger stopped: what failed, where, and what to do."""
    return f"{summary.ledger_error}; stopped: free space or choose another --ledger, then run again"


def dry_run_line(result: Any, fmt: str, explain: bool) -> str:
    """What ``--dry-run`` prints for one file; with ``--explain``, what processing did to it."""
    extra = result.extra
    if fmt == "json":
        record = {**result.to_json(), "dry_run": True}
        if explain and not result.reused:
            record.update(name=extra["name"], mime=extra["mime"], processing=extra["notes"])
        if "request" in extra:
            record["request"] = extra["request"]
        return json.dumps(record, ensure_ascii=False)
    if result.reused:
        return f"{result.path}: {REUSED}: {result.url}"
    if not explain:
        return f"would upload {result.path} ({result.bytes} bytes, {extra['mime']}) to {result.host}"
    done = "; ".join(note for note in extra["notes"] if not note.startswith("warning: ")) or "no processing"
    sent = f"{extra['name']} ({result.bytes} bytes, {extra['mime']})"
    return f"would upload {result.path} as {sent} to {result.host}: {done}"


def request_lines(request: dict[str, Any] | None) -> list[str]:
    """The request a dry run would send, for stderr under its file's line: what setting up a new host needs."""
    if not request:
        return []
    lines = [f"  {request['method']} {request['url']}"]
    if request["body"] == "multipart":
        lines.append(
            f"  multipart body: file field {request['file_field']!r}, file name {request['file_name']!r}, "
            f"type {request['mime']}"
        )
        lines.extend(f"  form {key}: {value}" for key, value in request["form"].items())
    else:
        lines.append(f"  binary body: the file {request['file_name']!r}, type {request['mime']}")
    lines.extend(f"  header {key}: {value}" for key, value in request["headers"].items())
    return lines


def _clipboard_image(cleanup: ExitStack) -> Path:
    """Save the clipboard's image in a temporary folder that ``cleanup`` removes."""
    from ..clipboard import save_image

    folder = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="picbeam-clipboard-")))
    try:
        return save_image(folder)
    except BaseException:
        cleanup.close()
        raise


async def _run_interruptible(batch: Any, discovery: Any) -> Any:
    """First Ctrl-C: start nothing new, let uploads in flight finish. Second: stop at once."""
    task = asyncio.current_task()
    on_two_interrupts(batch.stop, lambda: task.cancel() if task is not None else None)
    try:
        return await batch.run(discovery)
    except asyncio.CancelledError:
        batch.summary.interrupted = True
        return batch.summary
