"""SFTP: files over SSH to your own server (asyncssh, the ``picbeam[sftp]`` extra, imported only when a
run uses the host).

One SSH connection per run, shared by every upload; folders are made once per run; the server's host
key is checked against ``known_hosts`` (``~/.ssh/known_hosts`` by default).
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from picbeam import Host, UploadError, UploadItem, UploadResult, hookimpl
from picbeam.storage import RunOnce, StorageHost, StorageSettings, required, secret

NO_CHECK = "none"


@dataclass(frozen=True)
class SFTPSettings(StorageSettings):
    host: str = required()
    port: int = 22
    # Empty: your local user name (as ssh does).
    username: str = ""
    password: str = secret()
    # A private key file; without it and without a password, your ssh-agent and ~/.ssh/id_* keys are used.
    key_file: str = ""
    passphrase: str = secret()
    # The file of trusted host keys; "none" turns the check off (only for a server you reach on a trusted net).
    known_hosts: str = "~/.ssh/known_hosts"
    # The remote folder the path template is under (empty: the login folder).
    root: str = ""


class SFTPHost(StorageHost):
    """Writes each file to ``root``/``path`` on the server; the URL comes from ``url_template`` /
    ``url_prefix`` (the web address the server publishes the folder at), else an sftp:// address."""

    url_schemes = ("sftp", "http", "https")

    kind = "sftp"
    settings_class = SFTPSettings
    settings: SFTPSettings
    url_names = ("host",)
    default_description = "a folder on your server over SSH (SFTP): needs picbeam[sftp]"
    requires = ("asyncssh", "sftp")

    def __init__(self, name: str | None = None, settings: Any = None, source: str | None = None) -> None:
        super().__init__(name, settings, source)
        # Per run: the connection and SFTP session, and the folders made or found.
        self._client: RunOnce[Any] = RunOnce()
        self._folders: RunOnce[None] = RunOnce()
        self._connection: Any = None

    @property
    def destination(self) -> str:
        s = self.settings
        return f"sftp://{s.username + '@' if s.username else ''}{s.host}:{s.port}/{s.root}"

    def url_values(self) -> dict[str, str]:
        return {"host": self.settings.host}

    def remote(self, path: str) -> str:
        return posixpath.join(self.settings.root, path) if self.settings.root else path

    # -- upload and delete ----------------------------------------------------------------------------
    async def upload(self, item: UploadItem, session: Any) -> UploadResult:
        path, context = self.place(item)
        remote = self.remote(path)
        sftp = await self._client.get("sftp", self._connect)
        folder = posixpath.dirname(remote)
        if folder:
            await self._folders.get(folder, lambda: self._makedirs(sftp, folder))
        try:
            with _sftp_errors(remote):
                if item.data is not None:
                    async with sftp.open(remote, "wb") as handle:
                        await handle.write(item.data)
                else:
                    await sftp.put(str(item.path), remote)
        except UploadError as exc:
            if exc.transient:  # the connection broke: the next attempt makes a new one
                self._client.forget("sftp")
            raise
        s = self.settings
        default = f"sftp://{quote(s.username) + '@' if s.username else ''}{s.host}:{s.port}/{quote(remote)}"
        return self.stored(item, path, self.public_url(path, context, default), remote=remote)

    async def delete(self, record: Mapping[str, Any], session: Any) -> None:
        remote = self.remote(self.recorded_path(record))
        sftp = await self._client.get("sftp", self._connect)
        with _sftp_errors(remote, missing=f"{remote} is not there any more"):
            await sftp.remove(remote)

    async def finish(self, session: Any) -> None:
        if self._connection is not None:
            self._connection.close()
            await self._connection.wait_closed()
            self._connection = None

    # -- the connection -------------------------------------------------------------------------------
    async def _connect(self) -> Any:
        import asyncssh

        s = self.settings
        where = f"{s.host}:{s.port}"
        known_hosts: str | None = None
        if s.known_hosts.lower() != NO_CHECK:
            known_hosts = str(Path(s.known_hosts).expanduser())
            if not Path(known_hosts).is_file():
                raise UploadError(
                    f"known_hosts file {known_hosts} does not exist; add the server's key to it "
                    f"(ssh-keyscan -p {s.port} {s.host} >> {known_hosts}, after checking it) or set known_hosts"
                )
        options: dict[str, Any] = {"port": s.port, "known_hosts": known_hosts}
        if s.username:
            options["username"] = s.username
        if s.password:
            options["password"] = s.password
        if s.key_file:
            options["client_keys"] = [str(Path(s.key_file).expanduser())]
            options["passphrase"] = s.passphrase or None
        elif s.password:
            options["client_keys"] = None  # the password alone, no agent or default keys
        if self._connection is not None:  # a connection that broke: make a new one
            self._connection.close()
        try:
            self._connection = await asyncssh.connect(s.host, **options)
            return await self._connection.start_sftp_client()
        except asyncssh.HostKeyNotVerifiable:
            raise UploadError(
                f"the host key of {where} is not trusted by {known_hosts} (unknown, or not the one recorded "
                f"there): verify it, then add it "
                f"(ssh-keyscan -p {s.port} {s.host} >> {known_hosts})"
            ) from None
        except asyncssh.PermissionDenied:
            raise UploadError(
                f"{where} refused the login of '{s.username or 'your user'}': wrong password or key"
            ) from None
        except asyncssh.KeyImportError as exc:
            raise UploadError(f"cannot use key_file {s.key_file}: {exc}") from None
        except FileNotFoundError as exc:
            raise UploadError(f"cannot read {exc.filename or s.key_file}: no such file") from None
        except asyncssh.DisconnectError as exc:
            raise UploadError(f"{where} closed the SSH connection: {exc.reason}", transient=True) from None
        except OSError as exc:
            raise UploadError(
                f"cannot connect to {where} ({exc.strerror or exc}); check host and port", transient=True
            ) from None

    async def _makedirs(self, sftp: Any, folder: str) -> None:
        with _sftp_errors(folder):
            await sftp.makedirs(folder, exist_ok=True)


@contextlib.contextmanager
def _sftp_errors(remote: str, missing: str | None = None) -> Iterator[None]:
    """Turns an SFTP failure into one line saying what it means."""
    import asyncssh

    try:
        yield
    except asyncssh.SFTPError as exc:
        reason = exc.reason or type(exc).__name__
        transient = False
        if isinstance(exc, asyncssh.SFTPPermissionDenied | asyncssh.SFTPWriteProtect):
            message = f"permission denied writing {remote}; check the account's rights on the server"
        elif isinstance(exc, asyncssh.SFTPNoSuchFile | asyncssh.SFTPNoSuchPath):
            message = missing or f"{remote}: no such folder ({reason}); check root and path"
        elif isinstance(exc, asyncssh.SFTPNoSpaceOnFilesystem | asyncssh.SFTPQuotaExceeded):
            message = f"the server's disk is full or the account is over its quota ({reason})"
        elif isinstance(exc, asyncssh.SFTPConnectionLost | asyncssh.SFTPNoConnection):
            message, transient = f"the SFTP connection was lost ({reason})", True
        else:  # SFTP v3 servers (OpenSSH) report a full disk or a quota as a plain failure
            message = f"the server could not write {remote}: {reason} (is its disk full or a quota reached?)"
        raise UploadError(message, transient=transient) from None


@hookimpl
def register_hosts(register: Callable[[Host], None]) -> None:
    register(SFTPHost())
