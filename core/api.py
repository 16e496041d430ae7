"""The Python API: what the command line does, as functions (``picbeam.upload``, ``picbeam.delete``...).

Silent (nothing is printed), typed, and the same rules as the command line: the ledger, dedupe,
processing and retries. Failures of single files are results (``result.error``), never exceptions;
a configuration mistake (an unknown host, a bad option) raises :class:`~picbeam.ConfigError`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from .errors import ConfigError
from .items import UploadResult
from .options import RUN_OPTIONS, UploadOptions, split_keywords

if TYPE_CHECKING:
    from .config import Config
    from .deleting import Deleted
    from .engine import Batch, Summary
    from .hosts import Host, HostRegistry
    from .loader import Plugins

PathInput = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


@dataclass
class Skipped:
    """A file a folder upload passed over, and why."""

    path: str
    reason: str


class Uploads(list[UploadResult]):
    """The results of :func:`upload`, in input order (a list), with what was passed over: ``skipped``
    (files found in folders that were not sent: not images, or left out by ``include``/``exclude``),
    ``notes`` (the lines the command line prints about them) and ``summary`` (the counts)."""

    def __init__(self) -> None:
        super().__init__()
        self.skipped: list[Skipped] = []
        self.notes: list[str] = []
        self.summary: Summary | None = None


def open_batch(
    host: Host,
    config: Config,
    *,
    plugins: Plugins | None = None,
    jobs: int | None = None,
    retries: int | None = None,
    ledger: bool | str | os.PathLike[str] = True,
    process: Mapping[str, Any] | None = None,
    explain: bool = False,
    flags_from: str = "command line",
    **options: Any,
) -> Batch:
    """A Batch for ``host`` with the user's settings as defaults and the ledger opened.

    ``ledger`` is True for the configured ledger, False for none, or a path. ``process`` holds processing
    options given for this run (``{"convert": "webp"}``), over the host's ``[process]`` table and
    config.toml's; ``explain`` makes a dry run process files to say what it would do. Close the batch
    when done.
    """
    from .engine import Batch
    from .hosts import keep_process
    from .inputs import DOWNLOAD_MAX_BYTES, DOWNLOAD_TIMEOUT
    from .ledger import Ledger, ledger_path
    from .processing import Processing

    processing = Processing.for_run(
        plugins,
        flags=process,
        host=host.process,
        config=config.get("process"),
        host_name=host.name,
        explain=explain,
        flags_from=flags_from,
    )
    record = None
    if ledger is not False:
        record = Ledger(ledger_path(None if ledger is True else ledger, config))
    return Batch(
        keep_process(host, host.prepared()),
        processing=processing,
        jobs=jobs or config.get("jobs", 4),
        retries=config.get("retries", 3) if retries is None else retries,
        retry_wait=config.get("retry_wait", 0.5),
        download_max_bytes=config.get("download_max_bytes", DOWNLOAD_MAX_BYTES),
        download_timeout=config.get("download_timeout", DOWNLOAD_TIMEOUT),
        plugins=plugins,
        ledger=record,
        **options,
    )


def _paths(paths: PathInput) -> list[Path | str]:
    """One path or a list of them; a string is always one path (or one http(s) address, downloaded),
    never its characters."""
    from .inputs import as_input

    if isinstance(paths, str | os.PathLike):
        return [as_input(paths)]
    if isinstance(paths, bytes) or not isinstance(paths, Sequence):
        raise ConfigError(f"paths must be a path or a list of paths, not {type(paths).__name__}")
    return [as_input(p) for p in paths]


def _open(hosts_dirs: Sequence[str | os.PathLike[str]] = ()) -> tuple[Any, Config, HostRegistry]:
    from .config import Config
    from .loader import load_plugins

    plugins = load_plugins()
    config = Config.load([Path(d) for d in hosts_dirs])
    return plugins, config, plugins.hosts(config)


async def upload_async(paths: PathInput, host: str | Host | None = None, **options: Unpack[UploadOptions]) -> Uploads:
    """Upload files and folders to a host (by name, or a :class:`~picbeam.Host`); results in input order.

    ``paths`` is one path or a list. Failures are results too (``result.error``), so one bad file never
    hides the others' URLs. The keywords are those of :class:`~picbeam.options.UploadOptions`: the run's
    options (``jobs``, ``recursive``, ``include``, ``exclude``, ``follow_symlinks`` (in folders, follow
    symbolic links that lead outside the folder named), ``retries``, ``overrides``, ``force``,
    ``dry_run``, ``ledger`` = False for none or a path, ``hosts_dirs``) and every processor's options
    (``convert="webp"``, ``max_width=1600``; a plugin's own with ``process={"name": value}``).
    """
    from .hosts import Host
    from .inputs import Discovery
    from .processing import process_options

    inputs = _paths(paths)
    run, process = split_keywords(options, process_options())
    for key in ("jobs", "retries", "recursive", "include", "exclude", "dry_run", "force", "follow_symlinks"):
        if key in run:
            run[key] = RUN_OPTIONS[key].validate(run[key], "keyword argument")
    process = {**(run.pop("process", None) or {}), **process}
    plugins, config, registry = _open(run.pop("hosts_dirs", ()))
    if not isinstance(host, Host):
        host = registry.select(host or config.default_host(), run.pop("overrides", ()))
    run.pop("overrides", None)
    results = Uploads()
    discovery = Discovery(
        inputs,
        recursive=bool(run.pop("recursive", False)),
        include=run.pop("include", ()),
        exclude=run.pop("exclude", ()),
        follow_symlinks=bool(run.pop("follow_symlinks", False)),
    )
    batch = open_batch(
        host, config, plugins=plugins, emit=results.append, process=process, flags_from="keyword argument", **run
    )
    with batch:
        results.summary = await batch.run(discovery)
    results.skipped = [Skipped(str(path), "not an image") for path in batch.summary.passed_over]
    results.skipped += [Skipped(str(path), "left out by include/exclude") for path in discovery.excluded]
    results.notes = discovery.summary(non_images=batch.summary.skipped)
    return results


def upload(paths: PathInput, host: str | Host | None = None, **options: Unpack[UploadOptions]) -> Uploads:
    """The synchronous form of :func:`upload_async` (it runs its own event loop)."""
    return asyncio.run(upload_async(paths, host, **options))


def history(
    *,
    host: str | None = None,
    since: Any = None,
    limit: int | None = None,
    ledger: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """The uploads the ledger recorded, oldest first, as ``picbeam history --json`` shows them.

    ``since`` is a :class:`datetime.datetime` or text (``2026-11-01``, ``7d``, ``12h``). No ledger yet
    gives an empty list.
    """
    from .cli.history import parse_since
    from .config import Config
    from .ledger import Ledger, ledger_path, public_record

    location = ledger_path(ledger, Config.load())
    if not location.exists():
        return []
    when = parse_since(since) if isinstance(since, str) else since
    with Ledger(location) as record:
        return [public_record(row) for row in record.history(host=host, since=when, limit=limit)]


def delete(
    urls: str | Sequence[str] = (),
    *,
    ids: Sequence[int] = (),
    last: int | None = None,
    host: str | None = None,
    overrides: Sequence[str] = (),
    ledger: str | os.PathLike[str] | None = None,
    hosts_dirs: Sequence[str | os.PathLike[str]] = (),
) -> list[Deleted]:
    """Remove uploads from their host (where it has a delete API) and mark them deleted in the ledger.

    Name them by URL (or delete URL), by ledger ``ids``, or the newest ``last`` (of ``host``). An upload
    the ledger does not know raises :class:`~picbeam.ConfigError`; one the host refuses to delete is a
    :class:`~picbeam.deleting.Deleted` with ``error``.
    """
    from .config import Config
    from .deleting import delete_rows, find_rows
    from .ledger import Ledger, ledger_path

    location = ledger_path(ledger, Config.load())
    if not location.exists():
        raise ConfigError(f"no ledger at {location} yet: nothing has been uploaded with it")
    with Ledger(location) as record:
        rows = find_rows(record, [urls] if isinstance(urls, str) else list(urls), ids, last, host)
        _, _, registry = _open(hosts_dirs)
        return asyncio.run(delete_rows(rows, registry, overrides, record))
