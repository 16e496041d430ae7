"""The web app at ``/`` of ``picbeam serve``: upload, gallery, copy, delete, hosts, in the browser.

The page and its API are same-origin only. :meth:`WebApp.check` runs for every request to ``/``,
``/static/`` and ``/api/`` (after the Host header check every request gets): a request from another
origin (Origin, Sec-Fetch-Site) is refused, no CORS header is ever sent, and every API call carries the
token the page received in its HTML (a custom header, so a cross-origin page cannot even send it without
a preflight, which is refused). Strict Content-Security-Policy: scripts, styles and connections from this
origin only, no inline script. The page uploads the bytes it was given (multipart), never a path.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
from collections.abc import Mapping
from datetime import datetime
from importlib import resources
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .errors import PicbeamError
from .items import UploadResult

if TYPE_CHECKING:
    from .server import PicGoServer

TOKEN_HEADER = "X-Picbeam-Token"
PAGE_SIZE = 60
MAX_PAGE_SIZE = 500
# Images come from the hosts the user uploads to (any http(s) origin); nothing else leaves this origin.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data: blob: "
       "http: https:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")  # fmt: skip
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".html": "text/html"}


def is_webapp_path(path: str) -> bool:
    return path == "/" or path.startswith(("/static/", "/api/"))


class WebApp:
    """The page, its static files and its JSON API; uploads go through the server's long-lived batches."""

    def __init__(self, server: PicGoServer) -> None:
        self.server = server
        # One token per server run: only a page this server rendered has it (a cross-origin page cannot
        # read the HTML, and the Host check stops DNS rebinding).
        self.token = secrets.token_urlsafe(32)
        self._ledger: Any = None
        self._static = resources.files("picbeam") / "web"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.page)
        app.router.add_get("/static/{name}", self.static)
        app.router.add_get("/api/state", self.state)
        app.router.add_get("/api/uploads", self.uploads)
        app.router.add_post("/api/upload", self.upload)
        app.router.add_post("/api/delete", self.delete)
        app.router.add_post("/api/check", self.check_host)
        app.on_cleanup.append(self._close)

    # -- the checks ----------------------------------------------------------------------------------
    def check(self, request: web.Request) -> None:
        """Same origin only; the API needs the page's token. Raises :class:`~picbeam.server.Refused`."""
        from .server import Refused, normalize_origin, presented_secret

        own = f"http://{request.headers.get('Host', '')}".lower()
        origin = request.headers.get("Origin")
        if origin is not None and normalize_origin(origin) != own:
            raise Refused(403, f"refused: the web app serves only its own pages, not {normalize_origin(origin)}")
        site = request.headers.get("Sec-Fetch-Site", "").lower()
        api = request.path.startswith("/api/")
        if site and site not in (("same-origin",) if api else ("same-origin", "none")):
            raise Refused(403, f"refused: a {site} request to the web app")
        if api:
            given = request.headers.get(TOKEN_HEADER, "")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                raise Refused(403, "refused: this call needs the token of the page; reload the page")
        elif request.path == "/" and self.server.options.secret:
            given = presented_secret(request) or ""
            if not hmac.compare_digest(given.encode(), self.server.options.secret.encode()):
                raise Refused(401, "this server needs its secret: open /?secret=SECRET", {"WWW-Authenticate": "Bearer"})

    # -- the page ------------------------------------------------------------------------------------
    async def page(self, request: web.Request) -> web.StreamResponse:
        html = (self._static / "index.html").read_text(encoding="utf-8").replace("{{token}}", self.token)
        return web.Response(text=html, content_type="text/html", headers=SECURITY_HEADERS)

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        kind = STATIC_TYPES.get(PurePath(name).suffix)
        asset = self._static / name
        if kind is None or "/" in name or name.startswith(".") or name == "index.html" or not asset.is_file():
            raise web.HTTPNotFound(reason="no such file")
        return web.Response(body=asset.read_bytes(), content_type=kind, headers=SECURITY_HEADERS)

    # -- the API -------------------------------------------------------------------------------------
    async def state(self, request: web.Request) -> web.StreamResponse:
        """The hosts (descriptions, masked settings, processing options) and the output formats."""
        server = self.server
        hosts = []
        for name, entry in sorted(server.registry.entries.items()):
            described = entry.host.describe()
            hosts.append({"name": name, "plugin": entry.plugin, "description": entry.host.description,
                          "source": entry.host.source, "settings": described,
                          "process": dict(entry.host.process)})  # fmt: skip
        broken = [{"name": name, "error": error} for name, error in sorted(server.registry.broken.items())]
        return _json({"hosts": hosts, "broken": broken, "default_host": server.options.host,
                      "formats": copy_formats(), "ledger": self.ledger() is not None,
                      "process": dict(server.config.get("process", {}) or {})})  # fmt: skip

    async def uploads(self, request: web.Request) -> web.StreamResponse:
        """A page of the gallery: ?q=NAME&host=HOST&from=DATE&to=DATE&page=N&size=N (dates YYYY-MM-DD)."""
        ledger = self.ledger()
        if ledger is None:
            return _json({"total": 0, "rows": [], "page": 1, "pages": 1, "ledger": False})
        query = request.query
        size = min(_number(query.get("size"), PAGE_SIZE), MAX_PAGE_SIZE)
        page = _number(query.get("page"), 1)
        since, until = _day(query.get("from")), _day(query.get("to"), end=True)
        total, rows = await asyncio.to_thread(ledger.page, search=query.get("q", "")[:200],
                                              host=query.get("host") or None, since=since, until=until,
                                              offset=(page - 1) * size, limit=size)  # fmt: skip
        return _json({"total": total, "page": page, "pages": max(1, -(-total // size)), "ledger": True,
                      "rows": [gallery_row(row) for row in rows]})  # fmt: skip

    async def upload(self, request: web.Request) -> web.StreamResponse:
        """The page's files, posted as multipart (the bytes, never a path), to ?host= with processing
        options ?keep_metadata=1&convert=webp&max_width=1600."""
        from .server import Refused

        if not request.headers.get("Content-Type", "").lower().startswith("multipart/"):
            raise Refused(400, "the web app uploads files posted as multipart/form-data")
        server = self.server
        async with server.batch(request.query.get("host") or server.options.host, _process(request.query)) as batch:
            entries = await server.receive(request, batch, posted_only=True)
        items = []
        for entry in entries:
            result = entry.result if entry.error is None else None
            items.append({"name": entry.given, "error": entry.error, "reused": bool(result and result.reused),
                          "url": result.url if result else None,
                          "copy": copy_texts(result) if result else {}})  # fmt: skip
        return _json({"items": items})

    async def delete(self, request: web.Request) -> web.StreamResponse:
        """Delete one upload on its host (as `picbeam delete --id ID` does) and mark it in the ledger."""
        from .deleting import delete_rows
        from .server import Refused

        ledger = self.ledger()
        body = await _body(request)
        record_id = body.get("id")
        if ledger is None or not isinstance(record_id, int):
            raise Refused(400, 'expected {"id": N}, the ledger id of an upload')
        row = await asyncio.to_thread(ledger.get, record_id)
        if row is None:
            raise Refused(404, f"no upload with id {record_id} in the ledger")
        outcome, *_ = await delete_rows([row], self.server.registry, (), ledger)
        if not outcome.ok:
            return _json({"deleted": False, "error": f"{outcome.host}: {outcome.error}"}, 502)
        return _json({"deleted": True, "error": None, "note": outcome.note})

    async def check_host(self, request: web.Request) -> web.StreamResponse:
        """`picbeam hosts check NAME`: the definition and its ${VAR} references."""
        from .server import Refused

        name = (await _body(request)).get("host")
        if not isinstance(name, str):
            raise Refused(400, 'expected {"host": NAME}')
        try:
            host = self.server.registry.select(name)
            host.prepared()
        except PicbeamError as exc:
            return _json({"ok": False, "message": f"{name}: {exc}"})
        return _json({"ok": True, "message": f"{name}: configuration OK ({host.source})"})

    # -- the ledger ----------------------------------------------------------------------------------
    def ledger(self) -> Any:
        """The server's ledger, opened for reading on first use (None with --no-ledger)."""
        if self._ledger is None and self.server.options.ledger is not False:
            from .ledger import Ledger, ledger_path

            chosen = self.server.options.ledger
            self._ledger = Ledger(ledger_path(None if chosen is True else chosen, self.server.config))
        return self._ledger

    async def _close(self, app: web.Application) -> None:
        if self._ledger is not None:
            self._ledger.close()


def copy_formats() -> list[str]:
    """The output formats a link can be copied in: every one `picbeam upload --format` has, but JSON."""
    from .output import formats

    return [name for name in formats() if name != "json"]


def copy_texts(result: UploadResult) -> dict[str, str]:
    """The upload in each copy format, rendered by picbeam.output as `picbeam upload --format` prints it."""
    from .output import format_result

    return {fmt: format_result(result, fmt) for fmt in copy_formats()}


def gallery_row(row: Mapping[str, Any]) -> dict[str, Any]:
    result = UploadResult(path=row["path"], host=row["host"], url=row["url"], thumbnail_url=row.get("thumbnail_url"))
    return {
        "id": row["id"],
        "name": PurePath(row["path"]).name or row["path"],
        "host": row["host"],
        "url": row["url"],
        "thumbnail": row.get("thumbnail_url") or row["url"],
        "created": datetime.fromtimestamp(row["created"]).astimezone().isoformat(timespec="seconds"),
        "bytes": row["size"],
        "deleted": row["deleted"] is not None,
        "copy": copy_texts(result),
    }


def _process(query: Mapping[str, str]) -> dict[str, Any] | None:
    """Processing options from the page, as the command line's flags give them."""
    from .server import Refused

    options: dict[str, Any] = {}
    if query.get("keep_metadata") in ("0", "1"):
        options["keep_metadata"] = query["keep_metadata"] == "1"
    if query.get("convert"):
        options["convert"] = query["convert"]
    if query.get("max_width"):
        if not query["max_width"].isdigit() or not 0 < int(query["max_width"]) < 100_000:
            raise Refused(400, "max_width must be a whole number of pixels")
        options["max_width"] = int(query["max_width"])
    return options or None


async def _body(request: web.Request) -> dict[str, Any]:
    from .server import Refused

    try:
        data = json.loads(await request.content.read(64 * 1024))
    except (ValueError, RecursionError):
        raise Refused(400, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise Refused(400, "expected a JSON object")
    return data


def _number(text: str | None, default: int) -> int:
    return int(text) if text and text.isdigit() and 0 < int(text) < 10**9 else default


def _day(text: str | None, end: bool = False) -> float | None:
    """A YYYY-MM-DD day as a local unix time: its start, or (``end``) the next day's start."""
    if not text:
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d").astimezone()
    except ValueError:
        return None
    return day.timestamp() + (86400 if end else 0)


def _json(body: Any, status: int = 200) -> web.Response:
    from .server import answer_json

    response = answer_json(body, status)
    response.headers.update(SECURITY_HEADERS)
    return response
