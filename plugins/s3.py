"""S3 and S3-compatible object storage (AWS S3, Cloudflare R2, Backblaze B2, MinIO, Aliyun OSS and
Tencent COS in S3 mode).

Requests go through the run's aiohttp session and are signed with botocore's SigV4 signer (the
``picbeam[s3]`` extra), imported only when an upload starts. Files larger than ``part_size`` go up as a
multipart upload, one part in memory at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any, ClassVar
from urllib.parse import quote, urlsplit

from picbeam import ConfigError, Host, UploadError, UploadItem, UploadResult, hookimpl
from picbeam.answers import read_answer, retry_after, snippet, xml_to_data
from picbeam.hosts import request_timeout
from picbeam.storage import StorageHost, StorageSettings, missing_extra, required, secret, status_error

MIB = 1024 * 1024
MIN_PART = 5 * MIB  # S3's smallest part (all but the last)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class S3Settings(StorageSettings):
    # The service URL; empty means AWS (https://s3.<region>.amazonaws.com). {region} and {account_id} in it are
    # those fields (the presets build R2's, B2's, Wasabi's and Spaces' endpoints this way).
    endpoint: str = ""
    region: str = "us-east-1"
    account_id: str = ""
    bucket: str = required()
    access_key_id: str = secret("${AWS_ACCESS_KEY_ID}")
    secret_access_key: str = secret("${AWS_SECRET_ACCESS_KEY}")
    session_token: str = secret("${AWS_SESSION_TOKEN:-}")
    # true: <endpoint>/<bucket>/<key> (MinIO and most self-hosted stores); false: <bucket>.<endpoint host>/<key>.
    path_style: bool = False
    # A canned ACL such as "public-read"; empty sends none (the bucket's policy decides).
    acl: str = ""
    cache_control: str = ""
    # Files larger than this go up in parts of this size (at least 5 MiB).
    part_size: int = 8 * MIB


class S3Host(StorageHost):
    """Stores each file as an object in ``bucket``, with Content-Type from the file and Cache-Control from
    ``cache_control``; the URL is the object's address unless ``url_template`` / ``url_prefix`` says."""

    kind = "s3"
    settings_class = S3Settings
    settings: S3Settings
    url_names = ("bucket", "region")
    default_description = "S3-compatible object storage (AWS, R2, B2, MinIO...): needs picbeam[s3]"
    max_bytes = 5 * 1024**4  # S3's object size limit
    requires = ("botocore", "s3")
    # What an S3 error code means, in the words of the service behind this host.
    hints: ClassVar[Mapping[str, str]] = {}

    def __init__(self, name: str | None = None, settings: Any = None, source: str | None = None) -> None:
        super().__init__(name, settings, source)
        self._signer: Any = None

    def check(self, settings: S3Settings, where: str) -> None:
        if settings.part_size < MIN_PART:
            raise ConfigError(f"{where}: field 'part_size' must be at least {MIN_PART} (5 MiB)")

    # -- addresses ------------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        s = self.settings
        endpoint = s.endpoint.replace("{region}", s.region).replace("{account_id}", s.account_id)
        return (endpoint or f"https://s3.{s.region}.amazonaws.com").rstrip("/")

    @property
    def destination(self) -> str:
        return f"{self.endpoint}/{self.settings.bucket}"

    def url_values(self) -> dict[str, str]:
        return {"bucket": self.settings.bucket, "region": self.settings.region}

    def object_url(self, key: str) -> str:
        """The object's address (the key percent-encoded once, as SigV4 for S3 expects)."""
        encoded = quote(key, safe="/~")
        if self.settings.path_style:
            return f"{self.endpoint}/{self.settings.bucket}/{encoded}"
        parts = urlsplit(self.endpoint)
        return f"{parts.scheme}://{self.settings.bucket}.{parts.netloc}{parts.path}/{encoded}"

    # -- upload and delete ----------------------------------------------------------------------------
    async def upload(self, item: UploadItem, session: Any) -> UploadResult:
        key, context = self.place(item)
        headers = {"Content-Type": item.mime}
        if self.settings.cache_control:
            headers["Cache-Control"] = self.settings.cache_control
        if self.settings.acl:
            headers["x-amz-acl"] = self.settings.acl
        if item.size > self.settings.part_size:
            await self._multipart(session, key, item, headers)
        else:
            # The hash of the bytes sent, which differ from the original's when a processor replaced them.
            sha256 = await asyncio.to_thread(item.content_sha256)
            await self._send(session, "PUT", key, headers=headers, body=item.open(), sha256=sha256, size=item.size)
        url = self.object_url(key)
        return self.stored(item, key, self.public_url(key, context, url), bucket=self.settings.bucket)

    async def delete(self, record: Mapping[str, Any], session: Any) -> None:
        await self._send(session, "DELETE", self.recorded_path(record))

    async def _multipart(self, session: Any, key: str, item: UploadItem, headers: dict[str, str]) -> None:
        _, answer = await self._send(session, "POST", key, query="uploads", headers=headers)
        upload_id = _xml_field(answer, "UploadId")
        if not upload_id:
            raise UploadError(f"the server did not start a multipart upload: {snippet(answer)}")
        in_upload = f"uploadId={quote(upload_id, safe='')}"
        try:
            parts: list[tuple[int, str]] = []
            with open(item.path, "rb") as source:
                number = 0
                while True:
                    chunk, digest = await asyncio.to_thread(_read_part, source, self.settings.part_size)
                    if not chunk:
                        break
                    number += 1
                    answered, _ = await self._send(
                        session, "PUT", key, query=f"partNumber={number}&{in_upload}", body=chunk, sha256=digest
                    )
                    parts.append((number, answered.get("ETag", "")))
            listing = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>" for n, e in parts)
            body = f"<CompleteMultipartUpload>{listing}</CompleteMultipartUpload>".encode()
            _, done = await self._send(
                session, "POST", key, query=in_upload, body=body, sha256=hashlib.sha256(body).hexdigest()
            )
            if b"<Error>" in done:  # S3 may answer 200 and report the failure in the body
                raise _s3_error(200, done, self.settings.bucket, {}, self.hints)
        except Exception:
            # The original failure is what matters; an unfinished upload also expires by the bucket's rules.
            with contextlib.suppress(Exception):
                await self._send(session, "DELETE", key, query=in_upload)
            raise

    async def _send(
        self,
        session: Any,
        method: str,
        key: str,
        *,
        query: str = "",
        headers: Mapping[str, str] | None = None,
        body: bytes | IO[bytes] = b"",
        sha256: str = EMPTY_SHA256,
        size: int | None = None,
    ) -> tuple[Mapping[str, str], bytes]:
        """One signed request; the answer's headers and body."""
        from yarl import URL

        url = self.object_url(key) + (f"?{query}" if query else "")
        signed = self._sign(method, url, dict(headers or {}), sha256)
        length = size if size is not None else (len(body) if isinstance(body, bytes) else 0)
        async with session.request(
            method, URL(url, encoded=True), headers=signed, data=body, timeout=request_timeout(length)
        ) as response:
            answer = await read_answer(response)
            if not 200 <= response.status < 300:
                raise _s3_error(response.status, answer, self.settings.bucket, response.headers, self.hints)
            return response.headers, answer

    def _sign(self, method: str, url: str, headers: dict[str, str], sha256: str) -> dict[str, str]:
        """The headers of a SigV4-signed request (botocore's signer; the body's hash is given, so a
        large file is never read here)."""
        if self._signer is None:
            self._signer = _make_signer(self.settings)
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, headers=headers)
        request.context["payload_sha256"] = sha256
        self._signer.add_auth(request)
        return dict(request.headers.items())


def _make_signer(settings: S3Settings) -> Any:
    try:
        from botocore.auth import S3SigV4Auth
        from botocore.credentials import Credentials
    except ImportError:
        raise missing_extra("botocore", "s3") from None

    class KnownPayloadSigner(S3SigV4Auth):
        """S3's SigV4 with the body's SHA-256 computed by picbeam (already known for whole files)."""

        def payload(self, request: Any) -> str:
            return str(request.context["payload_sha256"])

    credentials = Credentials(settings.access_key_id, settings.secret_access_key, settings.session_token or None)
    return KnownPayloadSigner(credentials, "s3", settings.region)


def _read_part(source: IO[bytes], size: int) -> tuple[bytes, str]:
    """The next part of a file and its SHA-256 (in a worker thread)."""
    chunk = source.read(size)
    return chunk, hashlib.sha256(chunk).hexdigest()


def _xml_field(body: bytes, name: str) -> str:
    """The text of a top-level element of an S3 XML answer, whatever its namespace."""
    try:
        data = xml_to_data(body.decode("utf-8", errors="replace"))
    except (ValueError, SyntaxError):
        return ""
    if not isinstance(data, dict):
        return ""
    for tag, value in data.items():
        if tag == name or tag.endswith("}" + name):
            return value if isinstance(value, str) else ""
    return ""


# What an S3 error code means for the user, and what to do.
HINTS: dict[str, str] = {
    "InvalidAccessKeyId": "the access key id is not known to the server; check access_key_id (AWS_ACCESS_KEY_ID)",
    "SignatureDoesNotMatch": "the signature does not match; check secret_access_key (AWS_SECRET_ACCESS_KEY)",
    "AccessDenied": "this key may not write to the bucket; check the key's and the bucket's policy",
    "AllAccessDisabled": "access to this bucket is disabled; check the bucket's settings",
    "AuthorizationHeaderMalformed": "check 'region' (it must be the bucket's region)",
    "PermanentRedirect": "the bucket lives at another endpoint or region; check 'endpoint', 'region', 'path_style'",
    "RequestTimeTooSkewed": "this machine's clock is wrong; set it right",
    "EntityTooLarge": "the file is larger than the server allows",
    "QuotaExceeded": "the storage quota is used up",
    "AccessControlListNotSupported": "the bucket refuses ACLs; remove 'acl'",
}


def _s3_error(
    status: int, body: bytes, bucket: str, headers: Mapping[str, str], hints: Mapping[str, str] = HINTS
) -> UploadError:
    code, message = _xml_field(body, "Code"), _xml_field(body, "Message")
    if code == "NoSuchBucket" or (status == 404 and not code and not body):
        hint = f"bucket '{bucket}' does not exist here; create it, or fix 'bucket' and 'endpoint'"
    elif status == 507 or "quota" in code.lower() or "storage" in code.lower():
        hint = hints.get("QuotaExceeded", HINTS["QuotaExceeded"])
    else:
        hint = hints.get(code, "")
    detail = f"{code}: {message}" if code else snippet(body)
    error = status_error(
        status, detail, {status: hint} if hint else {}, retry_after=retry_after(headers.get("Retry-After"))
    )
    if code in ("SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"):
        error.transient = True
    return error


S3Host.hints = HINTS


@hookimpl
def register_hosts(register: Callable[[Host], None]) -> None:
    register(S3Host())
