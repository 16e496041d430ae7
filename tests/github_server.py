"""A GitHub REST API server on loopback: the repository and Git Data endpoints the github host uses, with
GitHub's documented semantics (201 on create, 401 bad credentials, 403 without write access, 404 unknown
repository or branch, 409 for an empty repository, 422 when a ref update is not a fast-forward or a
tree names a blob that does not exist, or deletes a file that is not there), plus raw file URLs like
raw.githubusercontent.com. Blob ids are git's; tree and commit ids are content hashes of their own.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from picbeam.testing import FakeHost

WRITE_TOKEN = "ghp_writer0123456789abcdef"
READ_TOKEN = "ghp_reader0123456789abcdef"


@dataclass
class Repo:
    default_branch: str = "main"
    blobs: dict[str, bytes] = field(default_factory=dict)
    trees: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)  # sha -> name -> (type, sha)
    commits: dict[str, dict[str, Any]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # branch -> commit sha

    def put_blob(self, data: bytes) -> str:
        sha = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
        self.blobs[sha] = data
        return sha

    def put_tree(self, entries: dict[str, tuple[str, str]]) -> str:
        sha = hashlib.sha1(b"tree" + json.dumps(sorted(entries.items())).encode()).hexdigest()
        self.trees[sha] = dict(entries)
        return sha

    def put_commit(self, tree: str, parents: list[str], message: str) -> str:
        sha = hashlib.sha1(json.dumps([tree, parents, message, len(self.commits)]).encode()).hexdigest()
        self.commits[sha] = {"tree": tree, "parents": parents, "message": message}
        return sha

    def files(self, branch: str) -> dict[str, bytes]:
        """Every file of a branch's head, by path."""
        out: dict[str, bytes] = {}

        def walk(tree: str, prefix: str) -> None:
            for name, (kind, sha) in self.trees[tree].items():
                if kind == "tree":
                    walk(sha, prefix + name + "/")
                else:
                    out[prefix + name] = self.blobs[sha]

        walk(self.commits[self.refs[branch]]["tree"], "")
        return out

    def commit_on(self, branch: str, changes: dict[str, bytes | None], message: str) -> str:
        """A commit as another client would push it."""
        head = self.refs[branch]
        tree = self.edit_tree(
            self.commits[head]["tree"], [(p, self.put_blob(d) if d else None) for p, d in changes.items()]
        )
        self.refs[branch] = self.put_commit(tree, [head], message)
        return self.refs[branch]

    def edit_tree(self, base: str | None, changes: list[tuple[str, str | None]]) -> str:
        entries = dict(self.trees[base]) if base else {}
        nested: dict[str, list[tuple[str, str | None]]] = {}
        for path, sha in changes:
            first, slash, rest = path.partition("/")
            if slash:
                nested.setdefault(first, []).append((rest, sha))
            elif sha is None:
                if first not in entries:
                    raise KeyError(path)
                del entries[first]
            else:
                if sha not in self.blobs:
                    raise LookupError(sha)
                entries[first] = ("blob", sha)
        for name, inner in nested.items():
            kind, sha = entries.get(name, ("tree", ""))
            subtree = self.edit_tree(sha if kind == "tree" and sha else None, inner)
            if self.trees[subtree]:
                entries[name] = ("tree", subtree)
            else:
                entries.pop(name, None)
        return self.put_tree(entries)

    def is_ancestor(self, old: str, new: str) -> bool:
        todo = [new]
        while todo:
            sha = todo.pop()
            if sha == old:
                return True
            todo.extend(self.commits.get(sha, {}).get("parents", []))
        return False


class GitHubServer(FakeHost):
    """The server: ``repos`` by "owner/name" (an empty Repo has no commit), request counts in ``calls``.
    It runs like picbeam.testing's FakeHost (its own thread and loop), with GitHub's routes."""

    def __init__(self) -> None:
        super().__init__()
        self.repos: dict[str, Repo] = {}
        self.calls: Counter[str] = Counter()
        # Called once before the next ref update: simulates another client pushing meanwhile.
        self.before_ref_update: Callable[[Repo], None] | None = None
        # Endpoint ("POST /api/v3/...") -> answers to give its next calls instead: (status, message, headers).
        self.failures: dict[str, list[tuple[int, str, dict[str, str]]]] = {}

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v3"

    def raw_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/raw/{{repo}}/{{branch}}/{{path}}"

    def create_repo(self, full_name: str, files: dict[str, bytes] | None = None, empty: bool = False) -> Repo:
        repo = Repo()
        self.repos[full_name] = repo
        if not empty:
            tree = repo.edit_tree(None, [(p, repo.put_blob(d)) for p, d in (files or {"README.md": b"hi\n"}).items()])
            repo.refs["main"] = repo.put_commit(tree, [], "first")
        return repo

    # -- the API ----------------------------------------------------------------------------------------
    def _app(self) -> web.Application:
        app = web.Application(client_max_size=200 * 1024 * 1024)
        base = "/api/v3/repos/{owner}/{name}"
        app.router.add_get(base, self._repo)
        app.router.add_get(base + "/git/ref/heads/{branch:.+}", self._get_ref)
        app.router.add_patch(base + "/git/refs/heads/{branch:.+}", self._update_ref)
        app.router.add_get(base + "/git/commits/{sha}", self._get_commit)
        app.router.add_post(base + "/git/commits", self._create_commit)
        app.router.add_get(base + "/git/trees/{sha}", self._get_tree)
        app.router.add_post(base + "/git/trees", self._create_tree)
        app.router.add_post(base + "/git/blobs", self._create_blob)
        app.router.add_get("/raw/{owner}/{name}/{branch}/{path:.+}", self._raw)
        return app

    def _open(self, request: web.Request, write: bool = False) -> Repo:
        """The repository, after GitHub's checks: bad token 401, unknown repository 404, read-only 403."""
        endpoint = f"{request.method} {request.match_info.route.resource.canonical}"  # type: ignore[union-attr]
        self.calls[endpoint] += 1
        if self.failures.get(endpoint):
            status, message, headers = self.failures[endpoint].pop(0)
            raise api_error(status, message, headers)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in (WRITE_TOKEN, READ_TOKEN):
            raise api_error(401, "Bad credentials")
        repo = self.repos.get(f"{request.match_info['owner']}/{request.match_info['name']}")
        if repo is None:
            raise api_error(404, "Not Found")
        if write and token != WRITE_TOKEN:
            raise api_error(403, "Resource not accessible by personal access token")
        return repo

    async def _repo(self, request: web.Request) -> web.Response:
        repo = self._open(request)
        push = request.headers.get("Authorization", "").endswith(WRITE_TOKEN)
        return web.json_response(
            {
                "full_name": f"{request.match_info['owner']}/{request.match_info['name']}",
                "default_branch": repo.default_branch,
                "permissions": {"admin": False, "push": push, "pull": True},
            }
        )

    async def _get_ref(self, request: web.Request) -> web.Response:
        repo = self._open(request)
        if not repo.refs:
            raise api_error(409, "Git Repository is empty.")
        branch = request.match_info["branch"]
        if branch not in repo.refs:
            raise api_error(404, "Not Found")
        return web.json_response(
            {"ref": f"refs/heads/{branch}", "object": {"sha": repo.refs[branch], "type": "commit"}}
        )

    async def _update_ref(self, request: web.Request) -> web.Response:
        repo = self._open(request, write=True)
        body = await request.json()
        if self.before_ref_update is not None:
            hook, self.before_ref_update = self.before_ref_update, None
            hook(repo)
        branch = request.match_info["branch"]
        if branch not in repo.refs:
            raise api_error(422, "Reference does not exist")
        if body["sha"] not in repo.commits:
            raise api_error(422, "Object does not exist")
        if not body.get("force") and not repo.is_ancestor(repo.refs[branch], body["sha"]):
            raise api_error(422, "Update is not a fast forward")
        repo.refs[branch] = body["sha"]
        return web.json_response({"ref": f"refs/heads/{branch}", "object": {"sha": body["sha"], "type": "commit"}})

    async def _get_commit(self, request: web.Request) -> web.Response:
        repo = self._open(request)
        commit = repo.commits.get(request.match_info["sha"])
        if commit is None:
            raise api_error(404, "Not Found")
        return web.json_response(
            {
                "sha": request.match_info["sha"],
                "tree": {"sha": commit["tree"]},
                "parents": [{"sha": p} for p in commit["parents"]],
                "message": commit["message"],
            }
        )

    async def _create_commit(self, request: web.Request) -> web.Response:
        repo = self._open(request, write=True)
        body = await request.json()
        if body.get("tree") not in repo.trees or any(p not in repo.commits for p in body.get("parents", [])):
            raise api_error(
                422, "Tree SHA does not exist" if body.get("tree") not in repo.trees else "Parent SHA does not exist"
            )
        sha = repo.put_commit(body["tree"], body.get("parents", []), body.get("message", ""))
        return web.json_response({"sha": sha, "tree": {"sha": body["tree"]}}, status=201)

    async def _get_tree(self, request: web.Request) -> web.Response:
        repo = self._open(request)
        entries = repo.trees.get(request.match_info["sha"])
        if entries is None:
            raise api_error(404, "Not Found")
        listing = [
            {"path": name, "mode": "040000" if kind == "tree" else "100644", "type": kind, "sha": sha}
            for name, (kind, sha) in sorted(entries.items())
        ]
        return web.json_response({"sha": request.match_info["sha"], "tree": listing, "truncated": False})

    async def _create_tree(self, request: web.Request) -> web.Response:
        repo = self._open(request, write=True)
        body = await request.json()
        base = body.get("base_tree")
        if base is not None and base not in repo.trees:
            raise api_error(422, "base_tree is not a valid tree")
        changes = [(entry["path"], entry.get("sha")) for entry in body.get("tree", [])]
        try:
            sha = repo.edit_tree(base, changes)
        except KeyError as exc:
            raise api_error(422, f"GitRPC::BadObjectState: path {exc.args[0]} does not exist") from None
        except LookupError as exc:
            raise api_error(422, f"tree.sha {exc.args[0]} is not a valid blob") from None
        return web.json_response({"sha": sha}, status=201)

    async def _create_blob(self, request: web.Request) -> web.Response:
        repo = self._open(request, write=True)
        body = await request.json()
        if body.get("encoding") != "base64":
            raise api_error(422, "encoding must be base64 here")
        sha = repo.put_blob(base64.b64decode(body["content"], validate=True))
        return web.json_response({"sha": sha, "url": f"{self.api}/blobs/{sha}"}, status=201)

    async def _raw(self, request: web.Request) -> web.Response:
        repo = self.repos.get(f"{request.match_info['owner']}/{request.match_info['name']}")
        data = repo.files(request.match_info["branch"]).get(request.match_info["path"]) if repo else None
        return web.Response(body=data) if data is not None else web.Response(status=404, text="404: Not Found")


def api_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.HTTPException:
    body = json.dumps({"message": message, "documentation_url": "https://docs.github.com/rest"})
    return _STATUS[status](text=body, content_type="application/json", headers=headers)


_STATUS: dict[int, type[web.HTTPException]] = {
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
    409: web.HTTPConflict,
    422: web.HTTPUnprocessableEntity,
    502: web.HTTPBadGateway,
}
