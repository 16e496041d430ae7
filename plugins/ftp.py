"""FTP and FTPS: files to your own server (aioftp, the ``picbeam[ftp]`` extra, imported only when a run uses
the host).

One control connection per run, opened on first use and shared by the run's uploads one transfer at a
time (FTP carries one transfer per connection); folders are made once per run with MKD. ``tls`` picks
plain FTP, explicit FTPS (``AUTH TLS`` on the usual port, also called FTPES) or implicit FTPS (TLS from the
first byte, port 990); the server's certificate is checked against the system's CAs or ``ca_file``.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import ssl
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from picbeam import ConfigError, Host, UploadError, UploadItem, UploadResult, hookimpl
from picbeam.storage import RunOnce, StorageHost, StorageSettings, required, secret

CHUNK = 256 * 1024
TLS_MODES = ("", "explicit", "implicit")
# FTP reply codes (RFC 959, RFC 3659) and what they mean for the user.
REPLIES = {
    "530": "the server refused the login: wrong username or password",
    "550": "the server refused: no such file or folder, or no permission",
    "552": "the server's storage is full or the account is over its quota",
    "553": "the server does not allow this file name; change the 'path' template",
    "532": "the server wants an account for storing files",
}


@dataclass(frozen=True)
class FTPSettings(StorageSettings):
    host: str = required()
    # Empty: 21, or 990 with tls = "implicit".
    port: int | None = None
    username: str = "anonymous"
    password: str = secret("${FTP_PASSWORD:-}")
    # "" (plain FTP), "explicit" (AUTH TLS, FTPES) or "implicit" (FTPS on port 990).
    tls: str = ""
    # A PEM file of the CA (or the self-signed certificate) to trust for the server; empty: the system's.
    ca_file: str = ""
    # The folder the path template is under (empty: the login folder).
    root: str = ""


class FTPHost(StorageHost):
    """Stores each file at ``root``/``path`` on an FTP server; the URL comes from ``url_template`` /
    ``url_prefix`` (the web address the server's folder is published at), else an ftp:// address."""

    kind = "ftp"
    settings_class = FTPSettings
    settings: FTPSettings
    url_names = ("host",)
    default_description = "a folder on an FTP or FTPS server: needs picbeam[ftp]"
    requires = ("aioftp", "ftp")
    concurrency = 1  # one transfer at a time on the run's connection

    def __init__(self, name: str | None = None, settings: Any = None, source: str | None = None) -> None:
        super().__init__(name, settings, source)
        self._client: RunOnce[Any] = RunOnce()
        self._folders: RunOnce[None] = RunOnce()
        self._lock = asyncio.Lock()
        self._connection: Any = None

    def check(self, settings: FTPSettings, where: str) -> None:
        if settings.tls not in TLS_MODES:
            raise ConfigError(f"{where}: field 'tls' must be one of \"\", explicit, implicit, not {settings.tls!r}")

    @property
    def port(self) -> int:
        return self.settings.port or (990 if self.settings.tls == "implicit" else 21)

    @property
    def destination(self) -> str:
        s = self.settings
        return f"{'ftps' if s.tls else 'ftp'}://{s.username}@{s.host}:{self.port}/{s.root}"

    def url_values(self) -> dict[str, str]:
        return {"host": self.settings.host}

    def remote(self, path: str) -> str:
        return posixpath.join(self.settings.root, path) if self.settings.root else path

    # -- upload and delete ----------------------------------------------------------------------------
    async def upload(self, item: UploadItem, session: Any) -> UploadResult:
        path, context = self.place(item)
        remote = self.remote(path)
        client = await self._client.get("ftp", self._connect)
        folder = posixpath.dirname(remote)
        async with self._lock:
            if folder:
                await self._folders.get(folder, lambda: self._makedirs(client, folder))
            with self._errors(remote):
                async with client.upload_stream(remote) as stream:
                    if item.data is not None:
                        await stream.write(item.data)
                    else:
                        with open(item.path, "rb") as source:
                            while chunk := await asyncio.to_thread(source.read, CHUNK):
                                await stream.write(chunk)
        s = self.settings
        default = f"{'ftps' if s.tls else 'ftp'}://{s.host}:{self.port}/{quote(remote)}"
        return self.stored(item, path, self.public_url(path, context, default), remote=remote)

    async def delete(self, record: Mapping[str, Any], session: Any) -> None:
        remote = self.remote(self.recorded_path(record))
        client = await self._client.get("ftp", self._connect)
        async with self._lock:
            with self._errors(remote, missing=f"{remote} is not there any more"):
                await client.remove_file(remote)

    async def finish(self, session: Any) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._connection.quit(), 5)
            self._connection.close()
            self._connection = None

    # -- the connection -------------------------------------------------------------------------------
    def _tls_context(self) -> ssl.SSLContext | None:
        if not self.settings.tls:
            return None
        context = ssl.create_default_context()
        if self.settings.ca_file:
            try:
                context.load_verify_locations(str(Path(self.settings.ca_file).expanduser()))
            except (OSError, ssl.SSLError) as exc:
                raise UploadError(f"cannot use ca_file {self.settings.ca_file}: {exc}") from None
        return context

    async def _connect(self) -> Any:
        import aioftp

        s = self.settings
        where = f"{s.host}:{self.port}"
        context = self._tls_context()
        client = _client_class()(ssl=context if s.tls == "implicit" else None, socket_timeout=60, path_timeout=60)
        client.data_tls = context
        try:
            await client.connect(s.host, self.port)
            if s.tls == "explicit":
                await client.upgrade_to_tls(context)
            await client.login(s.username, s.password or "anonymous@")
        except aioftp.StatusCodeError as exc:
            client.close()
            raise _reply_error(exc, f"{where}: ") from None
        except ssl.SSLCertVerificationError as exc:
            client.close()
            raise UploadError(
                f"{where}: the server's TLS certificate is not trusted ({exc.verify_message}); "
                f"set ca_file to its CA certificate"
            ) from None
        except (TimeoutError, OSError) as exc:
            client.close()
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise UploadError(f"cannot connect to {where} ({reason}); check host and port", transient=True) from None
        self._connection = client
        return client

    async def _makedirs(self, client: Any, folder: str) -> None:
        import aioftp

        parts = folder.split("/")
        for depth in range(1, len(parts) + 1):
            current = "/".join(parts[:depth]) or "/"
            # 257: made; 550/521: already there (or not allowed: the STOR that follows says so).
            with contextlib.suppress(aioftp.StatusCodeError):
                await client.command(f"MKD {current}", ("257", "550", "521"))

    @contextlib.contextmanager
    def _errors(self, remote: str, missing: str | None = None) -> Iterator[None]:
        """Turns an FTP failure into one line; a broken connection is made again by the next attempt."""
        import aioftp

        try:
            yield
        except aioftp.StatusCodeError as exc:
            codes = {str(code) for code in exc.received_codes}
            if missing and codes & {"550", "450"}:
                raise UploadError(missing) from None
            raise _reply_error(exc, f"{remote}: ") from None
        except (TimeoutError, OSError, ConnectionError, asyncio.IncompleteReadError) as exc:
            self._client.forget("ftp")
            self._folders = RunOnce()
            raise UploadError(f"the FTP connection was lost ({type(exc).__name__})", transient=True) from None


def _client_class() -> type:
    """aioftp's client, with the TLS handshake of a data connection made after the transfer command.

    aioftp shakes hands as soon as the data connection opens; vsftpd, ProFTPD and Pure-FTPd start theirs
    only once the command (STOR) arrived, so both sides wait for ever (aioftp issue #186, jlaffaye/ftp
    #282). Here the data connection opens plain, the command is sent, then TLS starts on it, resuming the
    control connection's TLS session (vsftpd's default require_ssl_reuse)."""
    import aioftp
    from aioftp.client import DataConnectionThrottleStreamIO, SSLSessionBoundContext
    from aioftp.common import async_enterable

    class Client(aioftp.Client):  # type: ignore[misc]
        data_tls: ssl.SSLContext | None = None

        async def _open_connection(self, host: str, port: int) -> Any:
            if self._stream is None or self.data_tls is None:  # the control connection
                return await super()._open_connection(host, port)
            return await asyncio.wait_for(asyncio.open_connection(host, port), self.connection_timeout)

        @async_enterable
        async def get_stream(self, command: Any = None, expected_codes: Any = (), wait_codes: Any = (),
                             censor_after: Any = None, conn_type: Any = "I", offset: int = 0) -> Any:  # fmt: skip
            if self.data_tls is None:
                return await super().get_stream(command, expected_codes, wait_codes, censor_after, conn_type, offset)
            reader, writer = await self.get_passive_connection(conn_type)
            if offset:
                await self.command("REST " + str(offset), "350")
            await self.command(command, expected_codes, wait_codes, censor_after)
            control = self._stream.writer.transport.get_extra_info("ssl_object")
            context = self.data_tls
            if control is not None:
                context = SSLSessionBoundContext(
                    ssl.PROTOCOL_TLS_CLIENT, context=control.context, session=control.session
                )
            await asyncio.wait_for(writer.start_tls(context, server_hostname=self.server_host), self.socket_timeout)
            return DataConnectionThrottleStreamIO(
                self, reader, writer, throttles={"_": self.throttle}, timeout=self.socket_timeout
            )

    return Client


def _reply_error(exc: Any, prefix: str) -> UploadError:
    code = str(exc.received_codes[-1]) if exc.received_codes else ""
    said = " ".join(str(line).strip() for line in exc.info if str(line).strip())[:160]
    hint = REPLIES.get(code, "")
    return UploadError(
        f"{prefix}FTP {code} {said}".rstrip() + (f" ({hint})" if hint else ""), transient=code.startswith("4")
    )


@hookimpl
def register_hosts(register: Callable[[Host], None]) -> None:
    register(FTPHost())
