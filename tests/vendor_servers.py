"""Loopback stand-ins for Tencent COS, Aliyun OSS, Qiniu Kodo and Upyun that check every request's
signature with the vendor's own SDK (cos-python-sdk-v5, oss2, qiniu, upyun: test dependencies only),
store what arrives, and answer as the vendor's documentation shows (errors included).

Each is a :class:`picbeam.testing.FakeHost` with a responder: the SDK recomputes the signature from what
the request really carried, so a header aiohttp adds or changes after picbeam signed shows up as a
signature mismatch, as it would at the vendor.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from unittest import mock
from urllib.parse import quote

import pytest
from picbeam.testing import FakeHost, RecordedRequest, Reply


def _xml_error(status: int, code: str, message: str) -> Reply:
    body = f"<?xml version='1.0' encoding='utf-8' ?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return Reply(status=status, body=body.encode(), headers={"Content-Type": "application/xml"})


@dataclass
class VendorServer:
    """A fake vendor endpoint: ``objects`` holds what was stored, ``checked`` counts verified signatures."""

    host: FakeHost
    key_id: str
    secret: str
    bucket: str
    objects: dict[str, bytes] = field(default_factory=dict)
    checked: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return self.host.url

    def count(self) -> None:
        with self.lock:
            self.checked += 1


# -- Tencent COS ---------------------------------------------------------------------------------------
def cos_signature_from_sdk(request: RecordedRequest, secret_id: str, secret_key: str) -> str:
    """What cos-python-sdk-v5's CosS3Auth writes for this request, over the headers the client listed."""
    from qcloud_cos import CosConfig, cos_auth

    fields = dict(part.split("=", 1) for part in request.headers.get("Authorization", "").split("&") if "=" in part)
    start, end = (int(t) for t in fields.get("q-sign-time", "0;0").split(";"))
    names = [n for n in fields.get("q-header-list", "").split(";") if n]
    headers = {name: request.headers.get(name, "") for name in names}
    conf = CosConfig(Region="ap-guangzhou", SecretId=secret_id, SecretKey=secret_key)
    auth = cos_auth.CosS3Auth(conf, key=request.path, params=request.query, expire=end - start - 60)
    prepared = SimpleNamespace(method=request.method, url=f"http://{request.headers.get('Host')}{request.path}",
                               headers=headers)  # fmt: skip
    with mock.patch.object(cos_auth, "time", SimpleNamespace(time=lambda: start + 60)):
        auth(prepared)
    return prepared.headers["Authorization"]


def cos_responder(server: VendorServer) -> Callable[[RecordedRequest, FakeHost], Reply]:
    def respond(request: RecordedRequest, host: FakeHost) -> Reply:
        given = request.headers.get("Authorization", "")
        if f"q-ak={server.key_id}&" not in given:
            return _xml_error(403, "InvalidAccessKeyId", "The access key Id format you provided is invalid.")
        if cos_signature_from_sdk(request, server.key_id, server.secret) != given:
            return _xml_error(403, "SignatureDoesNotMatch", "The calculated signature does not match.")
        server.count()
        return _store(server, request)

    return respond


# -- Aliyun OSS ----------------------------------------------------------------------------------------
def oss_signature_from_sdk(request: RecordedRequest, key_id: str, secret: str, bucket: str) -> str:
    """What oss2.Auth (V1) writes for this request."""
    import oss2
    from oss2 import auth as oss_auth

    req = oss2.http.Request(request.method, f"http://127.0.0.1{request.path}", params=request.query,
                            headers=dict(request.headers))  # fmt: skip
    with mock.patch.object(oss_auth.utils, "http_date", lambda *a: request.headers.get("Date", "")):
        oss2.Auth(key_id, secret)._sign_request(req, bucket, request.path.lstrip("/"))
    return req.headers["authorization"]


def oss_responder(server: VendorServer) -> Callable[[RecordedRequest, FakeHost], Reply]:
    def respond(request: RecordedRequest, host: FakeHost) -> Reply:
        given = request.headers.get("Authorization", "")
        if not given.startswith(f"OSS {server.key_id}:"):
            return _xml_error(403, "InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist.")
        if oss_signature_from_sdk(request, server.key_id, server.secret, server.bucket) != given:
            return _xml_error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match.")
        server.count()
        return _store(server, request)

    return respond


# -- Upyun ---------------------------------------------------------------------------------------------
def upyun_signature_from_sdk(request: RecordedRequest, operator: str, password: str) -> str:
    from upyun.modules.sign import make_signature

    return make_signature(
        username=operator,
        password=hashlib.md5(password.encode()).hexdigest(),
        method=request.method,
        uri=quote(request.path, safe="~/"),
        date=request.headers.get("Date", ""),
        content_md5=request.headers.get("Content-MD5"),
    )


def upyun_responder(server: VendorServer) -> Callable[[RecordedRequest, FakeHost], Reply]:
    def respond(request: RecordedRequest, host: FakeHost) -> Reply:
        if upyun_signature_from_sdk(request, server.key_id, server.secret) != request.headers.get("Authorization"):
            return Reply(status=401, json={"msg": "sign error", "code": 40100005, "id": "abc"})
        server.count()
        prefix = f"/{server.bucket}/"
        if not request.path.startswith(prefix):
            return Reply(status=404, json={"msg": "bucket not exist", "code": 40400001, "id": "abc"})
        reply = _store(server, request, key=request.path[len(prefix) :])
        if reply.status == 404:
            return Reply(status=404, json={"msg": "file or directory not found", "code": 40400001, "id": "abc"})
        return reply

    return respond


# -- Qiniu ---------------------------------------------------------------------------------------------
def qiniu_token_from_sdk(token: str, access_key: str, secret_key: str) -> str:
    """The upload token the qiniu SDK makes for the same put policy."""
    import qiniu

    policy = base64.urlsafe_b64decode(token.rsplit(":", 1)[-1]).decode()
    return qiniu.Auth(access_key, secret_key).token_with_data(policy)


def qiniu_responder(server: VendorServer) -> Callable[[RecordedRequest, FakeHost], Reply]:
    def respond(request: RecordedRequest, host: FakeHost) -> Reply:
        import qiniu

        if request.method == "POST" and request.path == "/":
            token = request.form.get("token", "")
            if qiniu_token_from_sdk(token, server.key_id, server.secret) != token:
                return Reply(status=401, json={"error": "bad token"})
            policy = json.loads(base64.urlsafe_b64decode(token.rsplit(":", 1)[-1]))
            key = request.form.get("key", "")
            if policy["scope"] != f"{server.bucket}:{key}" or policy["deadline"] < time.time():
                return Reply(status=401, json={"error": "key doesn't match with scope"})
            server.count()
            with server.lock:
                server.objects[key] = request.file.data
            return Reply(json={"hash": hashlib.sha1(request.file.data).hexdigest(), "key": key})
        if request.method == "POST" and request.path.startswith("/delete/"):
            headers = dict(request.headers)
            ok = qiniu.QiniuMacAuth(server.key_id, server.secret).verify_callback(
                request.headers.get("Authorization", ""),
                f"http://{request.headers.get('Host')}{request.path}",
                request.body,
                content_type=request.headers.get("Content-Type", ""),
                method="POST",
                headers=headers,
            )
            if not ok:
                return Reply(status=401, json={"error": "bad token"})
            server.count()
            entry = base64.urlsafe_b64decode(request.path.removeprefix("/delete/")).decode()
            bucket, _, key = entry.partition(":")
            with server.lock:
                if bucket != server.bucket or server.objects.pop(key, None) is None:
                    return Reply(status=612, json={"error": "no such file or directory"})
            return Reply(json={})
        return Reply(status=404, json={"error": "not found"})

    return respond


def _store(server: VendorServer, request: RecordedRequest, key: str | None = None) -> Reply:
    key = key if key is not None else request.path.lstrip("/")
    with server.lock:
        if request.method == "PUT":
            server.objects[key] = request.body
            return Reply(status=200, headers={"ETag": f'"{hashlib.md5(request.body).hexdigest()}"'})
        if request.method == "DELETE":
            return Reply(status=204) if server.objects.pop(key, None) is not None else Reply(status=404)
    return Reply(status=405)


RESPONDERS = {"cos": cos_responder, "oss": oss_responder, "upyun": upyun_responder, "qiniu": qiniu_responder}


def vendor_server(kind: str, key_id: str, secret: str, bucket: str) -> Iterator[VendorServer]:
    with FakeHost() as host:
        server = VendorServer(host, key_id, secret, bucket)
        host.respond_with(RESPONDERS[kind](server))
        yield server


@pytest.fixture(scope="module")
def cos_server() -> Iterator[VendorServer]:
    yield from vendor_server("cos", "AKIDpicbeamtest0000000000000000000", "cos-secret-key-9876", "pics-1250000000")


@pytest.fixture(scope="module")
def oss_server() -> Iterator[VendorServer]:
    yield from vendor_server("oss", "LTAI5tPicbeamTest00000", "oss-secret-key-9876", "pics")


@pytest.fixture(scope="module")
def upyun_server() -> Iterator[VendorServer]:
    yield from vendor_server("upyun", "picbeam-op", "upyun-password-9876", "pics")


@pytest.fixture(scope="module")
def qiniu_server() -> Iterator[VendorServer]:
    yield from vendor_server("qiniu", "qiniu-access-key-0000", "qiniu-secret-key-9876", "pics")


_ = Any
