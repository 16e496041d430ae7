"""The oss host (Aliyun OSS): its V1 signature against oss2's, and upload and delete against a loopback
OSS that checks every signature with oss2's algorithm."""

from __future__ import annotations

from unittest import mock

import pytest
from picbeam.plugins.oss import OSSHost, OSSSettings
from picbeam.testing import run_picbeam, write_host
from vendor_cases import upload_then_delete, wrong_secret_line, year_month

KEY_ID, SECRET = "LTAI5tPicbeamTest00000", "oss-secret-key-9876"
DATE = "Wed, 01 Dec 2026 08:00:00 GMT"


@pytest.mark.parametrize(
    ("method", "key", "headers", "token"),
    [
        ("PUT", "2026/12/a.png", {"Content-Type": "image/png"}, ""),
        ("PUT", "中文/x (1)+y.jpg", {"Content-Type": "image/jpeg", "x-oss-object-acl": "public-read"}, "sts-token"),
        ("DELETE", "a.png", {}, ""),
    ],
)
def test_signature_is_the_sdks(method, key, headers, token):
    import oss2
    from oss2 import auth as oss_auth

    host = OSSHost("t", OSSSettings(bucket="pics", region="cn-hangzhou", access_key_id=KEY_ID,
                                    access_key_secret=SECRET, security_token=token))  # fmt: skip
    url = host.object_url(key)
    assert url.startswith("https://pics.oss-cn-hangzhou.aliyuncs.com/")
    ours = host.sign(method, url, dict(headers), date=DATE)
    request = oss2.http.Request(method, url, headers=dict(headers))
    sdk = oss2.StsAuth(KEY_ID, SECRET, token) if token else oss2.Auth(KEY_ID, SECRET)
    with mock.patch.object(oss_auth.utils, "http_date", lambda *a: DATE):
        (sdk._sign_request if not token else sdk._StsAuth__auth._sign_request)(request, "pics", key)
    assert ours["Authorization"] == request.headers["authorization"]


def fields(server, **more):
    return {"extends": "oss", "bucket": "pics", "region": "oss-cn-hangzhou", "endpoint": server.url, **more}


def test_upload_and_delete(oss_server, hosts_dir, images):
    [path] = images(1)
    env = {"OSS_ACCESS_KEY_ID": KEY_ID, "OSS_ACCESS_KEY_SECRET": SECRET}
    url = upload_then_delete(
        oss_server, hosts_dir, path, fields(oss_server, path="img/{year}/{month}/{name}{ext}", acl="public-read"),
        env, f"img/{year_month()}/img0000.png",
    )  # fmt: skip
    assert url == f"{oss_server.url}/img/{year_month()}/img0000.png"


def test_custom_domain_and_wrong_secret(oss_server, hosts_dir, images):
    [path] = images(1)
    env = {"OSS_ACCESS_KEY_ID": KEY_ID, "OSS_ACCESS_KEY_SECRET": "not-the-secret-1234"}
    line = wrong_secret_line(hosts_dir, path, fields(oss_server), env)
    assert "Aliyun OSS SignatureDoesNotMatch" in line and "check access_key_secret (OSS_ACCESS_KEY_SECRET)" in line
    template = "https://img.example.com/{path}?x-oss-process=style/small"
    write_host(hosts_dir, "cdn", **fields(oss_server, url_template=template, path="{name}{ext}"))
    done = run_picbeam("upload", path, "--host", "cdn", env={**env, "OSS_ACCESS_KEY_SECRET": SECRET})
    assert done.lines == ["https://img.example.com/img0000.png?x-oss-process=style/small"], done.stderr
