"""The upyun host: its REST signature against the upyun SDK's, and upload and delete against a loopback
Upyun that checks every signature with the SDK's algorithm."""

from __future__ import annotations

import hashlib

import pytest
from picbeam.plugins.upyun import UpyunHost, UpyunSettings
from picbeam.testing import run_picbeam, write_host
from vendor_cases import upload_then_delete, wrong_secret_line, year_month

OPERATOR, PASSWORD = "picbeam-op", "upyun-password-9876"
DATE = "Wed, 01 Dec 2026 08:00:00 GMT"


@pytest.mark.parametrize(("method", "key"), [("PUT", "2026/12/a.png"), ("DELETE", "中文/x (1)+y~z.jpg")])
def test_signature_is_the_sdks(method, key):
    from urllib.parse import quote

    from upyun.modules.sign import make_signature

    host = UpyunHost("t", UpyunSettings(bucket="pics", operator=OPERATOR, password=PASSWORD))
    url = host.object_url(key)
    assert url.startswith("https://v0.api.upyun.com/pics/")
    ours = host.sign(method, url, {}, date=DATE)
    # The SDK's own URI: '/service/key' quoted with '~/' kept (upyun.rest.UpYunRest.__do_http_request).
    sdk = make_signature(username=OPERATOR, password=hashlib.md5(PASSWORD.encode()).hexdigest(), method=method,
                         uri=quote(f"/pics/{key}".encode(), safe="~/"), date=DATE)  # fmt: skip
    assert ours["Authorization"] == sdk and ours["Date"] == DATE


def fields(server, **more):
    return {"extends": "upyun", "bucket": "pics", "operator": OPERATOR, "endpoint": server.url, **more}


def test_upload_and_delete(upyun_server, hosts_dir, images):
    [path] = images(1)
    env = {"UPYUN_PASSWORD": PASSWORD}
    url = upload_then_delete(
        upyun_server, hosts_dir, path,
        fields(upyun_server, path="{year}/{month}/{name}{ext}", url_prefix="https://cdn.example.com/"), env,
        f"{year_month()}/img0000.png",
    )  # fmt: skip
    assert url == f"https://cdn.example.com/{year_month()}/img0000.png"


def test_wrong_password_and_default_url(upyun_server, hosts_dir, images):
    [path] = images(1)
    line = wrong_secret_line(hosts_dir, path, fields(upyun_server), {"UPYUN_PASSWORD": "not-the-password"})
    assert "HTTP 401: Upyun 40100005: sign error" in line and "check 'operator' and 'password'" in line
    write_host(hosts_dir, "plain", **fields(upyun_server, path="{name}{ext}"))
    done = run_picbeam("upload", path, "--host", "plain", env={"UPYUN_PASSWORD": PASSWORD})
    assert done.lines == ["http://pics.test.upcdn.net/img0000.png"], done.stderr
