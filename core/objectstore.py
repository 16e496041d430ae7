"""ObjectStoreHost: the shared part of the vendors' own object-storage REST APIs (Tencent COS, Aliyun OSS,
Upyun): each file is one signed PUT to its object address, a delete one signed DELETE.

A vendor's host says where its bucket lives (:attr:`ObjectStoreHost.bucket_address`), how a request is
signed (:meth:`ObjectStoreHost.sign`) and what its error answers mean (:meth:`ObjectStoreHost.failure`);
the request, the body (a fresh one per attempt: the engine calls ``upload`` again) and the result are
done here once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from .answers import retry_after, snippet, xml_to_data
from .errors import ConfigError, UploadError
from .hosts import request_timeout
from .items import UploadItem, UploadResult
from .storage import StorageHost, status_error


class ObjectStoreHost(StorageHost):
    """A storage host whose vendor API takes a signed PUT of the object and a signed DELETE."""

    # The vendor's name as its users know it, for messages ("Tencent COS").
    vendor: ClassVar[str] = ""
    # Error code in the vendor's answer -> what it means for the user and what to do.
    hints: ClassVar[Mapping[str, str]] = {}
    # Statuses and their meaning when the answer carries no code.
    status_hints: ClassVar[Mapping[int, str]] = {}
    # The vendor's region names (checked when the host is configured) and an example of them.
    region_pattern: ClassVar[re.Pattern[str] | None] = None
    region_example: ClassVar[str] = ""
    # The header a canned ACL goes in (x-cos-acl...), for settings with an ``acl`` field.
    acl_header: ClassVar[str] = ""

    # -- what a vendor says ---------------------------------------------------------------------------
    @property
    def bucket_address(self) -> str:
        """Where the bucket's objects are addressed (no trailing slash)."""
        raise NotImplementedError

    @property
    def destination(self) -> str:
        return self.bucket_address

    def object_url(self, key: str) -> str:
        """The object's address (``key`` is the stored path, not yet encoded)."""
        return f"{self.bucket_address}/{encoded_key(key)}"

    def default_url(self, key: str) -> str:
        """The public URL when neither ``url_template`` nor ``url_prefix`` is set."""
        return self.object_url(key)

    def sign(self, method: str, url: str, headers: dict[str, str]) -> dict[str, str]:
        """``headers`` with the vendor's authentication added, for a request to ``url``."""
        raise NotImplementedError

    def error_code(self, body: bytes) -> tuple[str, str]:
        """The code and message of an error answer (XML ``<Error><Code>`` by default)."""
        return xml_error(body)

    # -- upload and delete ----------------------------------------------------------------------------
    async def upload(self, item: UploadItem, session: Any) -> UploadResult:
        key, context = self.place(item)
        headers = {"Content-Type": item.mime, "Content-Length": str(item.size), **self.upload_headers(item)}
        await self.send(session, "PUT", self.object_url(key), headers, item.open(), item.size)
        return self.stored(item, key, self.public_url(key, context, self.default_url(key)))

    def upload_headers(self, item: UploadItem) -> dict[str, str]:
        """Extra headers of an upload: Cache-Control and the canned ACL, for settings that have them."""
        headers = {}
        if getattr(self.settings, "cache_control", ""):
            headers["Cache-Control"] = self.settings.cache_control
        if getattr(self.settings, "acl", "") and self.acl_header:
            headers[self.acl_header] = self.settings.acl
        return headers

    def check(self, settings: Any, where: str) -> None:
        region = getattr(settings, "region", "")
        if self.region_pattern and region and "$" not in region and not self.region_pattern.fullmatch(region):
            raise ConfigError(
                f"{where}: field 'region' {region!r} is not a {self.vendor} region (e.g. {self.region_example})"
            )
        endpoint = getattr(settings, "endpoint", "")
        if endpoint and "$" not in endpoint:
            endpoint_url(endpoint, where=where)

    async def delete(self, record: Mapping[str, Any], session: Any) -> None:
        key = self.recorded_path(record)
        await self.send(session, "DELETE", self.object_url(key), {}, b"", 0, missing=f"{key} is not there any more")

    async def send(
        self,
        session: Any,
        method: str,
        url: str,
        headers: dict[str, str],
        body: Any,
        size: int,
        *,
        missing: str | None = None,
    ) -> bytes:
        """One signed request; the answer's body, or an UploadError in the vendor's words."""
        from yarl import URL

        signed = self.sign(method, url, headers)
        # No body at all for a delete: aiohttp would give b"" a Content-Type the signature did not cover.
        async with session.request(
            method, URL(url, encoded=True), headers=signed, data=body or None, timeout=request_timeout(size)
        ) as response:
            answer = await response.read()
            if 200 <= response.status < 300:
                return answer
            if response.status == 404 and missing and method == "DELETE":
                raise UploadError(missing, status=404)
            raise self.failure(response.status, response.headers, answer)

    def failure(self, status: int, headers: Mapping[str, str], body: bytes) -> UploadError:
        code, message = self.error_code(body)
        hint = self.hints.get(code) or self.status_hints.get(status, "")
        detail = f"{code}: {message}" if code else snippet(body)
        error = status_error(
            status,
            f"{self.vendor} {detail}".strip(),
            {status: hint},
            retry_after=retry_after(headers.get("Retry-After")),
        )
        error.answer = code or None
        return error


def xml_error(body: bytes) -> tuple[str, str]:
    """``<Error><Code>X</Code><Message>Y</Message></Error>`` -> (X, Y); empty strings when absent."""
    try:
        data = xml_to_data(body.decode("utf-8", errors="replace"))
    except (ValueError, SyntaxError):
        return "", ""
    if not isinstance(data, dict):
        return "", ""

    def field(name: str) -> str:
        value = data.get(name)
        return value if isinstance(value, str) else ""

    return field("Code"), field("Message")


def endpoint_url(value: str, *, where: str, name: str = "endpoint") -> str:
    """An endpoint field: an http(s) URL without a trailing slash (checked when the host is configured)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"{where}: field '{name}' must be an http:// or https:// address, not {value!r}")
    return value.rstrip("/")


def encoded_key(key: str) -> str:
    """An object key in a URL path: percent-encoded once, '/' kept."""
    return quote(key, safe="/~")


def require_public_url(settings: Any, where: str, vendor: str) -> None:
    """Refuse a bucket without ``url_prefix`` / ``url_template``, for vendors that give it no public address."""
    if settings.bucket and not (settings.url_prefix or settings.url_template):
        raise ConfigError(
            f"{where}: field 'url_prefix' is required: the domain bound to the bucket "
            f"(e.g. https://img.example.com/); {vendor} gives a bucket no public address of its own"
        )
