"""Qiniu Kodo (七牛云对象存储): form upload with an upload token, delete through the management API.

Each file is a multipart POST to the region's upload host (``https://upload-<region>.qiniup.com``, z0:
``https://upload.qiniup.com``) with fields ``token``, ``key`` and ``file``; the token is
``AccessKey:urlsafe_base64(HMAC-SHA1(SecretKey, policy)):policy`` over the put policy
``{"scope": "<bucket>:<key>", "deadline": <unix time>}``. A delete is ``POST /delete/<EncodedEntryURI>``
to the region's ``rs`` host, signed ``Authorization: Qiniu AccessKey:<sign>`` (the "Qiniu" access token,
with ``X-Qiniu-Date``). The tests compare both with the qiniu SDK's ``Auth`` / ``QiniuMacAuth``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from picbeam import ConfigError, Host, UploadError, UploadItem, UploadResult, hookimpl
from picbeam.answers import retry_after, snippet
from picbeam.hosts import request_timeout
from picbeam.objectstore import encoded_key, endpoint_url, require_public_url
from picbeam.storage import StorageHost, StorageSettings, required, secret

TOKEN_LIFETIME = 3600
REGION = re.compile(r"[a-z]{1,3}\d|[a-z]{2}-[a-z]+-\d+")  # z0, z1, z2, na0, as0, cn-east-2, ap-southeast-2
# Qiniu's own statuses (its documentation's 响应状态码): what they mean for the user.
HINTS = {
    400: "the request was refused; if the answer says 'incorrect region', set 'region' to the bucket's",
    401: "the upload token or signature was refused; check access_key and secret_key (QINIU_ACCESS_KEY, "
    "QINIU_SECRET_KEY)",
    403: "this key may not do that; check the key's permissions",
    413: "the file is larger than Qiniu takes in a form upload",
    612: "the file is not there any more",
    614: "a different file already has this key; change the 'path' template",
    631: "the bucket does not exist; check 'bucket' and 'region'",
}


@dataclass(frozen=True)
class QiniuSettings(StorageSettings):
    bucket: str = required()
    access_key: str = secret("${QINIU_ACCESS_KEY}")
    secret_key: str = secret("${QINIU_SECRET_KEY}")
    # The bucket's region: z0 (East China), cn-east-2, z1 (North China), z2 (South China), na0 (North America),
    # as0 (Southeast Asia)...; it picks the upload and management hosts.
    region: str = "z0"
    # Set to use another upload or management host (an accelerated upload domain, a private deployment).
    up_host: str = ""
    rs_host: str = ""


class QiniuHost(StorageHost):
    """Uploads each file to a Kodo bucket; the URL is ``url_prefix`` / ``url_template`` (the bucket's
    domain: Qiniu gives no public address of its own)."""

    kind = "qiniu"
    settings_class = QiniuSettings
    settings: QiniuSettings
    url_names = ("bucket", "region")
    default_description = (
        "Qiniu Kodo (七牛云): bucket, region (z0, z1, z2, na0, as0...) and url_prefix = the bucket's domain "
        "(token and signature checked against the qiniu SDK; the live service is unverified)"
    )
    max_bytes = 1024**3  # form upload: Qiniu recommends resumable upload above this (unverified limit)

    def check(self, settings: QiniuSettings, where: str) -> None:
        if settings.region and "$" not in settings.region and not REGION.fullmatch(settings.region):
            raise ConfigError(f"{where}: field 'region' {settings.region!r} is not a Qiniu region (e.g. z0, z2, na0)")
        for name in ("up_host", "rs_host"):
            value = getattr(settings, name)
            if value and "$" not in value:
                endpoint_url(value, where=where, name=name)
        require_public_url(settings, where, "Qiniu")

    # -- addresses ------------------------------------------------------------------------------------
    @property
    def up_host(self) -> str:
        s = self.settings
        if s.up_host:
            return s.up_host.rstrip("/")
        return "https://upload.qiniup.com" if s.region == "z0" else f"https://upload-{s.region}.qiniup.com"

    @property
    def rs_host(self) -> str:
        return (self.settings.rs_host or f"https://rs-{self.settings.region}.qiniuapi.com").rstrip("/")

    @property
    def destination(self) -> str:
        return f"qiniu:{self.settings.bucket}"

    def url_values(self) -> dict[str, str]:
        return {"bucket": self.settings.bucket, "region": self.settings.region}

    # -- upload and delete ----------------------------------------------------------------------------
    async def upload(self, item: UploadItem, session: Any) -> UploadResult:
        import aiohttp

        key, context = self.place(item)
        s = self.settings
        form = aiohttp.FormData(quote_fields=False)
        form.add_field("token", upload_token(s.access_key, s.secret_key, f"{s.bucket}:{key}"))
        form.add_field("key", key)
        form.add_field("file", item.open(), filename=item.name, content_type=item.mime)
        async with session.post(self.up_host, data=form, timeout=request_timeout(item.size)) as response:
            body = await response.read()
            if response.status != 200:
                raise qiniu_error(response.status, response.headers, body)
        stored = _json(body).get("key") or key
        fallback = f"{self.settings.url_prefix}{encoded_key(stored)}"
        return self.stored(
            item, str(stored), self.public_url(str(stored), context, fallback), hash=_json(body).get("hash")
        )

    async def delete(self, record: Mapping[str, Any], session: Any) -> None:
        key = self.recorded_path(record)
        url = f"{self.rs_host}/delete/{encoded_entry(self.settings.bucket, key)}"
        headers = management_headers(self.settings.access_key, self.settings.secret_key, "POST", url)
        async with session.post(url, headers=headers, timeout=request_timeout(0)) as response:
            body = await response.read()
            if response.status == 612:
                raise UploadError(f"{key} is not there any more", status=612)
            if response.status != 200:
                raise qiniu_error(response.status, response.headers, body)


# -- tokens and signatures --------------------------------------------------------------------------------
def urlsafe_b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def _hmac(secret_key: str, data: str) -> str:
    return urlsafe_b64(hmac.new(secret_key.encode(), data.encode(), hashlib.sha1).digest())


def upload_token(access_key: str, secret_key: str, scope: str, *, deadline: int | None = None) -> str:
    """An upload token for ``scope`` (``bucket:key``: only this key, and it may be overwritten)."""
    policy = {"scope": scope, "deadline": deadline or int(time.time()) + TOKEN_LIFETIME}
    encoded = urlsafe_b64(json.dumps(policy, separators=(",", ":")).encode())
    return f"{access_key}:{_hmac(secret_key, encoded)}:{encoded}"


def encoded_entry(bucket: str, key: str) -> str:
    """EncodedEntryURI: urlsafe base64 of ``bucket:key``."""
    return urlsafe_b64(f"{bucket}:{key}".encode())


def management_headers(
    access_key: str, secret_key: str, method: str, url: str, *, now: datetime | None = None
) -> dict[str, str]:
    """The headers of a management request with no body, signed as the "Qiniu" access token."""
    parts = urlsplit(url)
    content_type = "application/x-www-form-urlencoded"
    date = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    data = f"{method} {path}\nHost: {parts.netloc}\nContent-Type: {content_type}\nX-Qiniu-Date: {date}\n\n"
    return {
        "Content-Type": content_type,
        "X-Qiniu-Date": date,
        "Authorization": f"Qiniu {access_key}:{_hmac(secret_key, data)}",
    }


def qiniu_error(status: int, headers: Mapping[str, str], body: bytes) -> UploadError:
    """Qiniu's ``{"error": "..."}`` answer as one line; 5xx and 599 are worth another try, its own 6xx not."""
    message = _json(body).get("error") or snippet(body)
    hint = HINTS.get(status) or ("Qiniu had a problem; try again later" if 500 <= status < 600 else "")
    return UploadError(
        f"HTTP {status}: Qiniu {message}" + (f" ({hint})" if hint else ""),
        status=status,
        transient=status == 429 or 500 <= status < 600,
        retry_after=retry_after(headers.get("Retry-After")),
    )


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


@hookimpl
def register_hosts(register: Callable[[Host], None]) -> None:
    register(QiniuHost())
