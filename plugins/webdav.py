"""WebDAV: Nextcloud/ownCloud, nginx's dav module, Apache mod_dav, Alist, rclone serve webdav...

Each file is a PUT under the ``endpoint`` collection; missing folders are made with MKCOL (once per
folder and run). Basic or Digest authentication is chosen from the server's challenge, once per run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from picbeam import Host, UploadError, UploadItem, UploadResult, hookimpl
from picbeam.answers import read_answer, snippet
from picbeam.hosts import request_timeout
from picbeam.storage import RunOnce, StorageHost, StorageSettings, required, secret, status_error

HINTS = {
    401: "wrong username or password",
    403: "the account may not write here; check its permissions",
    404: "the collection does not exist; check 'endpoint'",
    405: "the server does not allow this here; check that 'endpoint' is a WebDAV collection",
    409: "a parent folder is missing or is a file; check 'endpoint' and 'path'",
    413: "the file is larger than the server allows",
    423: "the file is locked by another client",
    507: "the server's storage is full or the account is over its quota",
}


@dataclass(frozen=True)
class Auth:
    """How this run authenticates: a Basic Authorization header, or a Digest middleware (per request,
    never on the session, so credentials cannot follow a redirect to another origin)."""

    headers: Mapping[str, str] = field(default_factory=dict)
    middlewares: tuple[Any, ...] = ()

    def request(self, session: Any, method: str, url: str, headers: Mapping[str, str] | None = None, **kw: Any) -> Any:
        return session.request(
            method, url, headers={**(headers or {}), **self.headers}, middlewares=self.middlewares, **kw
        )


@dataclass(frozen=True)
class WebDAVSettings(StorageSettings):
    # The collection files go under, e.g. https://cloud.example/remote.php/dav/files/me/blog
    endpoint: str = required()
    username: str = ""
    password: str = secret()


class WebDAVHost(StorageHost):
    """PUTs each file to ``endpoint``/``path``; the URL is that address unless ``url_template`` /
    ``url_prefix`` says otherwise (a WebDAV address usually needs the login to read)."""

    kind = "webdav"
    settings_class = WebDAVSettings
    settings: WebDAVSettings
    default_description = "a WebDAV folder (Nextcloud, ownCloud, nginx, Alist...)"

    def __init__(self, name: str | None = None, settings: Any = None, source: str | None = None) -> None:
        super().__init__(name, settings, source)
        # Per run: how to authenticate (learned once), and the folders made or found.
        self._auth: RunOnce[Auth] = RunOnce()
        self._folders: RunOnce[None] = RunOnce()

    @property
    def destination(self) -> str:
        return self.settings.endpoint.rstrip("/")

    def address(self, path: str) -> str:
        return f"{self.destination}/{quote(path)}"

    async def upload(self, item: UploadItem, session: Any) -> UploadResult:
        path, context = self.place(item)
        auth = await self._auth.get("auth", lambda: self._learn_auth(session))
        parents = path.split("/")[:-1]
        for depth in range(1, len(parents) + 1):
            folder = "/".join(parents[:depth])
            await self._folders.get(folder, lambda f=folder: self._mkcol(f, session, auth))
        url = self.address(path)
        async with auth.request(
            session, "PUT", url, {"Content-Type": item.mime}, data=item.open(), timeout=request_timeout(item.size)
        ) as response:
            if response.status not in (200, 201, 204):
                raise status_error(response.status, snippet(await read_answer(response)), HINTS)
        return self.stored(item, path, self.public_url(path, context, url))

    async def delete(self, record: Mapping[str, Any], session: Any) -> None:
        path = self.recorded_path(record)
        auth = await self._auth.get("auth", lambda: self._learn_auth(session))
        async with auth.request(session, "DELETE", self.address(path)) as response:
            if response.status == 404:
                raise UploadError(f"{path} is not there any more")
            if response.status not in (200, 204):
                raise status_error(response.status, snippet(await read_answer(response)), HINTS)

    async def _learn_auth(self, session: Any) -> Auth:
        """How this run authenticates: not at all without a username, Digest when the server asks for it,
        else Basic. Learned once a run; wrong credentials fail every file with the same line."""
        import aiohttp

        settings = self.settings
        if not settings.username:
            return Auth()
        root = self.destination + "/"
        async with session.request("PROPFIND", root, headers={"Depth": "0"}) as response:
            schemes = {value.split(" ", 1)[0].lower() for value in response.headers.getall("WWW-Authenticate", [])}
        if "digest" in schemes:
            auth = Auth(middlewares=(aiohttp.DigestAuthMiddleware(settings.username, settings.password),))
        else:
            auth = Auth(headers={"Authorization": aiohttp.encode_basic_auth(settings.username, settings.password)})
        # Through the chosen scheme: checks the login (and teaches a Digest middleware its challenge, so
        # uploads authenticate at once instead of sending each file twice).
        async with auth.request(session, "PROPFIND", root, {"Depth": "0"}) as response:
            if response.status in (401, 404):
                raise status_error(response.status, root, HINTS)
        return auth

    async def _mkcol(self, folder: str, session: Any, auth: Auth) -> None:
        async with auth.request(session, "MKCOL", self.address(folder) + "/") as response:
            # 201: made; 405: already there (RFC 4918 9.3.1); 301: a server redirecting to the folder
            if response.status not in (200, 201, 204, 301, 405):
                error = status_error(response.status, snippet(await read_answer(response)), HINTS)
                error.message = f"cannot make folder {folder}: {error.message}"
                raise error


@hookimpl
def register_hosts(register: Callable[[Host], None]) -> None:
    register(WebDAVHost())
