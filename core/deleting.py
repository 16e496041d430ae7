"""Removing uploads from their hosts and marking them deleted in the ledger: `picbeam delete`,
:func:`picbeam.delete` and the web app's delete button all come here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import AlreadyGone, ConfigError, UploadError

if TYPE_CHECKING:
    from .hosts import HostRegistry


@dataclass
class Deleted:
    """What became of one upload :func:`delete` was asked to remove: ``error`` is None when it is gone."""

    url: str
    host: str
    error: str | None = None
    # The error is a configuration mistake (an unknown host, a missing ${VAR}), not the host's refusal.
    config_error: bool = False
    # Said beside a success: the host had lost the file already, which counts as deleted.
    note: str | None = None
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def find_rows(
    record: Any, urls: Sequence[str], ids: Sequence[int], last: int | None, host: str | None
) -> list[dict[str, Any]]:
    """The ledger rows named by URL, id or ``last``; an unknown one is a ConfigError."""
    rows: list[dict[str, Any]] = []
    for url in urls:
        row = record.by_url(url)
        if row is None:
            raise ConfigError(f"{url} is not in the ledger ({record.path}); `picbeam history` lists what is")
        rows.append(row)
    for number in ids:
        row = record.get(number)
        if row is None:
            raise ConfigError(f"no upload with id {number} in the ledger")
        rows.append(row)
    if last:
        rows.extend(record.last(last, host=host))
    return rows


async def delete_rows(
    rows: list[dict[str, Any]], registry: HostRegistry, overrides: Sequence[str], record: Any
) -> list[Deleted]:
    """Delete each row's upload from its host and mark it deleted; one outcome per row."""
    import aiohttp

    from .ledger import public_record
    from .redaction import Redactor
    from .sending import USER_AGENT

    outcomes: list[Deleted] = []
    hosts: dict[str, Any] = {}  # one prepared host per name, so its connections (SFTP) are shared
    async with aiohttp.ClientSession(trust_env=True, headers={"User-Agent": USER_AGENT}) as session:
        for row in rows:
            outcome = Deleted(row["url"], row["host"], record=public_record(row))
            outcomes.append(outcome)
            if row["deleted"]:
                outcome.error = "already deleted"
                continue
            try:
                if row["host"] not in hosts:
                    hosts[row["host"]] = registry.select(row["host"], overrides).prepared()
                chosen = hosts[row["host"]]
            except ConfigError as exc:
                outcome.error, outcome.config_error = str(exc), True
                continue
            redact = Redactor(chosen.secret_values())
            try:
                await chosen.delete(public_record(row), session)
            except AlreadyGone as exc:  # what the delete was for is done: the ledger says so too
                outcome.note = f"already gone, marked deleted ({redact(exc.message)})"
            except UploadError as exc:
                outcome.error = f"cannot delete: {redact(exc.message)}"
                continue
            except (aiohttp.ClientError, TimeoutError) as exc:
                outcome.error = f"cannot delete: {redact(str(exc) or type(exc).__name__)}"
                continue
            record.mark_deleted(row["id"])
        for chosen in hosts.values():
            try:
                await chosen.finish(session)  # closes what the host opened (an SSH connection)
            except (UploadError, aiohttp.ClientError, TimeoutError) as exc:
                message = Redactor(chosen.secret_values())(str(exc))
                outcomes.append(Deleted("", chosen.name, error=message))
    return outcomes
