"""Removing uploads from their hosts and marking them deleted in the ledger: `picbeam delete` and the
web app's delete button both come here."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import AlreadyGone, ConfigError, UploadError
from .ledger import Ledger, public_record


async def delete_uploads(
    rows: Sequence[Mapping[str, Any]],
    registry: Any,
    record: Ledger,
    *,
    overrides: Sequence[str] = (),
    report: Callable[[Mapping[str, Any], str | None], None] = lambda row, error: None,
    note: Callable[[Mapping[str, Any], str], None] = lambda row, text: None,
) -> int:
    """Delete each ledger row's upload on its host; ``report(row, error)`` is called once per row (error
    None when it was deleted), ``note(row, text)`` when the host said it was gone already (which counts as
    deleted). Returns how many could not be deleted. Secrets never appear in an error."""
    import aiohttp

    from .engine import USER_AGENT
    from .redaction import Redactor

    failed = 0
    hosts: dict[str, Any] = {}  # one prepared host per name, so its connections (SFTP) are shared
    async with aiohttp.ClientSession(trust_env=True, headers={"User-Agent": USER_AGENT}) as session:
        for row in rows:
            error = await _delete_one(row, registry, record, overrides, hosts, session, note)
            failed += error is not None and not row["deleted"]  # one already deleted is only a warning
            report(row, error)
        for name, host in hosts.items():
            try:
                await host.finish(session)  # closes what the host opened (an SSH connection)
            except (UploadError, aiohttp.ClientError, TimeoutError) as exc:
                report({"url": name, "host": name}, Redactor(host.secret_values())(str(exc)))
    return failed


async def _delete_one(row: Mapping[str, Any], registry: Any, record: Ledger, overrides: Sequence[str],
                      hosts: dict[str, Any], session: Any,
                      note: Callable[[Mapping[str, Any], str], None]) -> str | None:  # fmt: skip
    import aiohttp

    from .redaction import Redactor

    if row["deleted"]:
        return "already deleted"
    try:
        if row["host"] not in hosts:
            hosts[row["host"]] = registry.select(row["host"], overrides).prepared()
        host = hosts[row["host"]]
    except ConfigError as exc:
        return str(exc)
    redact = Redactor(host.secret_values())
    try:
        await host.delete(public_record(row), session)
    except AlreadyGone as exc:  # what the delete was for is done: the ledger says so too
        note(row, f"{row['host']}: already gone, marked deleted ({redact(exc.message)})")
    except UploadError as exc:
        return f"{row['host']}: cannot delete: {redact(exc.message)}"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"{row['host']}: cannot delete: {redact(str(exc) or type(exc).__name__)}"
    record.mark_deleted(row["id"])
    return None
