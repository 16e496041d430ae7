"""CloudFlare ImgBed (MarSeventh/CloudFlare-ImgBed), a self-hosted image host on Cloudflare Pages.

Each file is a multipart POST (field ``file``) to ``<site>/upload?uploadFolder=<folder>&uploadNameType=
<default|index|origin|short>`` with ``Authorization: Bearer <API token>``; the answer is
``[{"src": "/file/<name>"}]`` and the URL is the site (or ``url_prefix``) + ``src``. A delete is
``DELETE <site>/api/manage/delete/<src without /file/>`` with the same token. These are the fields and
answers Qexo's cfimgbed provider uses; they could not be checked against ImgBed's own documentation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from picbeam import ConfigError, Host, UploadError, UploadItem, UploadResult, hookimpl
from picbeam.answers import snippet
from picbeam.hosts import request_timeout
from picbeam.objectstore import endpoint_url
from picbeam.storage import StorageHost, StorageSettings, required, secret, status_error
from picbeam.templates import render_path

NAME_TYPES = ("default", "index", "origin", "short")
HINTS = {
    401: "the site refused the API token; check api_token (CFIMGBED_TOKEN) and its upload/delete permission",
    403: "the token may not do this; give it upload and delete permission in the site's settings",
    404: "no such file or API on this site; check 'site'",
    413: "the file is larger than the site takes",
}


@dataclass(frozen=True)
class CFImgBedSettings(StorageSettings):
    # The site, e.g. https://img.example.com
    site: str = required()
    api_token: str = secret("${CFIMGBED_TOKEN}")
    # The folder on the site (uploadFolder), a path template: empty for the root, e.g. "blog/{year}".
    path: str = ""
    # How the site names the file: default, index, origin (the file's own name) or short.
    name_type: str = "default"


class CFImgBedHost(StorageHost):
    """Uploads each file to a CloudFlare ImgBed site; the URL is the site's (or ``url_prefix``) + ``src``."""

    kind = "cfimgbed"
    settings_class = CFImgBedSettings
    settings: CFImgBedSettings
    default_description = (
        "CloudFlare ImgBed site: site = https://your.site, export CFIMGBED_TOKEN=<API token> (API as Qexo "
        "uses it; unverified against ImgBed's documentation and a live site)"
    )

    def check(self, settings: CFImgBedSettings, where: str) -> None:
        if settings.name_type not in NAME_TYPES:
            raise ConfigError(f"{where}: field 'name_type' must be one of {', '.join(NAME_TYPES)}")
        if settings.site and "$" not in settings.site:
            endpoint_url(settings.site, where=where, name="site")

    @property
    def destination(self) -> str:
        return self.settings.site.rstrip("/")

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.api_token}"}

    async def upload(self, item: UploadItem, session: Any) -> UploadResult:
        import aiohttp
        from picbeam.templates import TemplateContext

        s = self.settings
        folder = render_path(s.path, TemplateContext.of(item)) if s.path.strip("/") else ""
        form = aiohttp.FormData(quote_fields=False)
        form.add_field("file", item.open(), filename=item.name, content_type=item.mime)
        query = {"uploadFolder": folder, "uploadNameType": s.name_type}
        async with session.post(
            f"{self.destination}/upload", params=query, headers=self._headers(), data=form,
            timeout=request_timeout(item.size),
        ) as response:  # fmt: skip
            body = await response.read()
            if response.status != 200:
                raise status_error(response.status, snippet(body), HINTS)
        src = _src(body)
        url = (s.url_prefix.rstrip("/") or self.destination) + quote(src, safe="/~%")
        return self.stored(item, src.removeprefix("/file/"), url, src=src)

    async def delete(self, record: Mapping[str, Any], session: Any) -> None:
        path = self.recorded_path(record)
        url = f"{self.destination}/api/manage/delete/{quote(path, safe='/~')}"
        async with session.delete(url, headers=self._headers(), timeout=request_timeout(0)) as response:
            body = await response.read()
            if response.status == 404:
                raise UploadError(f"{path} is not there any more")
            if response.status != 200:
                raise status_error(response.status, snippet(body), HINTS)


def _src(body: bytes) -> str:
    """``[0].src`` of the answer; anything else is one line quoting it."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    src = data[0].get("src") if isinstance(data, list) and data and isinstance(data[0], dict) else None
    if not isinstance(src, str) or not src.startswith("/"):
        message = data.get("error") or data.get("message") if isinstance(data, dict) else None
        raise UploadError(f"the answer has no URL at [0].src: {message or snippet(body)}")
    return src


@hookimpl
def register_hosts(register: Callable[[Host], None]) -> None:
    register(CFImgBedHost())
