"""Finding dead image links in a blog, and mending them from a copy picbeam can find.

Each distinct URL is checked once: HEAD first, then a GET of the first byte for servers that refuse
HEAD; a few requests at a time per domain, each within a time limit. A dead image is re-hosted from the
local file the ledger recorded for it, from a mirror the ledger knows of that still answers, or from a
file with the same content under a ``--search`` folder; then its links are rewritten as migrate does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp

from .markdown_links import Document
from .migrate import (
    LocalFiles,
    Plan,
    Problem,
    Report,
    Source,
    is_local,
    is_remote,
    read_all,
    rehost,
    remote_url,
)

if TYPE_CHECKING:
    from .engine import Batch

CHECK_TIMEOUT = 10.0
PER_DOMAIN = 4
AT_ONCE = 32
# Answers to HEAD that may only mean "no HEAD here": the GET decides.
ALIVE = range(200, 400)


@dataclass
class LinkReport(Report):
    checked: int = 0  # links
    urls: int = 0  # distinct URLs
    dead: int = 0  # links
    dead_urls: dict[str, str] = field(default_factory=dict)  # URL -> why

    def check_summary(self) -> str:
        return f"{self.checked} image links checked ({self.urls} distinct), {self.dead} dead in {self.scanned} files"


class Checker:
    """Checks URLs with bounded concurrency per domain; ``check`` returns None for a live URL, else why."""

    def __init__(self, session: aiohttp.ClientSession, *, timeout: float, per_domain: int) -> None:
        self.session, self.timeout, self.per_domain = session, timeout, per_domain
        self._domains: dict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(self.per_domain))
        self._all = asyncio.Semaphore(AT_ONCE)

    async def check(self, url: str) -> str | None:
        target = remote_url(url)
        domain = (urlsplit(target).hostname or "").lower()
        async with self._all, self._domains[domain]:
            try:
                async with asyncio.timeout(self.timeout):
                    async with self.session.head(target, allow_redirects=True) as response:
                        if response.status in ALIVE:
                            return None
                    headers = {"Range": "bytes=0-0"}
                    async with self.session.get(target, headers=headers, allow_redirects=True) as response:
                        return None if response.status in ALIVE else f"HTTP {response.status}"
            except TimeoutError:
                return f"no answer within {self.timeout:g} s"
            except (aiohttp.ClientError, ValueError) as exc:
                from .sending import network_message

                return network_message(exc).replace("the host", "the server")


async def check_links(
    paths: Sequence[Path], *, root: Path | None, encoding: str | None, timeout: float, per_domain: int
) -> tuple[LinkReport, list[Document]]:
    """Scan the files and check every image link (remote ones by request, local ones on disk)."""
    report = LinkReport()
    documents = await asyncio.to_thread(read_all, paths, report, encoding)
    local = LocalFiles(paths, root)
    urls = {link.target.strip() for d in documents for link in d.links if is_remote(link.target.strip())}
    report.urls = len(urls)
    async with aiohttp.ClientSession(
        headers={"User-Agent": _user_agent()}, trust_env=True, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        checker = Checker(session, timeout=timeout, per_domain=per_domain)
        ordered = sorted(urls)
        answers = await asyncio.gather(*(checker.check(url) for url in ordered))
    report.dead_urls = {url: why for url, why in zip(ordered, answers, strict=True) if why}
    for document in documents:
        for link in document.links:
            target = link.target.strip()
            if is_remote(target):
                why = report.dead_urls.get(target)
            elif is_local(target):
                why = None if local.find(target, document.path, link.kind) else "no such file"
            else:
                continue
            report.checked += 1
            if why:
                report.dead += 1
                report.problems.append(Problem(document.path, link.line, target, why))
    return report, documents


def _user_agent() -> str:
    from .sending import USER_AGENT

    return USER_AGENT


# -- mending -----------------------------------------------------------------------------------------
class Copies:
    """Where a dead image's bytes may still be: the ledger's local file, a live mirror, a --search file."""

    def __init__(self, ledger: Any, checker: Checker, search: Sequence[Path]) -> None:
        self.ledger, self.checker, self.search = ledger, checker, search
        self._by_hash: dict[str, Path] = {}
        self._by_size: defaultdict[int, list[Path]] | None = None

    async def find(self, url: str) -> tuple[Source | None, str]:
        """A source for ``url``'s image, or None and why not."""
        row = None if self.ledger is None else self.ledger.by_url(remote_url(url)) or self.ledger.by_url(url)
        if row is None:
            return None, "no copy: the ledger has no upload with this URL"
        digest = row["sha256"]
        recorded = Path(row["path"])
        if await asyncio.to_thread(_has_content, recorded, digest):
            return recorded, ""
        for copy in self.ledger.copies(digest):
            if copy["url"] != row["url"] and await self.checker.check(copy["url"]) is None:
                return copy["url"], ""
        if self.search:
            found = (await asyncio.to_thread(self._index, int(row["size"]))).get(digest)
            if found is not None:
                return found, ""
        where = " or under --search" if self.search else " (give --search DIR to look for it)"
        return None, f"no copy: {recorded} is gone or changed, no live mirror{where}"

    def _index(self, size: int) -> dict[str, Path]:
        """Files of ``size`` bytes under the --search folders, by content hash: the folders are walked
        once, and only files of a size looked for are read."""
        if self._by_size is None:
            self._by_size = defaultdict(list)
            for folder in self.search:
                for parent, dirs, files in os.walk(folder):
                    dirs.sort()
                    for name in sorted(files):
                        path = Path(parent, name)
                        try:
                            self._by_size[path.stat().st_size].append(path)
                        except OSError:
                            continue
        for path in self._by_size.pop(size, []):
            with contextlib.suppress(OSError):
                self._by_hash.setdefault(_sha256(path), path)
        return self._by_hash


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _has_content(path: Path, digest: str) -> bool:
    try:
        return path.is_file() and _sha256(path) == digest
    except OSError:
        return False


async def fix_links(
    report: LinkReport,
    documents: Sequence[Document],
    batch: Batch,
    *,
    search: Sequence[Path],
    timeout: float,
    per_domain: int,
    **rewrite: Any,
) -> None:
    """Re-host each dead remote image from a copy and rewrite its links; what cannot be mended stays
    in ``report.problems``."""
    async with aiohttp.ClientSession(headers={"User-Agent": _user_agent()}, trust_env=True) as session:
        copies = Copies(batch.ledger, Checker(session, timeout=timeout, per_domain=per_domain), search)
        found = {url: await copies.find(url) for url in report.dead_urls}
    plans: list[Plan] = []
    kept: list[Problem] = []
    dead_problems = {(str(p.path), p.line, p.url) for p in report.problems}
    for document in documents:
        plan = Plan(document)
        for link in document.links:
            target = link.target.strip()
            if target not in found or (str(document.path), link.line, target) not in dead_problems:
                continue
            source, why = found[target]
            if source is None:
                kept.append(Problem(document.path, link.line, target, f"{report.dead_urls[target]}; {why}"))
            else:
                plan.moves.append((link, source))
        if plan.moves:
            plans.append(plan)
    report.problems = [p for p in report.problems if p.url not in found] + kept
    report.failed += len({p.url for p in kept})
    await rehost(plans, batch, report, **rewrite)
