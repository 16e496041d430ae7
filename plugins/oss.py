"""Aliyun OSS (阿里云对象存储), through its own REST API and its own request signature.

Each file is a PUT to ``https://<bucket>.oss-<region>.aliyuncs.com/<key>`` with the V1 header signature
the OSS documentation describes ("Include a V1 signature in the Authorization header"):
``Authorization: OSS <AccessKeyId>:base64(HMAC-SHA1(secret, VERB\\nContent-MD5\\nContent-Type\\nDate\\n
CanonicalizedOSSHeaders CanonicalizedResource))``. The tests compare it with oss2's ``Auth`` for the same
request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from urllib.parse import unquote, urlsplit

from picbeam import Host, hookimpl
from picbeam.objectstore import ObjectStoreHost
from picbeam.storage import StorageSettings, required, secret


@dataclass(frozen=True)
class OSSSettings(StorageSettings):
    bucket: str = required()
    # The bucket's region, as OSS writes it in endpoints: oss-cn-hangzhou, oss-cn-beijing, oss-ap-southeast-1
    # ("cn-hangzhou" works too).
    region: str = required()
    access_key_id: str = secret("${OSS_ACCESS_KEY_ID}")
    access_key_secret: str = secret("${OSS_ACCESS_KEY_SECRET}")
    # An STS token, for temporary keys (x-oss-security-token).
    security_token: str = secret("${OSS_SECURITY_TOKEN:-}")
    # The bucket's address, when not <bucket>.<region>.aliyuncs.com: a custom domain bound to the bucket
    # (CNAME), or an accelerate / internal endpoint such as https://<bucket>.oss-cn-hangzhou-internal.aliyuncs.com.
    endpoint: str = ""
    cache_control: str = ""
    # A canned object ACL (x-oss-object-acl): private, public-read, public-read-write, default.
    acl: str = ""


class OSSHost(ObjectStoreHost):
    """Stores each file as an OSS object; the URL is the object's address unless ``url_template`` /
    ``url_prefix`` (your CDN or custom domain) says otherwise."""

    kind = "oss"
    vendor = "Aliyun OSS"
    settings_class = OSSSettings
    settings: OSSSettings
    url_names = ("bucket", "region")
    default_description = (
        "Aliyun OSS (阿里云 OSS): bucket and region oss-cn-...; AccessKey from RAM (V1 signature, checked "
        "against oss2; the V4 signature and the live service are unverified)"
    )
    max_bytes = 5 * 1024**3  # PutObject takes up to 5 GB
    hints = {
        "InvalidAccessKeyId": "OSS does not know this AccessKey ID; check access_key_id (OSS_ACCESS_KEY_ID)",
        "SignatureDoesNotMatch": "the signature does not match; check access_key_secret (OSS_ACCESS_KEY_SECRET)",
        "AccessDenied": "this key may not write to the bucket; check the RAM policy and the bucket policy",
        "NoSuchBucket": "the bucket does not exist; check 'bucket' and 'region'",
        "RequestTimeTooSkewed": "this machine's clock is wrong; set it right",
        "SecurityTokenExpired": "the STS token has expired; get a new security_token",
        "InvalidObjectName": "OSS refuses this object name; change the 'path' template",
    }
    status_hints = {404: "the bucket does not exist; check 'bucket' and 'region'"}
    region_pattern = re.compile(r"(?:oss-)?[a-z]{2}-[a-z0-9-]+")
    region_example = "oss-cn-hangzhou"
    acl_header = "x-oss-object-acl"

    @property
    def region(self) -> str:
        """The region as endpoints write it (oss-cn-hangzhou)."""
        region = self.settings.region
        return region if region.startswith("oss-") else f"oss-{region}"

    @property
    def bucket_address(self) -> str:
        s = self.settings
        return s.endpoint.rstrip("/") if s.endpoint else f"https://{s.bucket}.{self.region}.aliyuncs.com"

    def url_values(self) -> dict[str, str]:
        return {"bucket": self.settings.bucket, "region": self.region}

    def sign(self, method: str, url: str, headers: dict[str, str], date: str | None = None) -> dict[str, str]:
        s = self.settings
        signed = {**headers, "Date": date or formatdate(usegmt=True)}
        if s.security_token:
            signed["x-oss-security-token"] = s.security_token
        key = unquote(urlsplit(url).path).lstrip("/")
        signature = oss_signature(s.access_key_secret, method, signed, f"/{s.bucket}/{key}")
        signed["Authorization"] = f"OSS {s.access_key_id}:{signature}"
        return signed


def oss_signature(secret_key: str, method: str, headers: Mapping[str, str], resource: str) -> str:
    """The V1 signature of an OSS request for ``resource`` (/bucket/key, no sub-resources)."""
    lower = {k.lower(): v for k, v in headers.items()}
    oss_headers = "".join(f"{k}:{v}\n" for k, v in sorted(lower.items()) if k.startswith("x-oss-"))
    string_to_sign = "\n".join(
        (method, lower.get("content-md5", ""), lower.get("content-type", ""), lower.get("date", ""), "")
    )
    digest = hmac.new(secret_key.encode(), (string_to_sign + oss_headers + resource).encode(), hashlib.sha1)
    return base64.b64encode(digest.digest()).decode()


@hookimpl
def register_hosts(register: Callable[[Host], None]) -> None:
    register(OSSHost())
