"""`picbeam delete`: removing uploads from their hosts and marking them deleted in the ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from ..ledger import Ledger
from .common import EXIT_FAILED, HostsDirOption, complete_hosts, fail, open_hosts, warn
from .history import LedgerOption, open_ledger


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
    if not (urls or last or record_id):
        fail("say what to delete: URL..., --last N or --id ID")
    with open_ledger(ledger) as record:
        rows: list[dict[str, Any]] = []
        for url in urls or ():
            row = record.by_url(url)
            if row is None:
                fail(f"{url} is not in the ledger ({record.path}); `picbeam history` lists what is")
            rows.append(row)
        for number in record_id or ():
            row = record.get(number)
            if row is None:
                fail(f"no upload with id {number} in the ledger")
            rows.append(row)
        if last:
            newest = record.last(last, host=host)
            if not newest:
                where = f" to host '{host}'" if host else ""
                warn(f"nothing to delete: the ledger ({record.path}) has no upload{where} left")
            rows.extend(newest)
        _, _, registry = open_hosts(hosts_dir)
        failed = asyncio.run(_delete_all(rows, registry, overrides or (), record))
    if failed:
        raise typer.Exit(EXIT_FAILED)


async def _delete_all(rows: list[dict[str, Any]], registry: Any, overrides: Any, record: Ledger) -> int:
    from ..deleting import delete_uploads

    def report(row: Mapping[str, Any], error: str | None) -> None:
        if error is None:
            print(f"deleted {row['url']}")
        else:
            warn(f"{row['url']}: {error}")

    return await delete_uploads(
        rows, registry, record, overrides=overrides, report=report, note=lambda row, text: warn(f"{row['url']}: {text}")
    )
