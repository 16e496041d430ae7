"""GitHub (and GitHub Enterprise, or any server with GitHub's Git Data API): images stored in a repository.

A run's files go in as ONE commit through the Git Data API: each upload sends its file as a blob
(concurrently, retried like any upload); when the run's last upload is done, :meth:`GitHubHost.finish`
makes one tree on top of the branch, one commit, and moves the branch to it; if the branch moved
meanwhile, it starts again from the new head. A file already in the branch with the same content is not
sent again. The contents API would need one commit per file and conflicts (409) when writes run in parallel.

The URLs an upload reports name files of the commit that ``finish`` makes: if that commit fails, the run
fails with one line saying so (nothing was stored).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from picbeam import AlreadyGone, ConfigError, Host, UploadError, UploadItem, UploadResult, hookimpl
from picbeam.answers import read_answer, retry_after
from picbeam.errors import transient_status
from picbeam.hosts import request_timeout
from picbeam.storage import RunOnce, StorageHost, StorageSettings, required, secret
from picbeam.templates import render_url

CDNS = {
    "raw": "https://raw.githubusercontent.com/{repo}/{branch}/{path}",
    "jsdelivr": "https://cdn.jsdelivr.net/gh/{repo}@{branch}/{path}",
}
COMMIT_ATTEMPTS = 5


@dataclass(frozen=True)
class GitHubSettings(StorageSettings):
    # "owner/name"
    repo: str = required()
    # Empty: the repository's default branch.
    branch: str = ""
    token: str = secret("${GITHUB_TOKEN}")
    # The public URL when url_template is not set: raw (raw.githubusercontent.com) or jsdelivr (its CDN).
    cdn: str = "raw"
    # The API base: https://HOST/api/v3 for GitHub Enterprise Server.
    api: str = "https://api.github.com"
    # The commit message; {count} is the number of files the commit adds or changes.
    message: str = "Upload {count} file(s) with picbeam"


@dataclass(frozen=True)
class Head:
    """The branch as the run found it."""

    branch: str
    commit: str
    tree: str


class BranchMoved(UploadError):
    """The branch got another commit while ours was made."""


class GitHubHost(StorageHost):
    """Stores files in a GitHub repository, one commit per run; the URL is from ``url_template``,
    ``url_prefix`` or ``cdn``."""

    kind = "github"
    settings_class = GitHubSettings
    settings: GitHubSettings
    url_names = ("repo", "branch")
    default_description = "a GitHub repository, one commit per run: export GITHUB_TOKEN=<token with contents:write>"
    max_bytes = 100 * 1024 * 1024  # GitHub refuses larger files

    def __init__(self, name: str | None = None, settings: Any = None, source: str | None = None) -> None:
        super().__init__(name, settings, source)
        # Per run: the branch's head, directory listings of its tree, and the blobs waiting for the commit
        # (path -> blob id).
        self._head: RunOnce[Head] = RunOnce()
        self._listings: RunOnce[dict[str, tuple[str, str]]] = RunOnce()
        self._staged: dict[str, str] = {}
        self._branch = self.settings.branch  # the default branch once the run has looked it up

    def check(self, settings: GitHubSettings, where: str) -> None:
        if settings.repo and not re.fullmatch(r"[\w.-]+/[\w.-]+|.*\$\{.*\}.*", settings.repo):
            raise ConfigError(f"{where}: field 'repo' must be 'owner/name', not {settings.repo!r}")
        if settings.cdn not in CDNS:
            raise ConfigError(f"{where}: field 'cdn' must be one of {', '.join(CDNS)}, not {settings.cdn!r}")

    @property
    def destination(self) -> str:
        return f"{self.settings.api.rstrip('/')}/repos/{self.settings.repo}@{self.settings.branch}"

    def url_values(self) -> dict[str, str]:
        return {"repo": self.settings.repo, "branch": self._branch}

    # -- upload -----------------------------------------------------------------------------------------
    async def upload(self, item: UploadItem, session: Any) -> UploadResult:
        path, context = self.place(item)
        head = await self._head.get("head", lambda: self._find_head(session))
        self._branch = head.branch
        blob = await asyncio.to_thread(_git_blob_id, item)
        cdn = render_url(CDNS[self.settings.cdn], path, context, self.url_values())
        url = self.public_url(path, context, cdn)
        answer = {"repo": self.settings.repo, "branch": head.branch, "sha": blob}
        if await self._existing(session, head, path) == blob:
            return self.stored(item, path, url, unchanged=True, **answer)
        staged = self._staged.get(path)
        if staged is not None:
            if staged == blob:
                return self.stored(item, path, url, **answer)  # the same content twice in one run
            raise UploadError(
                f"another file of this run goes to the same path {path}; put {{sha256}} or {{name}} in 'path'"
            )
        self._staged[path] = blob  # taken before the first await, so two files cannot both take it
        try:
            body = await asyncio.to_thread(_blob_request, item)
            made = await self._api(session, "POST", "git/blobs", body, timeout=request_timeout(len(body)))
            if made.get("sha") != blob:
                raise UploadError(
                    f"the server stored the file as {made.get('sha')}, not {blob}; is 'api' a git server?"
                )
        except BaseException:
            del self._staged[path]
            raise
        return self.stored(item, path, url, **answer)

    async def finish(self, session: Any) -> None:
        """One commit with every file this run staged (nothing when all were already there)."""
        if not self._staged:
            return
        entries = [
            {"path": path, "mode": "100644", "type": "blob", "sha": blob} for path, blob in sorted(self._staged.items())
        ]
        try:
            await self._commit(session, entries, self.settings.message.replace("{count}", str(len(entries))))
        except UploadError as exc:
            exc.message = (
                f"the commit of {len(entries)} file(s) to {self.settings.repo} failed, so their URLs above do "
                f"not work: {exc.message}; run the upload again"
            )
            raise
        self._staged.clear()

    async def delete(self, record: Mapping[str, Any], session: Any) -> None:
        """Removes the file in a commit of its own."""
        path = self.recorded_path(record)
        answer = record.get("answer") or {}
        branch = answer.get("branch") if isinstance(answer, Mapping) else None
        entry = {"path": path, "mode": "100644", "type": "blob", "sha": None}
        await self._commit(session, [entry], f"Delete {path} with picbeam", branch=branch or None)

    # -- the branch and its tree --------------------------------------------------------------------------
    async def _find_head(self, session: Any, branch: str | None = None) -> Head:
        """The repository checked (found, writable) and its branch's head commit and tree."""
        repo = self.settings.repo
        if branch is None:
            about = await self._api(
                session, "GET", "", missing=f"repository {repo} not found, or the token cannot see it"
            )
            if not (about.get("permissions") or {}).get("push", True):
                raise UploadError(
                    f"the token may not write to {repo}; it needs the Contents: write permission (or the repo scope)"
                )
            branch = self.settings.branch or str(about.get("default_branch") or "main")
        ref = await self._api(
            session,
            "GET",
            f"git/ref/heads/{branch}",
            missing=f"branch '{branch}' not found in {repo}; create it or set 'branch'",
        )
        commit = ref["object"]["sha"]
        tree = (await self._api(session, "GET", f"git/commits/{commit}"))["tree"]["sha"]
        return Head(branch, commit, tree)

    async def _existing(self, session: Any, head: Head, path: str) -> str | None:
        """The blob id of ``path`` in the branch as the run found it, or None (one listing per folder)."""
        *folders, name = path.split("/")
        tree = head.tree
        for depth in range(len(folders) + 1):
            here = "/".join(folders[:depth])
            listing = await self._listings.get(here, lambda t=tree: self._list(session, t))
            wanted = folders[depth] if depth < len(folders) else name
            kind, sha = listing.get(wanted, ("", ""))
            if depth == len(folders):
                return sha if kind == "blob" else None
            if kind != "tree":
                return None
            tree = sha
        return None

    async def _list(self, session: Any, tree: str) -> dict[str, tuple[str, str]]:
        data = await self._api(session, "GET", f"git/trees/{tree}")
        return {entry["path"]: (entry["type"], entry["sha"]) for entry in data.get("tree", [])}

    async def _commit(
        self, session: Any, entries: list[dict[str, Any]], message: str, branch: str | None = None
    ) -> None:
        """Commit ``entries`` on the branch: again from its new head when it moved meanwhile, and again
        after a transient failure (throttling, a server or network error), by picbeam's one retry policy."""
        from picbeam.sending import RetryPolicy

        head = await self._head.get("head", lambda: self._find_head(session))
        branch = branch or head.branch
        policy = RetryPolicy(retries=COMMIT_ATTEMPTS - 1, wait=0.25, retry_also=_moved)
        await policy.run(lambda: self._commit_on_head(session, entries, message, branch))

    async def _commit_on_head(self, session: Any, entries: list[dict[str, Any]], message: str, branch: str) -> None:
        """One tree on the branch's current head, one commit, then move the branch (fast-forward only)."""
        head = await self._find_head(session, branch)  # fresh: someone may have pushed during the run
        try:
            tree = await self._api(session, "POST", "git/trees", {"base_tree": head.tree, "tree": entries})
        except UploadError as exc:
            gone = [e["path"] for e in entries if e["sha"] is None]
            if exc.status == 422 and gone:  # GitHub refuses to delete a file that is not there
                raise AlreadyGone(f"{', '.join(gone)} was already gone from {branch}") from None
            raise
        if tree["sha"] == head.tree:
            return  # nothing changes
        commit = await self._api(
            session, "POST", "git/commits", {"message": message, "tree": tree["sha"], "parents": [head.commit]}
        )
        try:
            await self._api(session, "PATCH", f"git/refs/heads/{branch}", {"sha": commit["sha"], "force": False})
        except UploadError as exc:
            if exc.status == 422:  # not a fast-forward: the branch moved
                raise BranchMoved(f"branch {branch} kept moving: {exc.message}", status=422) from None
            raise

    # -- the API ----------------------------------------------------------------------------------------
    async def _api(
        self,
        session: Any,
        method: str,
        where: str,
        body: Mapping[str, Any] | bytes | None = None,
        *,
        missing: str | None = None,
        timeout: Any = None,
    ) -> dict[str, Any]:
        """One REST call on the repository; an error is one line saying what it means."""
        url = f"{self.settings.api.rstrip('/')}/repos/{self.settings.repo}" + (f"/{where}" if where else "")
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if self.settings.token:
            headers["Authorization"] = f"Bearer {self.settings.token}"
        if isinstance(body, bytes):
            sent: dict[str, Any] = {"data": body}
            headers["Content-Type"] = "application/json"
        else:
            sent = {"json": body}
        async with session.request(method, url, headers=headers, timeout=timeout, **sent) as response:
            try:
                data = json.loads(await read_answer(response))
            except (ValueError, RecursionError):
                data = None
            if 200 <= response.status < 300 and isinstance(data, dict):
                return data
            raise _github_error(response.status, data, response.headers, self.settings.repo, missing)


def _moved(exc: BaseException) -> bool:
    return isinstance(exc, BranchMoved)


def _github_error(status: int, data: Any, headers: Mapping[str, str], repo: str, missing: str | None) -> UploadError:
    message = str(data.get("message", "")) if isinstance(data, dict) else ""
    if not isinstance(data, dict):
        message = "the answer is not GitHub's JSON; check 'api'"
    wait = retry_after(headers.get("Retry-After"))
    if status in (403, 429) and (wait is not None or "secondary rate limit" in message.lower()):
        hint, transient = "GitHub is throttling this token; lower --jobs", True
    elif status in (403, 429) and headers.get("X-RateLimit-Remaining") == "0":
        reset = headers.get("X-RateLimit-Reset", "")
        when = time.strftime("%H:%M", time.localtime(int(reset))) if reset.isdigit() else "later"
        hint, transient = f"the token's API rate limit is used up until {when}", False
    else:
        hint = {
            401: "bad credentials: check 'token' (GITHUB_TOKEN)",
            403: f"the token may not write to {repo}; it needs the Contents: write permission (or the repo scope)",
            404: missing or f"not found in {repo}",
            409: f"the repository {repo} is empty: make a first commit (a README) on the branch",
        }.get(status, "")
        transient = transient_status(status)
    if status == 409 and "empty" not in message.lower():
        hint = ""
    text = f"HTTP {status}" + (f": {message}" if message else "") + (f" ({hint})" if hint else "")
    return UploadError(text, status=status, transient=transient, retry_after=wait)


def _blob_request(item: UploadItem) -> bytes:
    """The JSON body that creates a blob (made in a thread: a large file's base64 takes a while)."""
    return json.dumps({"content": base64.b64encode(item.read()).decode("ascii"), "encoding": "base64"}).encode()


def _git_blob_id(item: UploadItem) -> str:
    """Git's id of a file's content: sha1 of "blob <size>\\0" and the bytes."""
    prefix = f"blob {item.size}\0".encode()
    if item.data is not None:
        return hashlib.sha1(prefix + item.data, usedforsecurity=False).hexdigest()
    with open(item.path, "rb") as handle:
        return hashlib.file_digest(handle, lambda: hashlib.sha1(prefix, usedforsecurity=False)).hexdigest()


@hookimpl
def register_hosts(register: Callable[[Host], None]) -> None:
    register(GitHubHost())
