"""`picbeam links`: find the dead image links in a blog; with --fix, re-host them and rewrite the links."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import HostsDirOption, fail, run_async
from .migrate import (
    BackupOption,
    DryRunOption,
    EncodingOption,
    HostOption,
    JobsOption,
    LedgerOption,
    RetriesOption,
    RootOption,
    finish,
    open_run,
)


def register(app: typer.Typer) -> None:
    app.command(no_args_is_help=True)(links)


def links(
    paths: Annotated[list[Path], typer.Argument(help="Markdown and HTML files and folders (searched recursively).")],
    fix: Annotated[
        bool, typer.Option("--fix", help="Re-host each dead image from a copy and rewrite its links.")
    ] = False,
    host: HostOption = None,
    search: Annotated[
        list[Path] | None,
        typer.Option(
            "--search",
            help="With --fix: a folder to look in for a file of the same content (repeatable).",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds allowed per URL (default: 10).", show_default=False)
    ] = 10.0,
    per_domain: Annotated[
        int,
        typer.Option(
            "--per-domain", min=1, max=64, help="Requests at once to one domain (default: 4).", show_default=False
        ),
    ] = 4,
    root: RootOption = None,
    dry_run: DryRunOption = False,
    backup: BackupOption = False,
    jobs: JobsOption = None,
    retries: RetriesOption = None,
    ledger: LedgerOption = None,
    encoding: EncodingOption = None,
    hosts_dir: HostsDirOption = None,
) -> None:
    """Check every image link in the files (HEAD, then a ranged GET); report the dead ones."""
    from ..links import check_links, fix_links

    if (search or dry_run or backup) and not fix:
        fail("--search, --dry-run and --backup go with --fix: picbeam links --fix --host H ...")
    report, documents = run_async(
        check_links(paths, root=root, encoding=encoding, timeout=timeout, per_domain=per_domain)
    )
    if not fix or not report.dead_urls:
        finish(report, "", summary=report.check_summary())
        return
    with open_run(host, jobs, retries, ledger, dry_run, hosts_dir) as batch:
        run_async(
            fix_links(report, documents, batch, search=search or (), timeout=timeout, per_domain=per_domain,
                      dry_run=dry_run, backup=backup)
        )  # fmt: skip
    finish(report, "would re-host" if dry_run else "re-hosted", summary=report.check_summary())
