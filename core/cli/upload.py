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
from ..output import FORMATS, format_result
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
from .progress import ProgressReport

PROCESSING = "Processing (see the README's 'Processing')"


def register(app: typer.Typer) -> None:
    app.command(no_args_is_help=True)(upload)


def upload(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files and folders to upload.", show_default=False)] = None,
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            "-H",
            help="Host name (default: PICBEAM_HOST, config default_host, or 'local'); repeat it to send every "
            "file to every host (mirrors: stdout has the first host's URL).",
            show_default=False,
        ),
    ] = None,
    fallback: FallbackOption = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, max=256, help="Uploads in flight at once (default: 4).")
    ] = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Include sub-folders.")] = False,
    include: Annotated[
        list[str] | None, typer.Option("--include", help="Only files in folders matching this glob (repeatable).")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Skip files in folders matching this glob (repeatable).")
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", "-f", help=f"Output format: {', '.join(FORMATS)} (default: url).")
    ] = None,
    follow_symlinks: Annotated[
        bool,
        typer.Option("--follow-symlinks", help="In folders, follow symbolic links that lead outside the folder named."),
    ] = False,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a host field for this run: FIELD=VALUE, headers.NAME=VALUE (repeatable)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be uploaded; send nothing.")] = False,
    retries: Annotated[
        int | None, typer.Option("--retries", min=0, max=20, help="Retries of transient failures (default: 3).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Upload even files the ledger says this host already has.")
    ] = False,
    ledger: Annotated[
        Path | None, typer.Option("--ledger", help="Ledger database (also PICBEAM_LEDGER).", show_default=False)
    ] = None,
    no_ledger: Annotated[bool, typer.Option("--no-ledger", help="Neither consult nor write the ledger.")] = False,
    clipboard: Annotated[
        bool, typer.Option("--clipboard", help="Upload the image on the clipboard (before any files named).")
    ] = False,
    copy: Annotated[bool, typer.Option("--copy", help="Put the results on the clipboard as well.")] = False,
    hosts_dir: HostsDirOption = None,
    keep_metadata: Annotated[
        bool | None,
        typer.Option(
            "--keep-metadata/--strip-metadata",
            show_default=False,
            rich_help_panel=PROCESSING,
            help="Send EXIF/XMP/IPTC (GPS location, camera serial...) as they are (default: strip).",
        ),
    ] = None,
    apply_orientation: Annotated[
        bool | None,
        typer.Option(
            "--apply-orientation",
            show_default=False,
            rich_help_panel=PROCESSING,
            help="Rotate the pixels as the EXIF orientation says (re-encodes; needs Pillow).",
        ),
    ] = None,
    convert: Annotated[
        str | None,
        typer.Option(
            "--convert",
            show_default=False,
            rich_help_panel=PROCESSING,
            help="Convert images to webp, avif, jpeg or png (none: keep the format).",
        ),
    ] = None,
    quality: Annotated[
        int | None,
        typer.Option(
            "--quality",
            min=1,
            max=100,
            show_default=False,
            rich_help_panel=PROCESSING,
            help="Quality 1-100 for JPEG, WebP and AVIF (recompresses).",
        ),
    ] = None,
    max_width: Annotated[
        int | None,
        typer.Option(
            "--max-width",
            min=0,
            show_default=False,
            rich_help_panel=PROCESSING,
            help="Shrink wider images to this width (never enlarges).",
        ),
    ] = None,
    max_height: Annotated[
        int | None,
        typer.Option(
            "--max-height",
            min=0,
            show_default=False,
            rich_help_panel=PROCESSING,
            help="Shrink taller images to this height (never enlarges).",
        ),
    ] = None,
    watermark: Annotated[
        str | None,
        typer.Option(
            "--watermark", show_default=False, rich_help_panel=PROCESSING, help="Draw this text on each image."
        ),
    ] = None,
    watermark_image: Annotated[
        str | None,
        typer.Option(
            "--watermark-image",
            show_default=False,
            rich_help_panel=PROCESSING,
            help="Draw this image (a PNG with transparency) on each image.",
        ),
    ] = None,
    watermark_position: Annotated[
        str | None,
        typer.Option(
            "--watermark-position",
            show_default=False,
            rich_help_panel=PROCESSING,
            help="top-left, top, top-right, left, center, right, bottom-left, bottom, "
            "bottom-right (default: bottom-right).",
        ),
    ] = None,
    watermark_opacity: Annotated[
        float | None,
        typer.Option(
            "--watermark-opacity", show_default=False, rich_help_panel=PROCESSING, help="0 to 1 (default: 0.5)."
        ),
    ] = None,
    watermark_scale: Annotated[
        float | None,
        typer.Option(
            "--watermark-scale",
            show_default=False,
            rich_help_panel=PROCESSING,
            help="Watermark width as a fraction of the image width (default: 0.25).",
        ),
    ] = None,
    watermark_font: Annotated[
        str | None,
        typer.Option(
            "--watermark-font",
            show_default=False,
            rich_help_panel=PROCESSING,
            help="Font file for --watermark (default: Pillow's own font).",
        ),
    ] = None,
    rename: Annotated[
        str | None,
        typer.Option(
            "--rename",
            show_default=False,
            rich_help_panel=PROCESSING,
            help='Name uploads from a template, e.g. "{year}/{month}/{sha256:8}{ext}".',
        ),
    ] = None,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            rich_help_panel=PROCESSING,
            help="With --dry-run: process each file and say what was done to it.",
        ),
    ] = False,
) -> None:
    """Upload files (and the images in folders) to a host; print one result per file, in order."""
    from ..inputs import Discovery
    from ..mirrors import open_uploads

    if explain and not dry_run:
        fail("--explain goes with --dry-run: picbeam upload --dry-run --explain ...")
    plugins, config, registry = open_hosts(hosts_dir)
    fmt = output_format(fmt, config)
    if not paths and not clipboard:
        fail("name the files or folders to upload, or use --clipboard")
    cleanup = ExitStack()  # the clipboard's image lives in a temporary folder until the run ends
    inputs = [_clipboard_image(cleanup), *(paths or ())] if clipboard else list(paths or ())
    discovery = Discovery(
        inputs, recursive=recursive, include=include or (), exclude=exclude or (), follow_symlinks=follow_symlinks
    )
    progress = ProgressReport(enabled=sys.stderr.isatty() and not dry_run)
    copied: list[str] = []

    def emit(result: Any) -> None:
        line = dry_run_line(result, fmt, explain) if dry_run and not result.error else format_result(result, fmt)
        progress.print(line)
        if copy and result.ok and not dry_run:
            copied.append(line)
        if result.error:
            progress.error(f"{result.path}: {result.host}: {result.error}")

    process = {
        "keep_metadata": keep_metadata,
        "apply_orientation": apply_orientation,
        "convert": convert,
        "quality": quality,
        "max_width": max_width,
        "max_height": max_height,
        "watermark": watermark,
        "watermark_image": watermark_image,
        "watermark_position": watermark_position,
        "watermark_opacity": watermark_opacity,
        "watermark_scale": watermark_scale,
        "watermark_font": watermark_font,
        "rename": rename,
    }
    with cleanup:
        batch = open_uploads(
            registry,
            host or [config.default_host()],
            config,
            fallbacks=fallback or (),
            overrides=overrides or (),
            report=lambda result: progress.error(f"{result.path}: {result.host}: {result.error}"),
            plugins=plugins,
            jobs=jobs,
            retries=retries,
            ledger=False if no_ledger else (ledger or True),
            force=force,
            dry_run=dry_run,
            emit=emit,
            on_progress=progress.update,
            process=process,
            explain=explain,
        )
        with batch, progress:
            summary = asyncio.run(_run_interruptible(batch, discovery))
    for line in [*discovery.summary(non_images=summary.skipped), *batch.processing.warnings, *batch.warnings]:
        warn(line)
    if copied:
        copy_results(copied)
    if summary.interrupted:
        warn(
            f"interrupted: {summary.uploaded} uploaded, {summary.reused} reused, {summary.failed} failed, "
            f"{summary.not_started} not started"
        )
        raise typer.Exit(EXIT_INTERRUPTED)
    if summary.ledger_error:
        warn(ledger_stopped(summary))
    files = summary.uploaded + summary.reused + summary.failed
    if files > 1 or summary.retries:
        retried = f", {summary.retries} retries" if summary.retries else ""
        warn(
            f"done: {summary.uploaded} uploaded, {summary.reused} already there, {summary.failed} failed "
            f"in {summary.seconds:.1f} s{retried}"
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
        return json.dumps(record)
    if result.reused:
        return f"would reuse {result.url}"
    if not explain:
        return f"would upload {result.path} ({result.bytes} bytes, {extra['mime']}) to {result.host}"
    done = "; ".join(note for note in extra["notes"] if not note.startswith("warning: ")) or "no processing"
    sent = f"{extra['name']} ({result.bytes} bytes, {extra['mime']})"
    return f"would upload {result.path} as {sent} to {result.host}: {done}"


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
