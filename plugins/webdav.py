"""WebDAV: Nextcloud/ownCloud, nginx's dav module, Apache mod_dav, Alist, rclone serve webdav...

Each file is a PUT under the ``endpoint`` collection; missing folders are made with MKCOL (once per
folder and run). Basic or Digest authentication is chosen from the first challenge the server sends
(to whichever request), once per run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from picbeam import AlreadyGone, Host, UploadItem, UploadResult, hookimpl
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


class ChallengeAuth:
    """An aiohttp client middleware that logs in the way the server asks: no credentials until a request
    of the endpoint's origin gets a 401, then the scheme of that challenge (Digest through aiohttp's
    middleware, else Basic) for it and every later request. Public-read servers (Apache's
    ``<LimitExcept GET HEAD OPTIONS PROPFIND>``) challenge only writes, so the first 401 may come from
    any request. Given per request, never on the session, so credentials cannot follow a redirect to
    another origin."""

    def __init__(self, endpoint: str, username: str, password: str) -> None:
        from yarl import URL

        self._origin = URL(endpoint).origin()
        self._username, self._password = username, password
        self._digest: Any = None
        self._basic: str | None = None

    async def __call__(self, request: Any, handler: Any) -> Any:
        import aiohttp

        if request.url.origin() != self._origin:
            return await handler(request)
        if self._digest is not None:
            return await self._digest(request, handler)
        if self._basic is not None:
            request.headers[aiohttp.hdrs.AUTHORIZATION] = self._basic
            return await handler(request)
        response = await handler(request)
        if response.status != 401:
            return response
        schemes = {value.split(" ", 1)[0].lower() for value in response.headers.getall("WWW-Authenticate", [])}
        response.release()
        if "digest" in schemes:
            if self._digest is None:  # concurrent first requests share one middleware and its nonce count
                self._digest = aiohttp.DigestAuthMiddleware(self._username, self._password)
            return await self._digest(request, handler)
        self._basic = aiohttp.encode_basic_auth(self._username, self._password)
        request.headers[aiohttp.hdrs.AUTHORIZATION] = self._basic
        return await handler(request)


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
        # Per run: the login checked once, and the folders made or found.
        self._checked: RunOnce[None] = RunOnce()
        self._folders: RunOnce[None] = RunOnce()
        self._middlewares: tuple[Any, ...] = ()
        if self.settings.username:
            self._middlewares = (ChallengeAuth(self.destination, self.settings.username, self.settings.password),)

    @property
    def destination(self) -> str:
        # A space or a non-ASCII letter in a folder name percent-encoded, as a URL must be; what is
        # already encoded (%20) and the rest of the address stay as written.
        parts = urlsplit(self.settings.endpoint.rstrip("/"))
        return urlunsplit(parts._replace(path=quote(parts.path, safe="/%:@!$&'()*+,;=~")))

    def address(self, path: str) -> str:
        return f"{self.destination}/{quote(path)}"

    def request(self, session: Any, method: str, url: str, **options: Any) -> Any:
        return session.request(method, url, middlewares=self._middlewares, **options)

    async def upload(self, item: UploadItem, session: Any) -> UploadResult:
        path, context = self.place(item)
        if self.settings.username:
            await self._checked.get("login", lambda: self._check_login(session))
        parents = path.split("/")[:-1]
        for depth in range(1, len(parents) + 1):
            folder = "/".join(parents[:depth])
            await self._folders.get(folder, lambda f=folder: self._mkcol(f, session))
        url = self.address(path)
        async with self.request(
            session,
            "PUT",
            url,
            headers={"Content-Type": item.mime},
            data=item.open(),
            timeout=request_timeout(item.size),
        ) as response:
            if response.status not in (200, 201, 204):
                raise status_error(response.status, snippet(await read_answer(response)), HINTS)
        return self.stored(item, path, self.public_url(path, context, url))

    async def delete(self, record: Mapping[str, Any], session: Any) -> None:
        path = self.recorded_path(record)
        async with self.request(session, "DELETE", self.address(path)) as response:
            if response.status in (404, 410):
                raise AlreadyGone(f"{path} was already gone from {self.destination}")
            if response.status not in (200, 204):
                raise status_error(response.status, snippet(await read_answer(response)), HINTS)

    async def _check_login(self, session: Any) -> None:
        """The collection exists and, when reading it needs a login, the login works: checked once a run,
        so wrong credentials or a wrong endpoint fail every file with the same line (and the server's
        challenge, when it sends one here, is answered before any file is sent)."""
        root = self.destination + "/"
        async with self.request(session, "PROPFIND", root, headers={"Depth": "0"}) as response:
            if response.status in (401, 404):
                raise status_error(response.status, root, HINTS)

    async def _mkcol(self, folder: str, session: Any) -> None:
        async with self.request(session, "MKCOL", self.address(folder) + "/") as response:
            # 201: made; 405: already there (RFC 4918 9.3.1); 301: a server redirecting to the folder
            if response.status not in (200, 201, 204, 301, 405):
                error = status_error(response.status, snippet(await read_answer(response)), HINTS)
                error.message = f"cannot make folder {folder}: {error.message}"
                raise error


@hookimpl
def register_hosts(register: Callable[[Host], None]) -> None:
    register(WebDAVHost())
