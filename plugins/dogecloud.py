"""DogeCloud cloud storage (多吉云): its token API in front of an S3-compatible store.

Once per run, ``POST https://api.dogecloud.com/auth/tmp_token.json`` with ``{"channel": "OSS_FULL",
"scopes": ["<bucket>:*"]}`` and ``Authorization: TOKEN <AccessKey>:hex(HMAC-SHA1(SecretKey, path + "\\n" +
body))`` gives temporary S3 credentials and the bucket's ``s3Bucket`` / ``s3Endpoint``; the files then go
through the ``s3`` host with those (needs ``picbeam[s3]``). The URL is ``url_prefix`` (the bucket's CDN
domain), as DogeCloud gives a bucket no public address of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from picbeam import Host, UploadError, UploadItem, UploadResult, hookimpl
from picbeam.answers import snippet
from picbeam.hosts import request_timeout
from picbeam.objectstore import endpoint_url, require_public_url
from picbeam.plugins.s3 import S3Host, S3Settings
from picbeam.storage import RunOnce, StorageHost, StorageSettings, required, secret, status_error

TOKEN_PATH = "/auth/tmp_token.json"


@dataclass(frozen=True)
class DogeCloudSettings(StorageSettings):
    # The bucket's name in the DogeCloud console (空间名称).
    bucket: str = required()
    access_key: str = secret("${DOGECLOUD_ACCESS_KEY}")
    secret_key: str = secret("${DOGECLOUD_SECRET_KEY}")
    api: str = "https://api.dogecloud.com"
    # Address the S3 store as <endpoint>/<bucket> (true) or <bucket>.<endpoint> (false, DogeCloud's).
    path_style: bool = False


class DogeCloudHost(StorageHost):
    """Uploads each file to a DogeCloud bucket through its S3 API, with temporary keys from its token API."""

    kind = "dogecloud"
    settings_class = DogeCloudSettings
    settings: DogeCloudSettings
    url_names = ("bucket",)
    default_description = (
        "DogeCloud storage (多吉云): bucket, AccessKey/SecretKey and url_prefix = the bucket's domain; needs "
        "picbeam[s3] (token API as DogeCloud documents it; unverified against the live service)"
    )
    max_bytes = 5 * 1024**3
    requires = ("botocore", "s3")

    def __init__(self, name: str | None = None, settings: Any = None, source: str | None = None) -> None:
        super().__init__(name, settings, source)
        self._store: RunOnce[S3Host] = RunOnce()

    def check(self, settings: DogeCloudSettings, where: str) -> None:
        if settings.api and "$" not in settings.api:
            endpoint_url(settings.api, where=where, name="api")
        require_public_url(settings, where, "DogeCloud")

    @property
    def destination(self) -> str:
        return f"dogecloud:{self.settings.bucket}"

    def url_values(self) -> dict[str, str]:
        return {"bucket": self.settings.bucket}

    async def upload(self, item: UploadItem, session: Any) -> UploadResult:
        store = await self._store.get("s3", lambda: self._login(session))
        return await store.upload(item, session)

    async def delete(self, record: Mapping[str, Any], session: Any) -> None:
        store = await self._store.get("s3", lambda: self._login(session))
        await store.delete(record, session)

    async def _login(self, session: Any) -> S3Host:
        """The S3 host for this run, with the temporary keys the token API gives."""
        s = self.settings
        body = json.dumps({"channel": "OSS_FULL", "scopes": [f"{s.bucket}:*"]})
        headers = {"Authorization": token_authorization(s.access_key, s.secret_key, TOKEN_PATH, body),
                   "Content-Type": "application/json"}  # fmt: skip
        async with session.post(
            s.api.rstrip("/") + TOKEN_PATH, data=body.encode(), headers=headers, timeout=request_timeout(0)
        ) as response:
            answer = await response.read()
            if response.status != 200:
                raise status_error(response.status, snippet(answer), {401: "check access_key and secret_key"})
        try:
            data = json.loads(answer)
        except ValueError:
            data = None
        if not isinstance(data, dict) or data.get("code") != 200:
            message = data.get("msg") if isinstance(data, dict) else snippet(answer)
            raise UploadError(f"DogeCloud refused the token request: {message} (check access_key and secret_key)")
        credentials = (data.get("data") or {}).get("Credentials") or {}
        buckets = [b for b in (data.get("data") or {}).get("Buckets") or [] if b.get("name") == s.bucket]
        if not buckets:
            raise UploadError(f"DogeCloud has no bucket '{s.bucket}' for this key; check 'bucket'")
        settings = S3Settings(
            path=s.path, url_template=s.url_template, url_prefix=s.url_prefix, endpoint=buckets[0]["s3Endpoint"],
            region="automatic", bucket=buckets[0]["s3Bucket"], access_key_id=credentials.get("accessKeyId", ""),
            secret_access_key=credentials.get("secretAccessKey", ""), session_token=credentials.get("sessionToken", ""),
            path_style=s.path_style,
        )  # fmt: skip
        return DogeCloudStore(self.name, settings, self.source)


class DogeCloudStore(S3Host):
    """The bucket's S3 store, its errors in DogeCloud's terms (the keys are temporary ones from its API)."""

    hints = {
        "InvalidAccessKeyId": "the temporary key from DogeCloud's token API was refused; try again, or check "
        "that the bucket is a standard one (only those take S3 uploads)",
        "SignatureDoesNotMatch": "the temporary key from DogeCloud's token API was refused; try again",
        "AccessDenied": "DogeCloud's temporary key may not write here; check the bucket and the key's permissions",
        "RequestTimeTooSkewed": "this machine's clock is wrong; set it right",
        "EntityTooLarge": "the file is larger than DogeCloud takes in one request",
        "QuotaExceeded": "the bucket's storage quota is used up",
    }


def token_authorization(access_key: str, secret_key: str, path: str, body: str) -> str:
    """DogeCloud's API signature: ``TOKEN <AccessKey>:<hex HMAC-SHA1 of path\\nbody>``."""
    digest = hmac.new(secret_key.encode(), f"{path}\n{body}".encode(), hashlib.sha1).hexdigest()
    return f"TOKEN {access_key}:{digest}"


@hookimpl
def register_hosts(register: Callable[[Host], None]) -> None:
    register(DogeCloudHost())
