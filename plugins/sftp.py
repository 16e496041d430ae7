"""SFTP: files over SSH to your own server (asyncssh, the ``picbeam[sftp]`` extra, imported only when a
run uses the host).

One SSH connection per run, shared by every upload; folders are made once per run; the server's host
key is checked against ``known_hosts`` (``~/.ssh/known_hosts`` by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from picbeam import AlreadyGone, ConfigError, Host, UploadError, UploadItem, UploadResult, hookimpl
from picbeam.storage import RunOnce, StorageHost, StorageSettings, missing_extra, required, secret

NO_CHECK = "none"
CHUNK = 8 * 1024 * 1024  # read from the local file at a time; asyncssh splits it into parallel writes


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
    # The remote folder the path template is under (empty or "~": the login folder; "~/x": x in it).
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
        self._key: Any = None  # the private key, read (and decrypted) by prepared()

    @property
    def destination(self) -> str:
        s = self.settings
        return f"sftp://{s.username + '@' if s.username else ''}{s.host}:{s.port}/{s.root}"

    @property
    def where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def url_values(self) -> dict[str, str]:
        return {"host": self.settings.host}

    @property
    def root(self) -> str:
        """``root`` as the server takes it: ``~`` is the login folder, where SFTP's relative paths start."""
        root = self.settings.root
        if root == "~" or root.startswith("~/"):
            return root[2:]
        return root

    def remote(self, path: str) -> str:
        return posixpath.join(self.root, path) if self.root else path

    def default_url(self, remote: str) -> str:
        """An sftp:// address; a path in the login folder starts with /~/, as in the sftp URI draft, so it
        does not read as an absolute one."""
        s = self.settings
        where = remote[1:] if remote.startswith("/") else f"~/{remote}"
        return f"sftp://{quote(s.username) + '@' if s.username else ''}{s.host}:{s.port}/{quote(where)}"

    # -- configuration --------------------------------------------------------------------------------
    def check(self, settings: SFTPSettings, where: str) -> None:
        root = settings.root
        if root.startswith("~") and root != "~" and not root.startswith("~/"):
            raise ConfigError(
                f"{where}: field 'root' may start with ~ only for your own login folder (~ or ~/...), "
                f"not {root!r}; write another user's folder as an absolute path"
            )

    def prepared(self) -> SFTPHost:
        host = super().prepared()
        if host.settings.key_file:
            host._key = _read_key(host)
        return host

    # -- upload and delete ----------------------------------------------------------------------------
    async def upload(self, item: UploadItem, session: Any) -> UploadResult:
        path, context = self.place(item)
        remote = self.remote(path)
        folder, name = posixpath.split(remote)
        # In the target folder (a rename never crosses file systems); the same name for every attempt at
        # this content, so a retry after a dropped connection overwrites what the broken one left.
        partial = posixpath.join(folder, f".{name}.{item.sha256[:12]}.picbeam-part")
        sftp = await self._client.get("sftp", self._connect)
        try:
            if folder:
                await self._folders.get(folder, lambda: self._makedirs(sftp, folder))
            with _sftp_errors(remote, self.where):
                try:
                    await _write(sftp, item, partial)
                    await _replace(sftp, partial, remote)
                except BaseException:
                    # Where the connection still works: no partial file stays behind.
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(sftp.remove(partial), 5)
                    raise
        except UploadError as exc:
            if exc.transient:  # the connection broke: the next attempt makes a new one
                self._client.forget("sftp", sftp)
            raise
        return self.stored(item, path, self.public_url(path, context, self.default_url(remote)), remote=remote)

    async def delete(self, record: Mapping[str, Any], session: Any) -> None:
        import asyncssh

        remote = self.remote(self.recorded_path(record))
        sftp = await self._client.get("sftp", self._connect)
        with _sftp_errors(remote, self.where):
            try:
                await sftp.remove(remote)
            except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
                raise AlreadyGone(f"{remote} was already gone from {self.where}") from None

    async def finish(self, session: Any) -> None:
        if self._connection is not None:
            self._connection.close()
            with contextlib.suppress(Exception):
                await self._connection.wait_closed()
            self._connection = None

    # -- the connection -------------------------------------------------------------------------------
    async def _connect(self) -> Any:
        import asyncssh

        s = self.settings
        where = self.where
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
        if self._key is not None:
            options["client_keys"] = [self._key]
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
        except (asyncssh.DisconnectError, asyncssh.ChannelOpenError) as exc:
            raise UploadError(f"{where} closed the SSH connection: {exc.reason}", transient=True) from None
        except OSError as exc:
            raise UploadError(
                f"cannot connect to {where} ({exc.strerror or exc}); check host and port", transient=True
            ) from None

    async def _makedirs(self, sftp: Any, folder: str) -> None:
        """Each missing folder made in turn, so a failure names the folder and its real cause (asyncssh's
        makedirs passes over a refused folder and then reports "no such file" for the one below)."""
        import asyncssh

        current = "/" if folder.startswith("/") else ""
        for part in [p for p in folder.split("/") if p]:
            current = posixpath.join(current, part)
            with _sftp_errors(current, self.where):
                try:
                    await sftp.mkdir(current)
                    continue
                except asyncssh.SFTPError as exc:
                    refused = exc  # usually: it exists already
                try:
                    attrs = await sftp.stat(current)
                except asyncssh.SFTPError:
                    raise refused from None
                if attrs.type != asyncssh.FILEXFER_TYPE_DIRECTORY:
                    raise UploadError(f"{current} on {self.where} is a file, not a folder; check root and path")


async def _write(sftp: Any, item: UploadItem, remote: str) -> None:
    """The item's bytes into ``remote``; the local file is read here, so that an error reading it is
    told apart from the connection's (both are OSErrors)."""
    async with sftp.open(remote, "wb") as handle:
        if item.data is not None:
            await handle.write(item.data)
            return
        with contextlib.ExitStack() as stack:
            try:
                source = stack.enter_context(open(item.path, "rb"))
            except OSError as exc:
                raise UploadError(f"cannot read the file: {exc.strerror or exc}") from None
            offset = 0
            while chunk := await asyncio.to_thread(_read_chunk, source):
                await handle.write(chunk, offset)  # asyncssh sends a large write as parallel requests
                offset += len(chunk)


def _read_chunk(source: Any) -> bytes:
    try:
        return bytes(source.read(CHUNK))
    except OSError as exc:
        raise UploadError(f"cannot read the file: {exc.strerror or exc}") from None


async def _replace(sftp: Any, partial: str, remote: str) -> None:
    """Rename the complete file into place, over an older one (OpenSSH's posix-rename extension; a plain
    SFTP v3 rename refuses an existing target)."""
    import asyncssh

    try:
        await sftp.posix_rename(partial, remote)
    except asyncssh.SFTPOpUnsupported:
        with contextlib.suppress(asyncssh.SFTPNoSuchFile):
            await sftp.remove(remote)
        await sftp.rename(partial, remote)


def _read_key(host: SFTPHost) -> Any:
    """The private key, decrypted now: a wrong passphrase is a configuration error (exit 2) before any
    file is sent."""
    import asyncssh

    s = host.settings
    where = f"{host.source}: host '{host.name}': key_file {s.key_file}"
    passphrase = host.field_name("passphrase")
    try:
        return asyncssh.read_private_key(str(Path(s.key_file).expanduser()), s.passphrase or None)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    except asyncssh.KeyEncryptionError as exc:
        if "bcrypt" in str(exc):
            raise missing_extra("bcrypt", "sftp") from None
        raise ConfigError(f"{where}: wrong passphrase (set {passphrase} to the key's passphrase)") from None
    except asyncssh.KeyImportError as exc:
        if "assphrase" in str(exc):
            raise ConfigError(f"{where}: the key is encrypted; set {passphrase} to its passphrase") from None
        raise ConfigError(f"{where}: not a private key asyncssh can read ({exc})") from None


@contextlib.contextmanager
def _sftp_errors(remote: str, where: str) -> Iterator[None]:
    """Turns an SFTP or connection failure into one line saying what it means."""
    import asyncssh

    try:
        yield
    except asyncssh.SFTPError as exc:
        reason = exc.reason or type(exc).__name__
        transient = False
        if isinstance(exc, asyncssh.SFTPPermissionDenied | asyncssh.SFTPWriteProtect):
            message = f"permission denied writing {remote}; check the account's rights on the server"
        elif isinstance(exc, asyncssh.SFTPNoSuchFile | asyncssh.SFTPNoSuchPath):
            message = f"{remote}: no such folder ({reason}); check root and path"
        elif isinstance(exc, asyncssh.SFTPNoSpaceOnFilesystem | asyncssh.SFTPQuotaExceeded):
            message = f"the server's disk is full or the account is over its quota ({reason})"
        elif isinstance(exc, asyncssh.SFTPConnectionLost | asyncssh.SFTPNoConnection):
            message, transient = f"the SFTP connection to {where} was lost ({reason}); check the server", True
        else:  # SFTP v3 servers (OpenSSH) report a full disk or a quota as a plain failure
            message = f"the server could not write {remote}: {reason} (is its disk full or a quota reached?)"
        raise UploadError(message, transient=transient) from None
    except (asyncssh.DisconnectError, asyncssh.ChannelOpenError, OSError) as exc:
        # The transport's errors (a broken pipe, a reset, a closed channel): the connection's fault.
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise UploadError(f"the SSH connection to {where} broke ({reason}); check the server", transient=True) from None


@hookimpl
def register_hosts(register: Callable[[Host], None]) -> None:
    register(SFTPHost())
