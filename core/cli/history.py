"""`picbeam history` and `picbeam delete`: what the ledger recorded, and removing uploads from hosts."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from ..config import Config
from ..errors import ConfigError, UploadError
from ..ledger import Ledger, export, ledger_path, public_record
from .common import EXIT_FAILED, HostsDirOption, JsonOption, fail, open_hosts, warn

LedgerOption = Annotated[
    Path | None, typer.Option("--ledger", help="Ledger database (also PICBEAM_LEDGER).", show_default=False)
]


def register(app: typer.Typer) -> None:
    app.command("history")(history)
    app.command("delete")(delete)


def open_ledger(path: Path | None) -> Ledger:
    location = ledger_path(path, Config.load())
    if not location.exists():
        fail(f"no ledger at {location} yet: nothing has been uploaded with it")
    return Ledger(location)


def history(
    host: Annotated[str | None, typer.Option("--host", "-H", help="Only uploads to this host.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only uploads since DATE (2026-11-01, or 7d, 12h).")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the newest N.")] = None,
    as_json: JsonOption = False,
    export_as: Annotated[str | None, typer.Option("--export", help="Write every field as csv or json.")] = None,
    ledger: LedgerOption = None,
) -> None:
    """List the uploads the ledger recorded, oldest first."""
    if export_as not in (None, "csv", "json"):
        fail("--export takes csv or json")
    with open_ledger(ledger) as record:
        rows = record.history(host=host, since=parse_since(since) if since else None, limit=limit)
    if export_as == "json":
        print(json.dumps([public_record(row) for row in rows], ensure_ascii=False, indent=2))
    elif export_as == "csv" or as_json:
        for line in export(rows, "csv" if export_as else "json"):
            print(line)
    else:
        for row in rows:
            when = public_record(row)["created"]
            gone = "  (deleted)" if row["deleted"] else ""
            print(f"{row['id']:>6}  {when}  {row['host']:<10} {row['url']}  {row['path']}{gone}")


def parse_since(text: str) -> datetime:
    relative = re.fullmatch(r"(\d+)\s*([dhm])", text.strip())
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        return datetime.now() - timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: amount})
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--since {text!r}: expected a date such as 2026-11-01, or 7d, 12h, 30m") from None


def delete(
    urls: Annotated[
        list[str] | None, typer.Argument(help="URLs (or delete URLs) of uploads to remove.", show_default=False)
    ] = None,
    last: Annotated[int | None, typer.Option("--last", min=1, help="Remove the newest N uploads.")] = None,
    record_id: Annotated[
        list[int] | None, typer.Option("--id", help="Remove the upload with this ledger id (repeatable).")
    ] = None,
    host: Annotated[str | None, typer.Option("--host", "-H", help="With --last: only uploads to this host.")] = None,
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
            rows.extend(record.last(last, host=host))
        _, _, registry = open_hosts(hosts_dir)
        failed = asyncio.run(_delete_all(rows, registry, overrides or (), record))
    if failed:
        raise typer.Exit(EXIT_FAILED)


async def _delete_all(rows: list[dict[str, Any]], registry: Any, overrides: Any, record: Ledger) -> int:
    import aiohttp

    from ..engine import USER_AGENT
    from ..secrets import Redactor

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
