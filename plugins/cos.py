"""Tencent Cloud COS (腾讯云对象存储), through its own XML API and its own request signature.

Each file is a PUT to ``https://<bucket>-<appid>.cos.<region>.myqcloud.com/<key>`` signed as the COS
documentation "Request Signature" (cloud.tencent.com/document/product/436/7778) describes: HMAC-SHA1 over
the method, path, parameters and the headers named in ``q-header-list``, valid for a time range. The
tests compare it with cos-python-sdk-v5's ``CosS3Auth`` for the same request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from picbeam import Host, hookimpl
from picbeam.objectstore import ObjectStoreHost
from picbeam.storage import StorageSettings, required, secret

# How long a signature stays valid; it starts a minute early, as the SDK's, for clocks slightly behind.
VALID_FOR = 900
# The headers COS lets a signature cover (the SDK's list); x-cos-* ones too.
SIGNED_HEADERS = frozenset(
    ("cache-control", "content-disposition", "content-encoding", "content-type", "content-md5", "content-length",
     "expect", "expires", "host", "if-match", "if-modified-since", "if-none-match", "if-unmodified-since",
     "origin", "range", "transfer-encoding", "pic-operations")
)  # fmt: skip


@dataclass(frozen=True)
class COSSettings(StorageSettings):
    # The bucket's full name, with the APPID: examplebucket-1250000000 (or give app_id separately).
    bucket: str = required()
    app_id: str = ""
    # The bucket's region: ap-guangzhou, ap-shanghai, ap-beijing, ap-hongkong, na-siliconvalley...
    region: str = required()
    secret_id: str = secret("${COS_SECRET_ID}")
    secret_key: str = secret("${COS_SECRET_KEY}")
    # The bucket's address, when not <bucket>.cos.<region>.myqcloud.com (a global acceleration domain
    # such as https://<bucket>.cos.accelerate.myqcloud.com, or a private deployment).
    endpoint: str = ""
    cache_control: str = ""
    # A canned ACL (x-cos-acl): private, public-read; empty leaves the bucket's.
    acl: str = ""


class COSHost(ObjectStoreHost):
    """Stores each file as a COS object; the URL is the object's address unless ``url_template`` /
    ``url_prefix`` (your CDN or custom domain) says otherwise."""

    kind = "cos"
    vendor = "Tencent COS"
    settings_class = COSSettings
    settings: COSSettings
    url_names = ("bucket", "region")
    default_description = (
        "Tencent Cloud COS (腾讯云 COS): bucket name-APPID and region ap-...; secret_id/secret_key from CAM "
        "(unverified against the live service: signature checked against cos-python-sdk-v5)"
    )
    max_bytes = 5 * 1024**3  # a single PUT Object takes up to 5 GB
    hints = {
        "InvalidAccessKeyId": "COS does not know this SecretId; check secret_id (COS_SECRET_ID)",
        "SignatureDoesNotMatch": "the signature does not match; check secret_key (COS_SECRET_KEY)",
        "AccessDenied": "this key may not write to the bucket; check the CAM policy and the bucket's ACL",
        "NoSuchBucket": "the bucket does not exist in this region; check 'bucket' (name-APPID) and 'region'",
        "RequestTimeTooSkewed": "this machine's clock is wrong; set it right",
        "EntityTooLarge": "the file is larger than COS takes in one request (5 GB)",
        "InvalidBucketName": "check 'bucket': COS bucket names are name-APPID, e.g. pics-1250000000",
    }
    status_hints = {404: "the bucket does not exist in this region; check 'bucket' (name-APPID) and 'region'"}
    region_pattern = re.compile(r"[a-z]{2,4}-[a-z]+(?:-\d+)?")
    region_example = "ap-guangzhou, ap-shanghai"
    acl_header = "x-cos-acl"

    @property
    def bucket(self) -> str:
        s = self.settings
        if s.app_id and not s.bucket.endswith(f"-{s.app_id}"):
            return f"{s.bucket}-{s.app_id}"
        return s.bucket

    @property
    def bucket_address(self) -> str:
        s = self.settings
        return s.endpoint.rstrip("/") if s.endpoint else f"https://{self.bucket}.cos.{s.region}.myqcloud.com"

    def url_values(self) -> dict[str, str]:
        return {"bucket": self.bucket, "region": self.settings.region}

    def sign(self, method: str, url: str, headers: dict[str, str], now: float | None = None) -> dict[str, str]:
        parts = urlsplit(url)
        signed = {**headers, "Host": parts.netloc}
        start = int(time.time() if now is None else now) - 60
        signed["Authorization"] = cos_authorization(
            self.settings.secret_id,
            self.settings.secret_key,
            method,
            unquote(parts.path) or "/",
            _query(parts.query),
            {k: v for k, v in signed.items() if _signable(k)},
            (start, start + 60 + VALID_FOR),
        )
        return signed


def cos_authorization(
    secret_id: str,
    secret_key: str,
    method: str,
    path: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    valid: tuple[int, int],
) -> str:
    """The Authorization header of a COS request (q-sign-algorithm=sha1)."""

    def encoded(items: Mapping[str, str]) -> dict[str, str]:
        return {quote(k, safe="-_.~").lower(): quote(v, safe="-_.~") for k, v in items.items()}

    params_, headers_ = encoded(params), encoded(headers)
    http_string = "\n".join(
        (
            method.lower(),
            path,
            "&".join(f"{k}={v}" for k, v in sorted(params_.items())),
            "&".join(f"{k}={v}" for k, v in sorted(headers_.items())),
            "",
        )
    )
    key_time = f"{valid[0]};{valid[1]}"
    string_to_sign = f"sha1\n{key_time}\n{hashlib.sha1(http_string.encode()).hexdigest()}\n"
    sign_key = hmac.new(secret_key.encode(), key_time.encode(), hashlib.sha1).hexdigest()
    signature = hmac.new(sign_key.encode(), string_to_sign.encode(), hashlib.sha1).hexdigest()
    return (
        f"q-sign-algorithm=sha1&q-ak={secret_id}&q-sign-time={key_time}&q-key-time={key_time}"
        f"&q-header-list={';'.join(sorted(headers_))}&q-url-param-list={';'.join(sorted(params_))}"
        f"&q-signature={signature}"
    )


def _signable(name: str) -> bool:
    lower = name.lower()
    return lower in SIGNED_HEADERS or lower.startswith(("x-cos-", "x-ci-"))


def _query(query: str) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(query, keep_blank_values=True))


@hookimpl
def register_hosts(register: Callable[[Host], None]) -> None:
    register(COSHost())
