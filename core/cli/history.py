"""`picbeam history`: what the ledger recorded."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from ..config import Config
from ..errors import ConfigError
from ..ledger import Ledger, export, ledger_path, public_record
from .common import JsonOption, LedgerOption, fail


def register(app: typer.Typer) -> None:
    app.command("history")(history)


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
