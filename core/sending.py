"""Sending: the per-host gate, the ONE retry policy, the ONE classifier of failures, the proxy, and the
file payload (:class:`FileBody`: a file, or the stripper's ranges of it, sent with ``sendfile``).

The engine sends every file through :class:`RetryPolicy` and :class:`HostGate`; hosts that make requests
of their own beyond one upload (GitHub's commit, a storage host's login in :class:`~picbeam.storage.RunOnce`)
use the same policy and classifier, so "what is worth another attempt" and "how long to wait" have one
answer. HTTP statuses are classified by :func:`picbeam.errors.transient_status`.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp

from . import __version__
from .errors import UploadError
from .items import ExactFile, SpliceReader

if TYPE_CHECKING:
    from .hosts import Host

T = TypeVar("T")
USER_AGENT = f"picbeam/{__version__} (+https://pypi.org/project/picbeam/)"


def new_session(destination: str, jobs: int) -> aiohttp.ClientSession:
    """A run's session: ``jobs`` uploads in flight (and as many connections waiting), the proxy looked up once."""
    connector = aiohttp.TCPConnector(limit=jobs * 2, limit_per_host=0)
    return aiohttp.ClientSession(connector=connector, headers={"User-Agent": USER_AGENT}, **proxy_options(destination))


class FileBody(aiohttp.payload.IOBasePayload):
    """How aiohttp sends a file picbeam opened (:class:`ExactFile`, :class:`SpliceReader`): sized by the
    length declared when it was read (the file system would count what it has grown by since), and, on a
    plain connection, handed to the kernel with ``sendfile`` instead of being read through Python: a
    big file costs almost no CPU to send. TLS, chunked or compressed bodies are written as aiohttp does."""

    _value: ExactFile | SpliceReader

    @property
    def size(self) -> int | None:
        if self._start_position is None:
            self._start_position = self._value.tell()
        return max(0, self._value.declared_size - self._start_position)

    async def write_with_length(self, writer: Any, content_length: int | None) -> None:
        transport = writer.transport
        plain = (
            transport is not None
            and transport.get_extra_info("sslcontext") is None
            and not writer.chunked
            and getattr(writer, "_compress", None) is None  # request compression: picbeam never asks for it
            and getattr(writer, "on_body_write", None) is None  # an upload tracker counts what aiohttp writes
        )
        self._set_or_restore_start_position()
        pieces = self._value.pieces() if plain else None
        if pieces is None:
            await super().write_with_length(writer, content_length)
            return
        size = self.size or 0
        left = size if content_length is None else min(content_length, size)
        loop = asyncio.get_running_loop()
        for piece in pieces:
            if left <= 0:
                break
            if isinstance(piece, bytes):
                await writer.write(piece[:left])
                left -= min(left, len(piece))
                continue
            offset, length = piece
            count = min(length, left)
            writer.send_headers()  # headers still held for the first body bytes go out first
            sent = await loop.sendfile(transport, self._value.sendable(), offset, count, fallback=True)
            if sent < count:
                raise OSError("the file became shorter while it was being uploaded")
            writer.output_size += sent
            left -= sent


aiohttp.payload.register_payload(FileBody, ExactFile, order=aiohttp.payload.Order.try_first)
aiohttp.payload.register_payload(FileBody, SpliceReader, order=aiohttp.payload.Order.try_first)


def is_transient(exc: BaseException) -> bool:
    """Whether another attempt may succeed: an UploadError that says so (see ``transient_status``), a
    dropped or refused connection, a broken body, a timeout."""
    if isinstance(exc, UploadError):
        return exc.transient
    # ConnectionError: a broken pipe or a reset from a host's own transport (SSH), as aiohttp's are retried.
    return isinstance(
        exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError | asyncio.TimeoutError | ConnectionError
    )


def network_message(exc: BaseException) -> str:
    """A network or file failure in one line that says what to check."""
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out waiting for the host (check the endpoint or your network)"
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or exc.os_error
        return f"cannot connect to {exc.host}:{exc.port} ({reason}); check the endpoint or your network"
    if isinstance(exc, aiohttp.TooManyRedirects):
        return "the host redirected the upload too many times (check the endpoint)"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the host closed the connection before answering"
    if isinstance(exc, aiohttp.ClientError):
        return f"network error: {type(exc).__name__}: {exc}"
    reason = getattr(exc, "strerror", None) or exc
    if isinstance(exc, ConnectionError):
        return f"the connection to the host broke ({reason}); check the endpoint or your network"
    if isinstance(exc, OSError) and exc.filename is not None:  # only a named file is a local file's fault
        return f"cannot read {exc.filename}: {reason}"
    return f"input/output error while sending ({reason})"


def tries(attempts: int) -> str:
    """`` (after N attempts)`` for a message, when there was more than one."""
    return f" (after {attempts} attempts)" if attempts > 1 else ""


class HostGate:
    """Per-host limits shared by every worker: a concurrency cap, a request rate, and shared backoff.

    When the host throttles one request (429), every worker waits: the pause is the host's, not the file's.
    """

    def __init__(self, host: Host, jobs: int) -> None:
        self._slots = asyncio.Semaphore(min(jobs, host.concurrency or jobs))
        self._interval = 1.0 / host.rate_limit if host.rate_limit else 0.0
        self._next_start = 0.0
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> None:
        await self._slots.acquire()
        try:
            async with self._lock:
                now = time.monotonic()
                start = max(now, self._next_start, self._paused_until)
                self._next_start = start + self._interval
            if start > now:
                await asyncio.sleep(start - now)
        except BaseException:
            self._slots.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._slots.release()

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)


@dataclass
class Tally:
    """How many attempts one :meth:`RetryPolicy.run` made (read it even when the run raised)."""

    attempts: int = 0


@dataclass
class RetryPolicy:
    """The retry policy: transient failures (:func:`is_transient`, or ``retry_also``) are tried again up to
    ``retries`` times with exponential backoff and jitter from ``wait`` seconds (capped at ``wait_max``),
    honouring the host's ``Retry-After``; a 429 pauses the whole ``gate`` when there is one."""

    retries: int = 3
    wait: float = 0.5
    wait_max: float = 30.0
    gate: HostGate | None = None
    retry_also: Callable[[BaseException], bool] | None = None

    def backoff(self, exc: BaseException) -> bool | float:
        """stamina's ``on`` hook: False (give up), True (its own backoff) or the seconds to wait."""
        if not (is_transient(exc) or (self.retry_also is not None and self.retry_also(exc))):
            return False
        wait = getattr(exc, "retry_after", None)
        if self.gate is not None and isinstance(exc, UploadError) and exc.status == 429:
            self.gate.pause(wait if wait is not None else self.wait * 4)
            return 0.0  # the gate itself makes every worker wait
        return wait if wait is not None else True

    async def run(self, attempt: Callable[[], Awaitable[T]], tally: Tally | None = None) -> T:
        """``attempt()`` until it succeeds, or fails lastingly, or the retries are used up (then its last
        exception is raised)."""
        tally = tally if tally is not None else Tally()
        tally.attempts += 1
        try:
            # Most calls succeed at once; building stamina's retry state for each of them costs more than
            # the request itself on a fast host, so stamina takes over from the first failure.
            return await attempt()
        except Exception as failure:
            wait = self.backoff(failure)
            if wait is False or self.retries == 0:
                raise
            await asyncio.sleep(wait if not isinstance(wait, bool) else self.wait * (1 + random.random()))
        result: T
        async for retry in _stamina().retry_context(
            on=self.backoff,
            attempts=self.retries,
            timeout=None,
            wait_initial=self.wait * 2,
            wait_max=self.wait_max,
            wait_jitter=self.wait,
        ):
            with retry:
                tally.attempts += 1
                result = await attempt()
        return result


@functools.cache
def _stamina() -> Any:
    """stamina, imported on the first failure only (most runs never retry, and every run pays imports)."""
    import stamina

    # picbeam reports retries in its own words; stamina's default hook would log every one to stderr.
    stamina.instrumentation.set_on_retry_hooks([])
    return stamina


def proxy_options(destination: str) -> dict[str, Any]:
    """Session options that honour HTTP(S)_PROXY / NO_PROXY.

    For an http(s) destination the proxy is looked up once per run: aiohttp's ``trust_env`` would look it
    up again in a worker thread for every request. Other destinations keep the per-request lookup.
    """
    from yarl import URL

    url = URL(destination) if destination.startswith(("http://", "https://")) else None
    if url is None:
        return {"trust_env": True}
    found = env_proxy(url)
    if found is None:
        return {}
    proxy, auth = found
    return {"proxy": proxy, "proxy_auth": auth}


def env_proxy(url: Any) -> tuple[Any, aiohttp.BasicAuth | None] | None:
    """The proxy the environment gives for ``url`` (HTTP(S)_PROXY, NO_PROXY), with its credentials from
    the proxy URL or ~/.netrc; None when there is none or the host is exempt. An https:// proxy is not
    supported by aiohttp and is ignored, as aiohttp's own lookup does."""
    import urllib.request

    from yarl import URL

    if url.host is not None and urllib.request.proxy_bypass(url.host):
        return None
    address = urllib.request.getproxies().get(url.scheme)
    if not address:
        return None
    proxy = URL(address)
    if proxy.scheme not in ("http", ""):
        return None
    auth = aiohttp.BasicAuth(proxy.user, proxy.password or "") if proxy.user else None
    proxy = proxy.with_user(None)
    if auth is None and proxy.host:
        auth = _netrc_auth(proxy.host)
    return proxy, auth


def _netrc_auth(host: str) -> aiohttp.BasicAuth | None:
    import netrc

    try:
        entry = netrc.netrc(os.environ.get("NETRC")).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return None
    if entry is None:
        return None
    login, _, password = entry
    return aiohttp.BasicAuth(login or "", password or "")
