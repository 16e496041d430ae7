"""Moving a blog's images to a host: find every image link, upload each image once through the engine,
and point the links at the new URLs, leaving every other byte of every file as it was.

`picbeam migrate` and `picbeam links --fix` share this: they differ only in where each image's bytes
come from (the file next to the post, the old URL, a copy the ledger knows of).
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import aiohttp

from .inputs import Found
from .items import UploadResult, printable
from .markdown_links import Document, Link, UnreadableFile, read_document, sync_folders, walk, write_atomically

if TYPE_CHECKING:
    from .engine import Batch

DOWNLOAD_LIMIT = 50 * 1024 * 1024
DOWNLOAD_TIMEOUT = 60.0
DOWNLOADS_AT_ONCE = 8
MAX_REDIRECTS = 10
NOT_IMAGE = "not an image (by its content)"
# Where the static files of a Hexo (source/), Hugo (static/) or Jekyll (the site root) blog live: what
# an absolute link such as /images/a.png is relative to when --root is not given.
STATIC_FOLDERS = ("", "static", "source", "public", "assets")


@dataclass
class Problem:
    """An image left as it was, and why: printed as ``file:line: url: why``."""

    path: Path
    line: int
    url: str
    why: str

    def __str__(self) -> str:
        where = f"{printable(self.path)}:{self.line}" if self.line else printable(self.path)
        return _visible(f"{where}: {printable(self.url)}: {self.why}" if self.url else f"{where}: {self.why}")


def _visible(text: str) -> str:
    """A line for the terminal: control characters (a URL may hold any) shown as \\xNN, never sent."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f]", lambda m: f"\\x{ord(m.group()):02x}", text)


@dataclass
class Report:
    scanned: int = 0
    changed: int = 0
    moved: int = 0  # images uploaded by this run
    reused: int = 0  # images the host already had (the ledger), or used by several links
    failed: int = 0
    links: int = 0  # links rewritten
    problems: list[Problem] = field(default_factory=list)
    diffs: list[str] = field(default_factory=list)

    def summary(self, verb: str = "moved") -> str:
        return (
            f"{self.scanned} files scanned, {self.changed} changed; {self.links} links rewritten; "
            f"images: {self.moved} {verb}, {self.reused} reused, {self.failed} failed"
        )


# A source of an image's bytes: a local file, or a URL to download.
Source = Path | str


@dataclass
class Plan:
    """What to do to one file: for each link to move, where its image's bytes come from."""

    document: Document
    moves: list[tuple[Link, Source]] = field(default_factory=list)


# -- reading the blog ------------------------------------------------------------------------------
def read_all(paths: Iterable[Path], report: Report, encoding: str | None = None) -> list[Document]:
    """Scan every Markdown and HTML file under ``paths``; one that cannot be read is a problem."""
    documents = []
    for path in walk(paths):
        report.scanned += 1
        try:
            documents.append(read_document(path, encoding))
        except (OSError, UnreadableFile) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            report.problems.append(Problem(path, 0, "", f"cannot read: {why}"))
    return documents


def is_remote(target: str) -> bool:
    return target.startswith(("http://", "https://", "//"))


def remote_url(target: str) -> str:
    return "https:" + target if target.startswith("//") else target


def is_local(target: str) -> bool:
    """A path (not a URL of some other scheme: data:, mailto:, a Windows drive letter is a path)."""
    return bool(target) and not is_remote(target) and not re.match(r"[A-Za-z][A-Za-z0-9+.-]+:", target)


def domain_matches(url: str, domains: Sequence[str]) -> bool:
    host = (urlsplit(remote_url(url)).hostname or "").lower()
    return any(host == d.lower().lstrip(".") or host.endswith("." + d.lower().lstrip(".")) for d in domains)


class LocalFiles:
    """Finds the file a local link means: relative to the post (or, Hexo's post asset folders, to the
    folder named after the post), absolute ones under the root, Obsidian embeds anywhere in the vault."""

    def __init__(self, scanned: Sequence[Path], root: Path | None) -> None:
        self.scanned = [p if p.is_dir() else p.parent for p in scanned]
        self.root = root
        self._names: dict[str, Path] | None = None

    def find(self, target: str, document: Path, kind: str) -> Path | None:
        text = re.sub(r"^\{\{[^{}]*\}\}", "", target.strip())  # Jekyll: {{ site.baseurl }}/assets/a.png
        path = unquote(re.split(r"[?#]", text, maxsplit=1)[0]) if kind != "embed" else text
        if not path:
            return None
        if path.startswith("/"):
            bases = [self.root] if self.root else [a / s for a in document.parents for s in STATIC_FOLDERS]
            return _first_file(base / path.lstrip("/") for base in bases)
        real = Path(os.path.realpath(document))  # a symbolic link to a post: its images may be by either
        found = _first_file([document.parent / path, document.with_suffix("") / path, real.parent / path])
        if found is None and kind == "embed":
            found = self._by_name(Path(path).name)
        return found

    def _by_name(self, name: str) -> Path | None:
        if self._names is None:
            self._names = {}
            for folder in self.scanned:
                for parent, dirs, files in os.walk(folder):
                    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                    for file in sorted(files):
                        self._names.setdefault(file, Path(parent, file))
        return self._names.get(name)


def _first_file(candidates: Iterable[Path]) -> Path | None:
    return next((c for c in candidates if c.is_file()), None)


# -- moving ----------------------------------------------------------------------------------------
async def rehost(
    plans: Sequence[Plan],
    batch: Batch,
    report: Report,
    *,
    dry_run: bool = False,
    backup: bool = False,
    limit: int = DOWNLOAD_LIMIT,
    timeout: float = DOWNLOAD_TIMEOUT,
) -> None:
    """Upload each distinct source once (the batch dedupes content, the ledger across runs), then
    rewrite each file whose links moved. A source that fails leaves its links as they are."""
    sources: dict[Source, int] = {}
    for plan in plans:
        for _, source in plan.moves:
            sources.setdefault(_key(source), len(sources))
    with tempfile.TemporaryDirectory(prefix="picbeam-migrate-") as temporary:
        async with _session() as session:
            files, errors = await _gather(list(sources), Path(temporary), session, limit, timeout)
            results: dict[int, UploadResult] = {}

            def emit(result: UploadResult) -> None:
                results[result.index] = result

            batch.emit = emit
            await batch.run([Found(path, explicit=False) for path in files], session)
    urls: dict[Source, str] = {}
    whys: dict[Source, str] = {}
    for source, number in sources.items():
        result = results.get(number)
        if number in errors:
            whys[source] = errors[number]
        elif result is None:
            whys[source] = NOT_IMAGE
        elif result.error:
            whys[source] = f"{result.host}: {result.error}"
        elif result.url:
            urls[source] = result.url
        elif dry_run:  # what the diff shows for a URL the host has not given yet
            urls[source] = f"picbeam-dry-run:{result.host}/{result.sha256[:12]}"
        if source in urls and result is not None:
            report.reused += result.reused
            report.moved += not result.reused
    report.failed += len(whys)
    folders = [_rewrite(plan, urls, whys, report, dry_run=dry_run, backup=backup) for plan in plans]
    sync_folders(folder for folder in folders if folder is not None)


def _key(source: Source) -> Source:
    """One key per image: a file by its real path (``../images/a.png`` and ``/images/a.png`` are one)."""
    return _real_path(source) if isinstance(source, Path) else source


@functools.lru_cache(maxsize=65536)
def _real_path(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _rewrite(
    plan: Plan, urls: Mapping[Source, str], whys: Mapping[Source, str], report: Report, *, dry_run: bool, backup: bool
) -> Path | None:
    """Rewrite one file's moved links; returns the folder written to (synced by the caller)."""
    document = plan.document
    changes: dict[Link, str] = {}
    for link, source in plan.moves:
        key = _key(source)
        if key in whys:
            report.problems.append(Problem(document.path, link.line, document.text[link.start : link.end], whys[key]))
        elif key in urls and document.text[link.start : link.end] != urls[key]:
            changes[link] = urls[key]
    if not changes:
        return None
    text = document.rewritten(changes)
    data = document.encode(text)
    if data == document.raw:
        return None
    report.changed += 1
    report.links += len(changes)
    if dry_run:
        name = printable(document.path)
        lines = difflib.unified_diff(
            document.text.splitlines(keepends=True), text.splitlines(keepends=True), name, name
        )
        report.diffs.append("".join(line if line.endswith(("\n", "\r")) else line + "\n" for line in lines))
        return None
    try:
        if document.path.read_bytes() != document.raw:
            raise OSError(0, "the file changed while its images were moved; run again")
        return write_atomically(document.path, data, backup=backup, sync_folder=False)
    except OSError as exc:
        report.changed -= 1
        report.links -= len(changes)
        first = min(changes, key=lambda link: link.start)
        report.problems.append(
            Problem(document.path, first.line, "", f"not rewritten: {exc.strerror or exc}; the file is unchanged")
        )
        return None


def _session() -> aiohttp.ClientSession:
    from .sending import USER_AGENT

    return aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}, trust_env=True)


async def _gather(
    sources: Sequence[Source], folder: Path, session: aiohttp.ClientSession, limit: int, timeout: float
) -> tuple[list[Path], dict[int, str]]:
    """Local files as they are, remote ones downloaded (a few at a time); the errors by source number.
    A download that failed still takes its place in the list (a missing file the engine reports), so
    the engine's index of each file is its source number."""
    errors: dict[int, str] = {}
    files: list[Path] = []
    at_once = asyncio.Semaphore(DOWNLOADS_AT_ONCE)

    async def download(number: int, url: str) -> None:
        async with at_once:
            try:
                files[number] = await fetch(session, url, folder / str(number), limit, timeout)
            except DownloadError as exc:
                errors[number] = str(exc)

    tasks = []
    for number, source in enumerate(sources):
        files.append(source if isinstance(source, Path) else folder / str(number) / "missing")
        if isinstance(source, str):
            tasks.append(download(number, source))
    await asyncio.gather(*tasks)
    return files, errors


class DownloadError(Exception):
    pass


async def fetch(session: aiohttp.ClientSession, url: str, folder: Path, limit: int, timeout: float) -> Path:
    """Download ``url`` into ``folder`` (at most ``limit`` bytes, within ``timeout`` seconds, following
    redirects); the file keeps the URL's name, which hosts use."""
    from .server import safe_name

    folder.mkdir(parents=True, exist_ok=True)
    try:
        async with asyncio.timeout(timeout):
            async with session.get(remote_url(url), max_redirects=MAX_REDIRECTS) as response:
                if not 200 <= response.status < 300:
                    raise DownloadError(f"HTTP {response.status}")
                if response.content_length is not None and response.content_length > limit:
                    raise DownloadError(f"over the download limit of {limit} bytes")
                path = folder / safe_name(unquote(response.url.name), "download")
                received = 0
                with open(path, "wb") as handle:
                    async for chunk in response.content.iter_chunked(64 * 1024):
                        received += len(chunk)
                        if received > limit:
                            raise DownloadError(f"over the download limit of {limit} bytes")
                        handle.write(chunk)
                return path
    except TimeoutError:
        raise DownloadError(f"download took more than {timeout:.0f} s") from None
    except aiohttp.TooManyRedirects:
        raise DownloadError(f"more than {MAX_REDIRECTS} redirects") from None
    except (aiohttp.ClientError, ValueError) as exc:
        from .sending import network_message

        raise DownloadError(network_message(exc).replace("the host", "the old host")) from None
    except OSError as exc:
        raise DownloadError(f"cannot save the download: {exc.strerror or exc}") from None


# -- picbeam migrate -------------------------------------------------------------------------------
@dataclass
class MigrateOptions:
    root: Path | None = None
    remote: bool = False
    from_domains: tuple[str, ...] = ()
    encoding: str | None = None


def plan_migration(
    paths: Sequence[Path],
    documents: Sequence[Document],
    options: MigrateOptions,
    host: str,
    ledger: Any,
    report: Report,
) -> list[Plan]:
    """For each file, the links to move: local images (found on disk), and remote ones when asked,
    except those already on ``host`` (a re-run moves nothing)."""
    local = LocalFiles(paths, options.root)
    plans = []
    for document in documents:
        plan = Plan(document)
        for link in document.links:
            target = link.target.strip()
            if is_remote(target):
                if not (options.remote or options.from_domains):
                    continue
                if options.from_domains and not domain_matches(target, options.from_domains):
                    continue
                if ledger is not None and _already_on(ledger, target, host):
                    continue
                plan.moves.append((link, remote_url(target)))
            elif is_local(target):
                found = local.find(target, document.path, link.kind)
                if found is None:
                    report.problems.append(Problem(document.path, link.line, target, "no such file"))
                    report.failed += 1
                else:
                    plan.moves.append((link, found))
        if plan.moves:
            plans.append(plan)
    return plans


def _already_on(ledger: Any, url: str, host: str) -> bool:
    row = ledger.by_url(url)
    return bool(row and row["host"] == host and row["deleted"] is None)


async def migrate(paths: Sequence[Path], batch: Batch, options: MigrateOptions, **rewrite: Any) -> Report:
    """Move the images of the Markdown and HTML files under ``paths`` to the batch's host."""
    report = Report()
    documents = await asyncio.to_thread(read_all, paths, report, options.encoding)
    plans = await asyncio.to_thread(plan_migration, paths, documents, options, batch.host.name, batch.ledger, report)
    await rehost(plans, batch, report, **rewrite)
    return report
