"""`picbeam delete`: removing uploads from their hosts and marking them deleted in the ledger."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from ..errors import AlreadyGone, ConfigError, UploadError
from ..ledger import Ledger, public_record
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
    import aiohttp

    from ..engine import USER_AGENT
    from ..redaction import Redactor

    failed = 0
    hosts: dict[str, Any] = {}  # one prepared host per name, so its connections (SFTP) are shared
    async with aiohttp.ClientSession(trust_env=True, headers={"User-Agent": USER_AGENT}) as session:
        for row in rows:
            if row["deleted"]:
                warn(f"{row['url']}: already deleted")
                continue
            try:
                if row["host"] not in hosts:
                    hosts[row["host"]] = registry.select(row["host"], overrides).prepared()
                host = hosts[row["host"]]
            except ConfigError as exc:
                warn(f"{row['url']}: {exc}")
                failed += 1
                continue
            redact = Redactor(host.secret_values())
            try:
                await host.delete(public_record(row), session)
            except AlreadyGone as exc:  # what the delete was for is done: the ledger says so too
                record.mark_deleted(row["id"])
                warn(f"{row['url']}: {row['host']}: already gone, marked deleted ({redact(exc.message)})")
                print(f"deleted {row['url']}")
                continue
            except UploadError as exc:
                warn(f"{row['url']}: {row['host']}: cannot delete: {redact(exc.message)}")
                failed += 1
                continue
            except (aiohttp.ClientError, TimeoutError) as exc:
                warn(f"{row['url']}: {row['host']}: cannot delete: {redact(str(exc) or type(exc).__name__)}")
                failed += 1
                continue
            record.mark_deleted(row["id"])
            print(f"deleted {row['url']}")
        for name, host in hosts.items():
            try:
                await host.finish(session)  # closes what the host opened (an SSH connection)
            except (UploadError, aiohttp.ClientError, TimeoutError) as exc:
                warn(f"{name}: {Redactor(host.secret_values())(str(exc))}")
    return failed
