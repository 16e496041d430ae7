"""``picbeam serve``: the PicGo server protocol, for editors, with the checks the PicGo server lacks.

Editors (Typora's "PicGo (app)" mode, Obsidian's image-auto-upload plugin, VS Code extensions...) POST
to ``http://127.0.0.1:36677/upload``. Every upload goes through the same engine, ledger, dedupe and
retries as ``picbeam upload``. The threat is a web page in the user's browser: it can POST to loopback,
so every request passes :meth:`PicGoServer.guard` first (Host, Origin, secret), and what a request may
name is limited (images only, regular files, under ``--root``; public http(s) URLs, fetched with limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import ipaddress
import json
import mimetypes
import os
import re
import socket
import stat
import tempfile
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from .errors import ConfigError, PicbeamError
from .inputs import SNIFF_BYTES, Found, sniff_image
from .items import IN_MEMORY_LIMIT, UploadResult
from .webapp import WebApp, is_webapp_path

DEFAULT_PORT = 36677
MAX_JSON_BYTES = 1024 * 1024
MAX_LIST = 100
# Text fields a multipart body may carry beside its files (PicGo's clients send none).
MAX_TEXT_FIELDS = 100
MAX_ENTRY_CHARS = 4096
DEFAULT_MAX_BODY = 100 * 1024 * 1024
URL_TIMEOUT = 30.0
MAX_REDIRECTS = 5
FETCH_CONCURRENCY = 4
CHUNK = 64 * 1024
REDIRECTS = (301, 302, 303, 307, 308)
# A client has HEADER_TIMEOUT seconds to send a request's headers (also the idle time of a kept-alive
# connection), and after BODY_TIMEOUT seconds its body must keep arriving at MIN_BODY_RATE on average: a
# slow link uploads, a client dribbling a byte now and then is cut off. MAX_CONNECTIONS caps them all.
HEADER_TIMEOUT = 15.0
BODY_TIMEOUT = 30.0
MIN_BODY_RATE = 16 * 1024
MAX_CONNECTIONS = 256
MAX_BATCHES = 16
LEDGER_FAILED_HINT = (
    "picbeam serve uploads nothing more: free space or choose another --ledger, then restart picbeam serve"
)
SECRET_HINT = "send it as Authorization: Bearer SECRET, X-PicGo-Secret: SECRET or ?secret=SECRET"


@dataclass
class ServerOptions:
    """What ``picbeam serve`` was told; the defaults are the safe ones."""

    host: str
    secret: str | None = None
    allow_origins: frozenset[str] = frozenset()
    allow_any_file: bool = False
    roots: tuple[Path, ...] = ()
    allow_private_urls: bool = False
    max_body: int = DEFAULT_MAX_BODY
    max_list: int = MAX_LIST
    url_timeout: float = URL_TIMEOUT
    # --listen on a non-loopback address: clients name the server by its IP address, not only loopback.
    public: bool = False
    ledger: bool | str | os.PathLike[str] = True
    jobs: int | None = None
    header_timeout: float = HEADER_TIMEOUT
    body_timeout: float = BODY_TIMEOUT
    max_connections: int = MAX_CONNECTIONS
    retries: int | None = None
    force: bool = False
    dry_run: bool = False
    # --format: each entry of the answer's `result` in this output format (url: the bare URL).
    format: str = "url"
    overrides: tuple[str, ...] = ()
    process: Mapping[str, Any] | None = None
    # The default host's mirrors and fallbacks (serve --host a --host b --fallback c).
    mirrors: tuple[str, ...] = ()
    fallbacks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.roots = tuple(Path(os.path.realpath(root)) for root in self.roots)
        self.allow_origins = frozenset(normalize_origin(origin) for origin in self.allow_origins)


class Refused(Exception):
    """A request answered with an error status and a one-line message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None, close: bool = False) -> None:
        super().__init__(message)
        self.status, self.message, self.headers, self.close = status, message, headers or {}, close


class EntryError(Exception):
    """One entry of a request cannot be uploaded; the others go on."""


class BodyClock:
    """Bounds how long a request's body may take: BODY_TIMEOUT seconds, plus the time its bytes so far
    need at MIN_BODY_RATE. Every read from the body goes through :meth:`read`."""

    def __init__(self, grace: float) -> None:
        self.deadline = time.monotonic() + grace
        self.received = 0

    async def read(self, body: aiohttp.StreamReader) -> bytes:
        """What has arrived of ``body`` (b"" at its end), waiting for more only if nothing has: a body that
        came in one piece, as most do, costs no timer."""
        chunk = body.read_nowait()
        if not chunk and not body.at_eof():
            remaining = self.deadline + self.received / MIN_BODY_RATE - time.monotonic()
            try:
                async with asyncio.timeout(max(remaining, 0.0)):
                    chunk = await body.readany()
            except TimeoutError:
                raise Refused(408, f"the body arrived too slowly (under {MIN_BODY_RATE // 1024} KB/s); send it "
                                   "again", close=True) from None  # fmt: skip
        self.received += len(chunk)
        return chunk


# -- request policy ------------------------------------------------------------------------------
def normalize_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def check_origin(origin: str) -> str:
    """An ``--allow-origin`` value, checked: ``null`` or ``scheme://host[:port]`` without a path."""
    value = normalize_origin(origin)
    if value == "null" or re.fullmatch(r"[a-z][a-z0-9+.-]*://[^/?#\s]+", value):
        return value
    raise ConfigError(f"--allow-origin {origin!r}: expected an origin such as https://example.com (no path)")


@functools.lru_cache(maxsize=64)  # each request asks, and a client sends the same Host every time
def host_header_allowed(header: str | None, public: bool) -> bool:
    """The DNS-rebinding defence: a page on evil.example that re-points its name at 127.0.0.1 still sends
    ``Host: evil.example``. Loopback names and addresses pass; with ``--listen`` any IP literal too (a
    literal cannot be re-pointed)."""
    if not header:
        return False
    name = header.strip().lower()
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else ""
    elif name.count(":") == 1:
        name = name.split(":")[0]
    name = name.rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return False
    return address.is_loopback or public


def address_problem(text: str) -> str | None:
    """Why an address must not be fetched from (loopback, private, link-local...), or None if public."""
    try:
        address = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return "not an IP address"
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_site_local:  # fec0::/10: deprecated, but still routed inside some networks
            return "a site-local address"
        address = embedded_ipv4(address) or address
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if not address.is_global or address.is_multicast:
        return "not a public address"
    return None


# IPv6 prefixes whose last 32 bits are an IPv4 address a packet reaches: IPv4-compatible (::a.b.c.d), NAT64
# (RFC 6052's well-known prefix and RFC 8215's local one) and SIIT (::ffff:0:a.b.c.d, RFC 2765).
_CARRY_IPV4 = tuple(
    ipaddress.IPv6Network(prefix) for prefix in ("::/96", "64:ff9b::/96", "64:ff9b:1::/48", "::ffff:0:0:0/96")
)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, compatible, NAT64, SIIT), judged as itself."""
    carried = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
    if carried is None and int(address) > 1 and any(address in network for network in _CARRY_IPV4):  # not :: or ::1
        carried = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return carried


def presented_secret(request: web.Request) -> str | None:
    authorization = request.headers.get("Authorization", "")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return request.headers.get("X-PicGo-Secret") or request.query.get("secret") or request.query.get("key")


def safe_name(name: str | None, fallback: str) -> str:
    """A posted file's name as a plain file name (clients may send a whole path)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[\x00-\x1f\x7f]", "", base).strip().lstrip(".")[:200]
    return base or fallback


def _is_image(path: Path) -> bool:
    with open(path, "rb") as handle:
        return sniff_image(handle.read(SNIFF_BYTES)) is not None


NOT_IMAGE = "not an image (by its content); picbeam serve uploads only images unless started with --allow-any-file"


# -- URL entries ---------------------------------------------------------------------------------
class AddressRefused(OSError):
    """A name resolved to an address that must not be fetched from. aiohttp wraps it in the connection
    error of the one fetch that resolved the name, so each entry reports its own reason."""


class CheckingResolver(AbstractResolver):
    """Resolves names and refuses any answer that is not a public address: the check and the connection
    use the same addresses, so a name cannot answer "public" to the check and "loopback" to the connect."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = aiohttp.resolver.DefaultResolver()
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        if not self.allow_private:
            for answer in answers:
                problem = address_problem(answer["host"])
                if problem:
                    raise AddressRefused(
                        f"refused: {host} resolves to {answer['host']}, {problem} (see --allow-private-urls)"
                    )
        return answers

    async def close(self) -> None:
        await self._inner.close()


class UrlFetcher:
    """Downloads http(s) entries into a folder: public addresses only (every redirect hop is checked
    again), at most ``limit`` bytes for all the fetches together, each within ``timeout`` seconds, no
    proxy, no cookies."""

    def __init__(self, *, allow_private: bool, limit: int, timeout: float) -> None:
        self.allow_private, self.limit, self.timeout = allow_private, limit, timeout
        self.received = 0

    async def __aenter__(self) -> UrlFetcher:
        from .sending import USER_AGENT

        self.resolver = CheckingResolver(self.allow_private)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=self.resolver, limit=FETCH_CONCURRENCY),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": USER_AGENT},
            trust_env=False,  # a proxy would connect for us, past the address checks
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()

    def check_url(self, url: URL) -> None:
        if url.scheme not in ("http", "https"):
            raise EntryError(f"refused: only http and https URLs are fetched, not {url.scheme or 'this'}")
        if not url.host:
            raise EntryError("refused: the URL names no host")
        if self.allow_private:
            return
        try:
            ipaddress.ip_address(url.host.split("%")[0])
        except ValueError:
            return  # a name: the resolver checks every address it resolves to
        problem = address_problem(url.host)
        if problem:
            raise EntryError(f"refused: {url.host} is {problem} (see --allow-private-urls)")

    async def fetch(self, text: str, folder: Path) -> Path:
        try:
            url = URL(text)
        except ValueError:
            raise EntryError("not a valid URL") from None
        try:
            async with asyncio.timeout(self.timeout):
                return await self._follow(url, folder)
        except TimeoutError:
            raise EntryError(f"fetching the URL took more than {self.timeout:.0f} s") from None
        except aiohttp.ClientError as exc:
            refused = getattr(exc, "os_error", None)
            if isinstance(refused, AddressRefused):
                raise EntryError(str(refused)) from None
            raise EntryError(f"cannot fetch the URL: {type(exc).__name__}: {exc}") from None

    async def _follow(self, url: URL, folder: Path) -> Path:
        for _ in range(MAX_REDIRECTS + 1):
            self.check_url(url)
            async with self.session.get(url, allow_redirects=False) as response:
                if response.status in REDIRECTS and response.headers.get("Location"):
                    url = url.join(URL(response.headers["Location"]))
                    continue
                if not 200 <= response.status < 300:
                    raise EntryError(f"the URL answered HTTP {response.status}")
                if response.content_length is not None and response.content_length > self.limit:
                    raise EntryError(f"the URL's file is over the server's limit of {self.limit} bytes")
                return await self._save(response, url, folder)
        raise EntryError(f"more than {MAX_REDIRECTS} redirects")

    async def _save(self, response: aiohttp.ClientResponse, url: URL, folder: Path) -> Path:
        name = safe_name(url.name, "download")
        if "." not in name:
            name += mimetypes.guess_extension(response.content_type or "") or ""
        path = folder / name
        with open(path, "wb") as handle:
            async for chunk in response.content.iter_chunked(CHUNK):
                self.received += len(chunk)
                if self.received > self.limit:
                    raise EntryError(f"the URL's file is over the server's limit of {self.limit} bytes")
                handle.write(chunk)
        return path


# -- the server ----------------------------------------------------------------------------------
class Scratch:
    """A request's temporary folder, made only when something needs the disk (a big posted file, a
    fetched URL, the clipboard's image): creating and removing a folder per request costs more than
    uploading a screenshot."""

    def __init__(self) -> None:
        self._temporary: tempfile.TemporaryDirectory[str] | None = None

    def make(self, name: str) -> Path:
        """A new, empty subfolder ``name``."""
        if self._temporary is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="picbeam-serve-")
        folder = Path(self._temporary.name) / name
        folder.mkdir()
        return folder

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._temporary is not None:
            self._temporary.cleanup()


@dataclass
class Entry:
    """One thing a request asked to upload. ``given`` is how the client named it (a path, a URL, a
    posted file's name); ``path`` is the file to send once it is checked or fetched."""

    given: str
    path: Path | None = None
    error: str | None = None
    data: bytes | None = field(default=None, repr=False)  # a posted file small enough to stay in memory
    clipboard: bool = False
    result: UploadResult | None = field(default=None, repr=False)


class PicGoServer:
    """The aiohttp application: ``POST /upload`` and ``POST /heartbeat``."""

    def __init__(self, options: ServerOptions, plugins: Any, config: Any, registry: Any,
                 log: Callable[[str], None] = lambda line: None) -> None:  # fmt: skip
        self.options, self.plugins, self.config, self.registry, self.log = options, plugins, config, registry, log
        # One long-lived batch per host (and processing options) for the server's life: its HTTP session,
        # ledger connection and processors are set up once, and every request's files share its limits.
        self._batches: dict[tuple[str, str], Any] = {}
        self._own_process_key = json.dumps(self.options.process or {}, sort_keys=True)
        self._ledger_reported: set[int] = set()  # the batches whose ledger failure the log has told
        self.webapp = WebApp(self)

    # -- listening --------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Set the application up; then :meth:`listen` on each address, and :meth:`stop` at the end."""
        _check_multipart()
        # aiohttp closes a connection still waiting for a request's headers when its keep-alive timer runs
        # out (from the connection's start, and again after each answer): that is the header timeout.
        # After an early answer (408, 413) aiohttp reads what is left of the body for lingering_time seconds
        # (so the client sees the answer, not a reset): 1 s, or a dribbling client holds on for 10 s more.
        self._runner = web.AppRunner(self.app(), handle_signals=False, access_log=None, lingering_time=1.0,
                                     keepalive_timeout=self.options.header_timeout)  # fmt: skip
        await self._runner.setup()
        self._listening: list[asyncio.base_events.Server] = []

    async def listen(self, address: str, port: int) -> int:
        """Accept connections on address:port (0 for a free port); returns the port."""
        server = await asyncio.get_running_loop().create_server(self._connection, address, port)
        self._listening.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        for server in self._listening:
            server.close()
        await self._runner.cleanup()  # closes the open connections, then the app's clean-up (the batches)
        for server in self._listening:
            await server.wait_closed()

    def _connection(self) -> asyncio.BaseProtocol:
        handlers = self._runner.server
        assert handlers is not None
        if len(handlers.connections) >= self.options.max_connections:
            return Busy(self.options.max_connections)
        return handlers()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.guard], client_max_size=self.options.max_body)
        app.on_cleanup.append(self._close_batches)
        self.webapp.routes(app)
        app.router.add_route("POST", "/upload", self.upload)
        app.router.add_route("POST", "/heartbeat", self.heartbeat)
        app.router.add_route("GET", "/heartbeat", self.heartbeat)
        return app

    # -- every request passes here first -----------------------------------------------------------
    @web.middleware
    async def guard(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                    ) -> web.StreamResponse:  # fmt: skip
        started = time.monotonic()
        origin = request.headers.get("Origin")
        web_page = is_webapp_path(request.path)  # the web app: same origin only, never CORS
        listed = not web_page and origin is not None and normalize_origin(origin) in self.options.allow_origins
        try:
            self._check_request(request, origin, listed)
            if web_page:
                self.webapp.check(request)
                response: web.StreamResponse = await handler(request)
            elif request.method == "OPTIONS":
                if not listed:
                    raise Refused(403, "preflight refused: this origin is not allowed (see --allow-origin)")
                response = web.Response(status=204, headers=_preflight_headers(request))
            else:
                if request.path != "/heartbeat":
                    self._check_secret(request)
                response = await handler(request)
        except Refused as refused:
            response = answer_json({"success": False, "message": refused.message}, refused.status, refused.headers)
            if refused.close:  # the rest of the body is not worth waiting for
                response.force_close()
        except web.HTTPException as exc:
            response = answer_json({"success": False, "message": exc.reason}, exc.status)
        except (asyncio.CancelledError, ConnectionError):
            raise  # the client went away
        except Exception as exc:  # a bug: one line, not a traceback
            response = answer_json({"success": False, "message": f"internal error: {type(exc).__name__}: {exc}"}, 500)
        if listed and origin is not None:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        summary = response.headers.pop("X-Picbeam-Summary", "")
        self.log(f"{request.method} {request.path} {response.status}{summary} {time.monotonic() - started:.2f}s")
        return response

    def _check_request(self, request: web.Request, origin: str | None, listed: bool) -> None:
        if not host_header_allowed(request.headers.get("Host"), self.options.public):
            raise Refused(403, "refused: the Host header must name this machine by a loopback name or address")
        if listed or is_webapp_path(request.path):
            return
        if origin is not None:
            value = normalize_origin(origin)
            if value in ("null", "file://") or value.startswith(("http://", "https://", "file:")):
                raise Refused(403, f"refused: requests from web pages ({value}) are not served; "
                                   "start picbeam serve with --allow-origin ORIGIN to allow one")  # fmt: skip
            return  # an editor app's own scheme (app://obsidian.md, vscode-webview://...)
        if request.headers.get("Sec-Fetch-Site", "").lower() in ("cross-site", "same-site"):
            raise Refused(403, "refused: a cross-site request from a browser")

    def _check_secret(self, request: web.Request) -> None:
        secret = self.options.secret
        if not secret:
            return
        given = presented_secret(request)
        challenge = {"WWW-Authenticate": "Bearer"}
        if not given:
            raise Refused(401, f"this server needs its secret: {SECRET_HINT}", challenge)
        if not hmac.compare_digest(given.encode("utf-8"), secret.encode("utf-8")):
            raise Refused(401, "wrong secret", challenge)

    # -- routes ------------------------------------------------------------------------------------
    async def heartbeat(self, request: web.Request) -> web.StreamResponse:
        return answer_json({"success": True, "result": "alive"})

    async def upload(self, request: web.Request) -> web.StreamResponse:
        name = request.query.get("host") or request.query.get("picbed") or self.options.host
        kept = self._batches.get(self._batch_key(name))
        if kept is not None:  # the usual case, without the context manager's cost
            return self._answer(await self.receive(request, kept))
        async with self.batch(name) as batch:
            return self._answer(await self.receive(request, batch))

    async def receive(self, request: web.Request, batch: Any, *, posted_only: bool = False) -> list[Entry]:
        """Read a request's entries, check or fetch them, upload them with ``batch``. ``posted_only``:
        only files posted in a multipart body (the web app's), never paths or URLs."""
        with Scratch() as folder:
            if posted_only:
                entries = await self._read_multipart(request, folder)
            else:
                entries = await self._read(request, folder)
            await self._prepare(entries, folder)
            try:
                await self._upload(batch, entries)
            except PicbeamError as exc:
                raise Refused(500, str(exc)) from None
        return entries

    @contextlib.asynccontextmanager
    async def batch(self, name: str, process: dict[str, Any] | None = None) -> AsyncIterator[Any]:
        """The server's batch for host ``name`` with these processing options, opened on first use and
        kept. Past MAX_BATCHES kept (the web app can ask for many processing variants) a request gets a
        batch of its own, closed after it."""
        from .api import open_batch
        from .mirrors import hosts_for, open_uploads

        # serve's own processing flags, under what the web app asks for this request
        process = {**(self.options.process or {}), **(process or {})} or None
        key = self._batch_key(name, process)
        batch = self._batches.get(key)
        if batch is not None:
            yield batch
            return
        default = name == self.options.host
        names, fallbacks = [name, *(self.options.mirrors if default else ())], self.options.fallbacks if default else ()
        overrides = self.options.overrides if default else ()
        options = {"plugins": self.plugins, "jobs": self.options.jobs, "retries": self.options.retries,
                   "ledger": self.options.ledger, "force": self.options.force, "dry_run": self.options.dry_run,
                   "process": process}  # fmt: skip
        try:
            hosts, backups = hosts_for(self.registry, names, fallbacks, overrides)
            if len(hosts) == 1 and not backups:
                batch = open_batch(hosts[0], self.config, **options)
        except ConfigError as exc:
            raise Refused(400, str(exc)) from None
        except PicbeamError as exc:
            raise Refused(500, str(exc)) from None
        if batch is None:  # mirrors or fallbacks: each request is a run of its own
            yield MirroredRun(lambda emit: open_uploads(self.registry, names, self.config, fallbacks=fallbacks,
                                                        overrides=overrides, emit=emit, report=self._report,
                                                        **options))  # fmt: skip
            return
        await batch.__aenter__()
        if len(self._batches) < MAX_BATCHES:
            self._batches[key] = batch
            yield batch
            return
        try:
            yield batch
        finally:
            await batch.__aexit__(None, None, None)

    def _batch_key(self, name: str, process: Mapping[str, Any] | None = None) -> tuple[str, str]:
        """The kept batch's key: the host, and the processing options (serve's own by default)."""
        if process is None:
            return name, self._own_process_key
        return name, json.dumps(process, sort_keys=True)

    def _report(self, failed: UploadResult) -> None:
        self.log(f"{failed.path}: {failed.host}: {failed.error}")

    async def _close_batches(self, app: web.Application) -> None:
        batches, self._batches = list(self._batches.values()), {}
        for batch in batches:
            try:
                await batch.__aexit__(None, None, None)
            except PicbeamError as exc:  # the host's last finish (GitHub's commit) failed
                self.log(str(exc))

    # -- reading a request -------------------------------------------------------------------------
    async def _read(self, request: web.Request, folder: Scratch) -> list[Entry]:
        # The raw header: aiohttp's request.content_type parses it with the email package, slower than an upload.
        if request.headers.get("Content-Type", "").lstrip().lower().startswith("multipart/"):
            return await self._read_multipart(request, folder)
        body = await self._read_body(request, MAX_JSON_BYTES)
        if not body.strip():
            return [Entry("clipboard", clipboard=True)]
        try:
            data = json.loads(body.decode("utf-8-sig"))
        except RecursionError:
            raise Refused(400, 'the body is nested too deeply; expected {"list": ["/path/a.png", ...]}') from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise Refused(400, f'the body is not JSON ({exc}); expected {{"list": ["/path/a.png", ...]}}') from None
        if not isinstance(data, dict) or not isinstance(data.get("list", []), list):
            raise Refused(400, 'expected a JSON object {"list": ["/path/a.png", "https://..."]}')
        entries = data.get("list", [])
        if not all(isinstance(entry, str) for entry in entries):
            raise Refused(400, '"list" must hold strings: file paths or http(s) URLs')
        if len(entries) > self.options.max_list:
            raise Refused(413, f"too many entries: at most {self.options.max_list} per request")
        return [Entry(entry) for entry in entries] or [Entry("clipboard", clipboard=True)]

    async def _read_body(self, request: web.Request, limit: int) -> bytes:
        if request.content_length is not None and request.content_length > limit:
            raise Refused(413, f"the body is over the limit of {limit} bytes")
        body = bytearray()
        clock = BodyClock(self.options.body_timeout)
        while chunk := await clock.read(request.content):
            body += chunk
            if len(body) > limit:
                raise Refused(413, f"the body is over the limit of {limit} bytes")
        return bytes(body)

    async def _read_multipart(self, request: web.Request, folder: Scratch) -> list[Entry]:
        """The file parts of a multipart body (text fields are passed over), parsed as the bytes arrive by
        the ``multipart`` library's push parser: aiohttp's reader parsed each part's headers in Python
        twice and awaited every line, which cost more than sending the screenshot on."""
        from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header

        limit = self.options.max_body
        if request.content_length is not None and request.content_length > limit:
            raise Refused(413, f"the body is over the limit of {limit} bytes")
        boundary = parse_options_header(request.headers.get("Content-Type", ""))[1].get("boundary")
        if not boundary:
            raise Refused(400, "malformed multipart body: its Content-Type names no boundary")
        entries: list[Entry] = []
        part: PostedPart | None = None
        received = 0
        clock = BodyClock(self.options.body_timeout)
        try:
            with PushMultipartParser(boundary, max_segment_count=self.options.max_list + MAX_TEXT_FIELDS) as parser:
                while not parser.closed:  # an empty read (the body's end) closes it, or fails an unfinished body
                    chunk = await clock.read(request.content)
                    received += len(chunk)
                    if received > limit:
                        raise Refused(413, f"the body is over the limit of {limit} bytes")
                    for event in parser.parse(chunk):
                        if isinstance(event, MultipartSegment):
                            part = self._posted_part(event, len(entries), folder)
                        elif event is None:  # the part is complete
                            if part is not None:
                                entries.append(part.entry())
                            part = None
                        elif part is not None:
                            part.write(event)
        except MultipartError as exc:
            raise Refused(400, f"malformed multipart body: {exc}") from None
        finally:
            if part is not None:
                part.close()
        if not entries:
            raise Refused(400, "the multipart body carried no file part (send parts named files or list)")
        return entries

    def _posted_part(self, segment: Any, count: int, folder: Scratch) -> PostedPart | None:
        """Where a part goes: a file part (the ``count``-th, counted from 0), or None for a text field."""
        filename = _part_filename(segment)
        if filename is None:
            return None
        if count == self.options.max_list:
            raise Refused(413, f"too many files: at most {self.options.max_list} per request")
        return PostedPart(filename, count + 1, folder)

    # -- checking and fetching entries ---------------------------------------------------------------
    async def _prepare(self, entries: list[Entry], folder: Scratch) -> None:
        for entry in entries:
            if entry.data is not None:
                self._check_bytes(entry)
        urls = [(n, e) for n, e in enumerate(entries) if e.path is None and not e.clipboard and _is_url(e.given)]
        files = [e for e in entries if e.data is None and (e.path is not None or e.clipboard or not _is_url(e.given))]
        fetching = asyncio.create_task(self._fetch_all(urls, folder)) if urls else None
        if files:
            await asyncio.to_thread(self._check_files, files, folder)
        if fetching is not None:
            await fetching

    def _check_bytes(self, entry: Entry) -> None:
        if not self.options.allow_any_file and sniff_image(entry.data[:SNIFF_BYTES] if entry.data else b"") is None:
            entry.error, entry.path, entry.data = NOT_IMAGE, None, None

    def _check_files(self, entries: list[Entry], folder: Scratch) -> None:
        """Runs in a thread: the clipboard, local paths and posted files on disk."""
        for entry in entries:
            try:
                if entry.path is not None:  # posted with the request
                    self._check_content(entry.path)
                elif entry.clipboard:
                    from .clipboard import save_image

                    entry.path = save_image(folder.make("clipboard"))
                else:
                    entry.path = self._check_local(entry.given)
            except (EntryError, PicbeamError) as exc:
                entry.error, entry.path = str(exc), None

    async def _fetch_all(self, urls: Sequence[tuple[int, Entry]], folder: Scratch) -> None:
        options = self.options
        async with UrlFetcher(allow_private=options.allow_private_urls, limit=options.max_body,
                              timeout=options.url_timeout) as fetcher:  # fmt: skip

            async def one(number: int, entry: Entry) -> None:
                try:
                    entry.path = await fetcher.fetch(entry.given, folder.make(f"url{number}"))
                    await asyncio.to_thread(self._check_content, entry.path)
                except EntryError as exc:
                    entry.error, entry.path = str(exc), None

            await asyncio.gather(*(one(number, entry) for number, entry in urls))

    def _check_local(self, text: str) -> Path:
        if len(text) > MAX_ENTRY_CHARS or "\x00" in text:
            raise EntryError("not a usable path")
        if "://" in text:
            raise EntryError("refused: only file paths and http(s) URLs are accepted")
        if not os.path.isabs(text):
            raise EntryError("not an absolute path")
        real = Path(os.path.realpath(text))
        if self.options.roots and not any(real.is_relative_to(root) for root in self.options.roots):
            raise EntryError("refused: outside the folders this server may read (--root)")
        try:
            info = real.stat()
        except FileNotFoundError:
            raise EntryError("no such file") from None
        except OSError as exc:
            raise EntryError(f"cannot read: {exc.strerror or exc}") from None
        if not stat.S_ISREG(info.st_mode):
            raise EntryError("not a regular file")
        self._check_content(real)
        return real

    def _check_content(self, path: Path) -> None:
        if self.options.allow_any_file:
            return
        try:
            image = _is_image(path)
        except OSError as exc:
            raise EntryError(f"cannot read: {exc.strerror or exc}") from None
        if not image:
            raise EntryError(NOT_IMAGE)

    # -- uploading --------------------------------------------------------------------------------
    async def _upload(self, batch: Any, entries: list[Entry]) -> None:
        ready = [entry for entry in entries if entry.path is not None]
        if not ready:
            return
        # Not explicit unless --allow-any-file: the engine then skips whatever is not an image by the bytes
        # it actually reads, whatever was checked before.
        found = [Found(entry.path, explicit=self.options.allow_any_file, data=entry.data) for entry in ready
                 if entry.path]  # fmt: skip
        if ledger_failed := _ledger_error(batch):  # each upload would be one more the ledger cannot remember
            raise Refused(500, f"{ledger_failed}; {LEDGER_FAILED_HINT}")
        results = await batch.submit(found)
        if (ledger_failed := _ledger_error(batch)) and id(batch) not in self._ledger_reported:
            self._ledger_reported.add(id(batch))  # it failed during this request: its files are uploaded
            self.log(f"{ledger_failed}; {LEDGER_FAILED_HINT}")
        for entry, result in zip(ready, results, strict=True):
            entry.result = result
            if entry.result is None:
                entry.error = NOT_IMAGE
            elif entry.result.error:
                entry.error = entry.result.error

    def _answer(self, entries: list[Entry]) -> web.Response:
        items = []
        for entry in entries:
            result = entry.result if entry.error is None else None
            items.append({"path": entry.given, "url": result.url if result else None,
                          "reused": bool(result and result.reused), "error": entry.error})  # fmt: skip
        uploaded = sum(1 for item in items if item["url"])
        summary = {"X-Picbeam-Summary": f" ({uploaded} uploaded, {len(items) - uploaded} failed)"}
        if not uploaded:
            errors = [f"{item['path']}: {item['error']}" for item in items]
            message = errors[0] if len(errors) == 1 else f"all {len(errors)} uploads failed; first: {errors[0]}"
            return answer_json({"success": False, "message": message, "items": items}, 500, summary)
        # result[i] belongs to list[i]: a failed entry keeps its place (holding what the client sent), so an
        # editor that pairs URLs with images by position never puts one image's URL on another.
        if self.options.format != "url":
            from .output import format_result

            for item, entry in zip(items, entries, strict=True):
                if item["url"] and entry.result is not None:
                    item["text"] = format_result(entry.result, self.options.format)
        result = [item.get("text") or item["url"] or item["path"] for item in items]
        return answer_json({"success": True, "result": result, "items": items}, 200, summary)


class PostedPart:
    """A file part being received: in memory while small (most screenshots), on disk past IN_MEMORY_LIMIT."""

    def __init__(self, filename: str, number: int, folder: Scratch) -> None:
        self.filename, self.number, self.folder = filename, number, folder
        self.name = safe_name(filename, f"upload-{number}")
        self.chunks: list[bytes] = []
        self.size = 0
        self.handle: Any = None
        self.path: Path | None = None

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.handle is None and self.size > IN_MEMORY_LIMIT:
            self.path = self.folder.make(f"part{self.number}") / self.name
            self.handle = open(self.path, "wb")  # noqa: SIM115 (closed by entry() or close())
            self.handle.writelines(self.chunks)
            self.chunks = []
        if self.handle is not None:
            self.handle.write(chunk)
        else:
            self.chunks.append(chunk)

    def entry(self) -> Entry:
        """The complete part, as the request's entry."""
        self.close()
        if self.path is not None:
            return Entry(self.filename, self.path)
        return Entry(self.filename, Path(self.name), data=b"".join(self.chunks))

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


class MirroredRun:
    """A request's own run to a host with mirrors or fallbacks (see picbeam.mirrors), with the long-lived
    batch's ``submit``: the results in the order given."""

    def __init__(self, make: Callable[[Callable[[UploadResult], None]], Any]) -> None:
        self.make = make

    async def submit(self, found: Sequence[Found]) -> list[UploadResult | None]:
        results: dict[int, UploadResult] = {}
        with self.make(lambda result: results.__setitem__(result.index, result)) as run:
            await run.run(found)
        return [results.get(index) for index in range(len(found))]


class Busy(asyncio.Protocol):
    """The answer to a connection over the cap: 503 and close, before reading anything."""

    def __init__(self, cap: int) -> None:
        self.cap = cap

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        message = f"too many connections (at most {self.cap}); try again"
        body = json.dumps({"success": False, "message": message}).encode()
        head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
                "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n")  # fmt: skip
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(head.encode() + body)
        transport.close()


def _ledger_error(batch: Any) -> str | None:
    summary = getattr(batch, "summary", None)  # a request's own run (mirrors, fallbacks) reports its own
    return summary.ledger_error if summary is not None else None


def _check_multipart() -> None:
    """The multipart library is there, not shadowed: python-multipart before 0.0.13 installed a package
    of the same import name, which hides it."""
    try:
        from multipart import PushMultipartParser  # noqa: F401
    except ImportError:
        raise ConfigError(
            "serve needs the 'multipart' package, and an old python-multipart (before 0.0.13) installed a "
            "package of the same name over it: upgrade python-multipart (pip install -U python-multipart), "
            "or install picbeam in a virtual environment of its own"
        ) from None


def _part_filename(segment: Any) -> str | None:
    """A file part's name as the client wrote it, or None for a text field. Clients put whole paths
    there, unescaped (filename="C:\\vault\\a.png"), which a parser turns into another name (the
    multipart library keeps only ``a.png``): read the raw header."""
    disposition = segment.header("Content-Disposition", "")
    if raw := re.search(r'(?:^|;)\s*filename="([^"]*)"', disposition):
        return raw.group(1)
    if extended := re.search(r"(?:^|;)\s*filename\*\s*=\s*([\w!#$%&+^`{}~.-]*)'[^']*'([^;\s]+)", disposition):
        charset = extended.group(1) or "utf-8"
        try:
            return urllib.parse.unquote(extended.group(2), encoding=charset, errors="replace")
        except LookupError:  # an unknown charset
            return urllib.parse.unquote(extended.group(2), errors="replace")
    return segment.filename


def _is_url(text: str) -> bool:
    return text[:8].lower().startswith(("http://", "https://"))


def answer_json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer, non-ASCII text as it is (editors show file names)."""
    return web.json_response(body, status=status, headers=headers, dumps=lambda d: json.dumps(d, ensure_ascii=False))


def _preflight_headers(request: web.Request) -> dict[str, str]:
    headers = {
        "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
        "Access-Control-Allow-Headers": "Authorization, Content-Type, X-PicGo-Secret",
        "Access-Control-Max-Age": "600",
    }
    if request.headers.get("Access-Control-Request-Private-Network") == "true":
        headers["Access-Control-Allow-Private-Network"] = "true"
    return headers
