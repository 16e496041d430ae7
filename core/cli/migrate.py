"""`picbeam migrate`: move a blog's images to a host and point its posts at the new URLs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import EXIT_FAILED, HostsDirOption, open_hosts, run_async, warn

HostOption = Annotated[
    str | None, typer.Option("--host", "-H", help="Host to upload the images to (default: the default host).")
]
LedgerOption = Annotated[
    Path | None, typer.Option("--ledger", help="Ledger database (also PICBEAM_LEDGER).", show_default=False)
]
JobsOption = Annotated[
    int | None, typer.Option("--jobs", "-j", min=1, max=256, help="Uploads in flight at once (default: 4).")
]
RetriesOption = Annotated[
    int | None, typer.Option("--retries", min=0, max=20, help="Retries of transient failures (default: 3).")
]
RootOption = Annotated[
    Path | None,
    typer.Option(
        "--root",
        help="Folder that absolute paths (/images/a.png) are relative to (default: found).",
        show_default=False,
    ),
]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Print a unified diff of the changes; change nothing.")]
BackupOption = Annotated[bool, typer.Option("--backup", help="Keep each changed file's old content as NAME.orig.")]
EncodingOption = Annotated[
    str | None,
    typer.Option("--encoding", help="The files' encoding (default: UTF-8, else as declared or detected).",
                 show_default=False),
]  # fmt: skip
TimeoutOption = Annotated[
    float,
    typer.Option("--timeout", min=0.1, help="Seconds allowed for each download (default: 60).", show_default=False),
]
MaxDownloadOption = Annotated[
    int,
    typer.Option(
        "--max-download", min=1, help="Largest image to download, in bytes (default: 50 MiB).", show_default=False
    ),
]


def register(app: typer.Typer) -> None:
    app.command(no_args_is_help=True)(migrate)


def migrate(
    paths: Annotated[list[Path], typer.Argument(help="Markdown and HTML files and folders (searched recursively).")],
    host: HostOption = None,
    root: RootOption = None,
    remote: Annotated[
        bool, typer.Option("--remote", help="Move images on other hosts too, not only local ones.")
    ] = False,
    from_domain: Annotated[
        list[str] | None,
        typer.Option(
            "--from-domain",
            help="Move remote images on this domain (and its subdomains; repeatable).",
            show_default=False,
        ),
    ] = None,
    dry_run: DryRunOption = False,
    backup: BackupOption = False,
    jobs: JobsOption = None,
    retries: RetriesOption = None,
    ledger: LedgerOption = None,
    encoding: EncodingOption = None,
    timeout: TimeoutOption = 60.0,
    max_download: MaxDownloadOption = 50 * 1024 * 1024,
    hosts_dir: HostsDirOption = None,
) -> None:
    """Upload every image a blog's posts use (once each) and rewrite the links to the new URLs."""
    from ..migrate import MigrateOptions
    from ..migrate import migrate as run

    options = MigrateOptions(root=root, remote=remote, from_domains=tuple(from_domain or ()), encoding=encoding)
    with open_run(host, jobs, retries, ledger, dry_run, hosts_dir) as batch:
        report = run_async(
            run(paths, batch, options, dry_run=dry_run, backup=backup, limit=max_download, timeout=timeout)
        )  # fmt: skip
    finish(report, "would move" if dry_run else "moved")


def open_run(
    host: str | None,
    jobs: int | None,
    retries: int | None,
    ledger: Path | None,
    dry_run: bool,
    hosts_dir: list[Path] | None,
) -> Any:
    """The batch (a context manager that closes it) for a migrate or links --fix run: the host, the
    ledger, processing as configured."""
    from ..api import open_batch

    plugins, config, registry = open_hosts(hosts_dir)
    chosen = registry.select(host or config.default_host())
    return open_batch(
        chosen, config, plugins=plugins, jobs=jobs, retries=retries, ledger=ledger or True, dry_run=dry_run
    )


def finish(report: Any, verb: str, summary: str = "") -> None:
    """Print the diffs (a dry run), every problem as file:line: url: why, and the summary; exit 1 when
    anything was left as it was."""
    for diff in report.diffs:
        sys.stdout.write(diff)
    for problem in report.problems:
        warn(str(problem))
    for line in (summary, report.summary(verb) if verb else ""):
        if line:
            warn(line)
    if report.problems or report.failed:
        raise typer.Exit(EXIT_FAILED)
