"""`picbeam delete`: removing uploads from their hosts and marking them deleted in the ledger."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import (
    EXIT_FAILED,
    EXIT_USAGE,
    HostsDirOption,
    LedgerOption,
    complete_hosts,
    fail,
    open_hosts,
    run_async,
    warn,
)
from .history import open_ledger


def register(app: typer.Typer) -> None:
    app.command("delete")(delete)


def delete(
    urls: Annotated[
        list[str] | None, typer.Argument(help="URLs (or delete URLs) of uploads to remove.", show_default=False)
    ] = None,
    last: Annotated[int | None, typer.Option("--last", min=1, help="Remove the newest N uploads.")] = None,
    record_id: Annotated[
        list[int] | None, typer.Option("--id", help="Remove the upload with this ledger id (repeatable).")
    ] = None,
    host: Annotated[
        str | None,
        typer.Option("--host", "-H", help="With --last: only uploads to this host.", autocompletion=complete_hosts),
    ] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a host field: FIELD=VALUE.")] = None,
    ledger: LedgerOption = None,
    hosts_dir: HostsDirOption = None,
) -> None:
    """Remove uploads from their host (where it has a delete API) and mark them deleted in the ledger."""
    from ..deleting import delete_rows, find_rows

    if not (urls or last or record_id):
        fail("say what to delete: URL..., --last N or --id ID")
    with open_ledger(ledger) as record:
        rows = find_rows(record, urls or (), record_id or (), last, host)
        if last and len(rows) == len(urls or ()) + len(record_id or ()):
            where = f" to host '{host}'" if host else ""
            warn(f"nothing to delete: the ledger ({record.path}) has no upload{where} left")
        _, _, registry = open_hosts(hosts_dir)
        outcomes = run_async(delete_rows(rows, registry, overrides or (), record))
    for outcome in outcomes:
        if outcome.ok:
            if outcome.note:
                warn(f"{outcome.url}: {outcome.host}: {outcome.note}")
            print(f"deleted {outcome.url}")
        elif not outcome.url:  # the host could not close what it opened
            warn(f"{outcome.host}: {outcome.error}")
        elif outcome.config_error or outcome.error == "already deleted":
            warn(f"{outcome.url}: {outcome.error}")
        else:
            warn(f"{outcome.url}: {outcome.host}: {outcome.error}")
    failed = [o for o in outcomes if not o.ok and o.error != "already deleted"]
    if any(o.config_error for o in failed):
        raise typer.Exit(EXIT_USAGE)  # a configuration error (a missing ${VAR}), as everywhere else
    if failed:
        raise typer.Exit(EXIT_FAILED)
