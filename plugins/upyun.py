"""Upyun cloud storage (又拍云云存储), through its REST API and its HMAC signature.

Each file is a PUT to ``https://v0.api.upyun.com/<service>/<key>`` with ``Authorization: UPYUN
<operator>:base64(HMAC-SHA1(md5(password), METHOD&URI&DATE))`` and the ``Date`` it signs, as Upyun's REST
API documentation ("签名认证") describes; the tests compare it with the upyun SDK's ``make_signature``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from urllib.parse import quote, unquote, urlsplit

from picbeam import Host, hookimpl
from picbeam.objectstore import ObjectStoreHost, encoded_key
from picbeam.storage import StorageSettings, required, secret

API = "https://v0.api.upyun.com"


@dataclass(frozen=True)
class UpyunSettings(StorageSettings):
    # The storage service's name (服务名称).
    bucket: str = required()
    operator: str = required()
    password: str = secret("${UPYUN_PASSWORD}")
    # v0 picks the best line; v1.api.upyun.com (China Telecom), v2 (Unicom), v3 (Mobile).
    endpoint: str = API


class UpyunHost(ObjectStoreHost):
    """Stores each file in an Upyun storage service; the URL is ``url_prefix`` / ``url_template`` (your
    accelerated domain, 加速域名), else the service's test domain."""

    kind = "upyun"
    vendor = "Upyun"
    settings_class = UpyunSettings
    settings: UpyunSettings
    url_names = ("bucket",)
    default_description = (
        "Upyun storage (又拍云): service, operator and password; set url_prefix to your accelerated domain "
        "(signature checked against the upyun SDK; the live service and its error codes are unverified)"
    )
    # Upyun's error answers carry a numeric code and its msg (quoted in the error line); the meaning of
    # each code could not be verified, so only the HTTP status gets a hint.
    status_hints = {
        401: "check 'operator' and 'password' (UPYUN_PASSWORD), and that the operator is authorised",
        404: "the file or the service does not exist; check 'bucket'",
    }

    @property
    def bucket_address(self) -> str:
        return f"{self.settings.endpoint.rstrip('/')}/{self.settings.bucket}"

    def url_values(self) -> dict[str, str]:
        return {"bucket": self.settings.bucket}

    def default_url(self, key: str) -> str:
        return f"http://{self.settings.bucket}.test.upcdn.net/{encoded_key(key)}"

    def sign(self, method: str, url: str, headers: dict[str, str], date: str | None = None) -> dict[str, str]:
        s = self.settings
        signed = {**headers, "Date": date or formatdate(usegmt=True)}
        uri = quote(unquote(urlsplit(url).path), safe="~/")
        signed["Authorization"] = upyun_authorization(s.operator, s.password, method, uri, signed["Date"])
        return signed

    def error_code(self, body: bytes) -> tuple[str, str]:
        try:
            data = json.loads(body)
        except ValueError:
            return "", ""
        if not isinstance(data, dict):
            return "", ""
        return str(data.get("code") or ""), str(data.get("msg") or "")


def upyun_authorization(operator: str, password: str, method: str, uri: str, date: str, content_md5: str = "") -> str:
    """``UPYUN operator:signature`` for a REST request (the password enters as its MD5 hex digest)."""
    key = hashlib.md5(password.encode(), usedforsecurity=False).hexdigest()
    parts = [method, uri, date] + ([content_md5] if content_md5 else [])
    digest = hmac.new(key.encode(), "&".join(parts).encode(), hashlib.sha1).digest()
    return f"UPYUN {operator}:{base64.b64encode(digest).decode()}"


@hookimpl
def register_hosts(register: Callable[[Host], None]) -> None:
    register(UpyunHost())
