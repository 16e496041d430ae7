"""Test kit for picbeam and for host-plugin authors: a real HTTP server on loopback that records exactly
what arrived and answers with scripted replies.

Opt in from a ``conftest.py``::

    pytest_plugins = ["picbeam.testing"]

    def test_my_host(fake_host):
        fake_host.reply(json={"data": {"link": "https://i.example/x.png"}})
        ...upload to fake_host.endpoint...
        assert fake_host.requests[0].file.field == "image"

The server runs in its own thread and event loop, so it serves the ``picbeam`` command run as a
subprocess, the synchronous API and async tests alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import ssl
import subprocess
import sys
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from multidict import CIMultiDict


@dataclass
class RecordedFile:
    """One file part of a multipart request, as it arrived."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class RecordedRequest:
    """Everything the fake host saw of one request."""

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    form: dict[str, str] = field(default_factory=dict)
    files: list[RecordedFile] = field(default_factory=list)
    body: bytes = b""
    number: int = 0
    # The query string as sent: ``query`` keeps one value per key, this shows a key sent twice.
    query_string: str = ""

    @property
    def file(self) -> RecordedFile:
        """The only (or first) file part."""
        if not self.files:
            raise AssertionError(f"request {self.number} carried no file part (form: {sorted(self.form)})")
        return self.files[0]

    @property
    def content(self) -> bytes:
        """The uploaded bytes: the file part of a multipart request, or the raw body."""
        return self.files[0].data if self.files else self.body


@dataclass
class Reply:
    """A scripted answer. ``fault`` injects a failure instead: ``"drop"`` closes the connection before
    answering, ``"drop-mid-body"`` closes it after reading part of the upload, ``"stall"`` sends nothing
    for ``delay`` seconds (default 3600)."""

    status: int = 200
    json: Any = None
    text: str | None = None
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    fault: str | None = None

    def response(self) -> web.StreamResponse:
        headers = dict(self.headers)
        if self.json is not None:
            return web.json_response(self.json, status=self.status, headers=headers)
        if self.text is not None:
            return web.Response(text=self.text, status=self.status, headers=headers)
        return web.Response(body=self.body or b"", status=self.status, headers=headers)


Responder = Callable[[RecordedRequest, "FakeHost"], Reply]
# Handlers still running when a test server stops (a stalled reply whose client gave up long ago) are
# cancelled after this long: aiohttp's default waits 60 s for them, longer than stop() waits for the thread.
SHUTDOWN_SECONDS = 0.5
TRANSIENT_FAULTS = ("500", "502", "503", "429", "drop", "drop-mid-body")


class FaultInjector:
    """Chooses which requests fail and how; counts what it injected (``injected``)."""

    def __init__(self, rate: float, kinds: tuple[str, ...], per_file: int, seed: int, retry_after: str) -> None:
        self.rate, self.kinds, self.per_file, self.retry_after = rate, kinds, per_file, retry_after
        self.injected: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._per_key: Counter[str] = Counter()
        self._lock = threading.Lock()

    def on_arrival(self) -> Reply | None:
        """A fault decided before the body is read (only a mid-body drop)."""
        with self._lock:
            if "drop-mid-body" in self.kinds and self._random.random() < self.rate / len(self.kinds):
                self.injected["drop-mid-body"] += 1
                return Reply(fault="drop-mid-body")
        return None

    def after_body(self, request: RecordedRequest) -> Reply | None:
        key = hashlib.sha256(request.content).hexdigest()
        kinds = [k for k in self.kinds if k != "drop-mid-body"]
        with self._lock:
            if not kinds or self._per_key[key] >= self.per_file or self._random.random() >= self.rate:
                return None
            self._per_key[key] += 1
            kind = self._random.choice(kinds)
            self.injected[kind] += 1
        if kind == "drop":
            return Reply(fault="drop")
        if kind == "429":
            return Reply(status=429, json={"message": "slow down"}, headers={"Retry-After": self.retry_after})
        return Reply(
            status=int(kind), text=f"<html><title>{kind} injected</title></html>", headers={"Content-Type": "text/html"}
        )


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without an answer (the client sees it disconnect)."""
    assert request.transport is not None
    request.transport.abort()
    return web.Response(status=599)


class FakeHost:
    """An image host on 127.0.0.1 that records requests and replies as scripted.

    By default it answers like SM.MS: ``{"success": true, "data": {"url": ".../files/N/NAME"}}``,
    and serves every stored upload back at that URL.
    """

    def __init__(self, responder: Responder | None = None) -> None:
        self.requests: list[RecordedRequest] = []
        self.stored: dict[str, bytes] = {}
        self._responder = responder
        self._script: deque[Reply | Responder] = deque()
        self._lock = threading.Lock()
        self._arrived = 0
        self._faults: FaultInjector | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- scripting ----------------------------------------------------------------------------------
    def reply(self, reply: Reply | None = None, /, **fields: Any) -> None:
        """Answer every request (after any scripted ones) with this reply."""
        chosen = reply or Reply(**fields)
        self._responder = lambda request, host: chosen

    def respond_with(self, responder: Responder) -> None:
        """Answer every request with ``responder(request, host)``."""
        self._responder = responder

    def script(self, replies: Iterable[Reply | Responder]) -> None:
        """Answer the next requests with these, in order, then fall back to the default."""
        self._script.extend(replies)

    # -- addresses ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def endpoint(self, path: str = "/upload") -> str:
        return self.url + path

    def file_url(self, request: RecordedRequest) -> str:
        name = request.files[0].filename if request.files else "upload"
        return f"{self.url}/files/{request.number}/{quote(name or 'upload')}"

    def default_reply(self, request: RecordedRequest) -> Reply:
        url = self.file_url(request)
        return Reply(json={"success": True, "code": "success", "data": {"url": url, "delete": url + "?delete"}})

    # -- life cycle ---------------------------------------------------------------------------------
    def start(self) -> FakeHost:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            runner = web.AppRunner(
                self._app(), handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS
            )
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = runner.addresses[0][1]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="picbeam-fake-host", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    def __enter__(self) -> FakeHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the server ---------------------------------------------------------------------------------
    def _app(self) -> web.Application:
        app = web.Application(client_max_size=1024**4)
        app.router.add_get("/files/{number}/{name:.+}", self._serve_file)  # a renamed upload's name has '/'s
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _serve_file(self, request: web.Request) -> web.Response:
        data = self.stored.get(f"{request.match_info['number']}/{request.match_info['name']}")
        return web.Response(body=data) if data is not None else web.Response(status=404)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self._arrived += 1
            number = self._arrived
            scripted = self._script.popleft() if self._script else None
        reply = scripted if isinstance(scripted, Reply) else None
        if reply is None and self._faults is not None:
            reply = self._faults.on_arrival()
        if reply is not None and reply.fault == "drop-mid-body":
            await request.content.read(1024)
            return _drop(request)
        recorded = await self._record(request, number)
        with self._lock:
            self.requests.append(recorded)
        if reply is None and self._faults is not None:
            reply = self._faults.after_body(recorded)
        if reply is None:
            responder = scripted if callable(scripted) else self._responder
            reply = responder(recorded, self) if responder else self.default_reply(recorded)
        if reply.fault == "drop":
            return _drop(request)
        if reply.fault == "stall":
            await asyncio.sleep(reply.delay or 3600)
        elif reply.delay:
            await asyncio.sleep(reply.delay)
        if 200 <= reply.status < 300 and recorded.files:
            with self._lock:
                self.stored[f"{number}/{recorded.files[0].filename}"] = recorded.files[0].data
        return reply.response()

    # -- faults ---------------------------------------------------------------------------------------
    def inject_faults(
        self,
        rate: float,
        *,
        kinds: Iterable[str] = TRANSIENT_FAULTS,
        per_file: int = 2,
        seed: int = 0,
        retry_after: str = "0",
    ) -> FaultInjector:
        """Fail about ``rate`` of the requests with transient faults: HTTP 500/502/503, 429 with
        Retry-After, a dropped connection, a connection dropped mid-body. No file is failed more than
        ``per_file`` times by an answer, so every file gets through with ``per_file`` retries."""
        self._faults = FaultInjector(rate, tuple(kinds), per_file, seed, retry_after)
        return self._faults

    def accepted(self) -> Counter[str]:
        """How many times each content (by sha256) was accepted with a 2xx answer."""
        with self._lock:
            return Counter(hashlib.sha256(data).hexdigest() for data in self.stored.values())

    async def _record(self, request: web.Request, number: int) -> RecordedRequest:
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=CIMultiDict(request.headers),
            number=number,
            query_string=request.query_string,
        )
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                data = await part.read()  # type: ignore[union-attr]
                name = part.name or ""  # type: ignore[union-attr]
                if part.filename is not None:  # type: ignore[union-attr]
                    recorded.files.append(
                        RecordedFile(name, part.filename, part.headers.get("Content-Type"), bytes(data))
                    )  # type: ignore[union-attr]
                else:
                    recorded.form[name] = bytes(data).decode("utf-8", errors="replace")
        else:
            recorded.body = await request.read()
        return recorded


def write_sample_image(path: str | os.PathLike[str], width: int = 8, height: int = 8, seed: int = 0) -> Path:
    """Write a valid RGB PNG of ``width`` x ``height`` to ``path`` and return the path; different ``seed``
    values give different files (different content hashes, so the ledger sees new files)."""
    from .samples import png

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(png(width, height, seed=seed))
    return target


@contextlib.contextmanager
def serving(app: web.Application, *, ssl_context: ssl.SSLContext | None = None) -> Iterator[str]:
    """Run an aiohttp application on 127.0.0.1 (an ephemeral port) in its own thread and event loop, for
    a host that FakeHost's scripted replies cannot play (one that streams, or acts mid-request); yields
    its base URL (``https://`` with ``ssl_context``, a server context holding its certificate)."""
    ready = threading.Event()
    state: dict[str, Any] = {}

    def serve() -> None:
        loop = asyncio.new_event_loop()
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context).start())
        state.update(loop=loop, port=runner.addresses[0][1])
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, name="picbeam-test-server", daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield f"{'https' if ssl_context else 'http'}://127.0.0.1:{state['port']}"
    finally:
        state["loop"].call_soon_threadsafe(state["loop"].stop)
        thread.join(10)


def write_host(folder: Path, name: str, **fields: Any) -> Path:
    """Write a hosts.d TOML file (tables as dicts), for tests that configure a host."""
    from .spec import dump_toml

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(dump_toml(fields), encoding="utf-8")
    return path


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


def run_picbeam(
    *args: str | os.PathLike[str], env: Mapping[str, str] | None = None, timeout: float = 120, input: str | None = None
) -> Completed:
    """Run the ``picbeam`` command in a subprocess (the real entry point, real exit status)."""
    merged = {**os.environ, **(env or {})}
    process = subprocess.run(
        [sys.executable, "-m", "picbeam", *map(str, args)],
        capture_output=True,
        text=True,
        env=merged,
        timeout=timeout,
        input=input,
    )
    return Completed(process.returncode, process.stdout, process.stderr)


# -- the opt-in pytest plugin ---------------------------------------------------------------------
try:
    import pytest
except ImportError:  # picbeam.testing is usable without pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def fake_host() -> Iterator[FakeHost]:
        """A started :class:`FakeHost`, stopped after the test."""
        with FakeHost() as host:
            yield host

    @pytest.fixture
    def picbeam_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        """Isolate picbeam's config, data, cache and ledger in ``tmp_path`` (no user files touched)."""
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        for name in ("PICBEAM_HOST", "PICBEAM_HOSTS_DIR", "PICBEAM_LEDGER", "PICBEAM_LOAD_PLUGINS",
                     "PICBEAM_DISABLE_PLUGINS"):  # fmt: skip
            monkeypatch.delenv(name, raising=False)
        return tmp_path

    @pytest.fixture
    def only_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
        """``only_plugins("my_plugin")``: this test sees the built-in plugins (hosts.d files included) and
        the third-party plugins named (entry-point names), no others, in ``run_picbeam`` and in the
        Python API alike."""
        from .loader import load_plugins

        def choose(*names: str) -> None:
            monkeypatch.setenv("PICBEAM_LOAD_PLUGINS", ",".join(names))
            load_plugins(reload=True)

        yield choose
        monkeypatch.undo()
        load_plugins(reload=True)

    @pytest.fixture
    def sample_image(tmp_path: Path) -> Path:
        """A small valid PNG in ``tmp_path`` (see :func:`sample_image`)."""
        return write_sample_image(tmp_path / "sample.png")


__all__ = [
    "Completed",
    "FakeHost",
    "FaultInjector",
    "RecordedFile",
    "RecordedRequest",
    "Reply",
    "run_picbeam",
    "serving",
    "write_host",
    "write_sample_image",
]
