"""The qiniu host (Qiniu Kodo): its upload token and management signature against the qiniu SDK's, and
upload and delete against a loopback Kodo that checks both with the SDK's algorithm."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

from picbeam.plugins.qiniu import QiniuHost, QiniuSettings, encoded_entry, management_headers, upload_token
from picbeam.testing import run_picbeam, write_host
from vendor_cases import upload_then_delete, wrong_secret_line, year_month

ACCESS, SECRET = "qiniu-access-key-0000", "qiniu-secret-key-9876"


def test_token_and_signature_are_the_sdks():
    import qiniu

    with mock.patch("time.time", return_value=1_700_000_000):
        sdk_token = qiniu.Auth(ACCESS, SECRET).upload_token("pics", "2026/a b.png", 3600)
    ours = upload_token(ACCESS, SECRET, "pics:2026/a b.png", deadline=1_700_003_600)
    assert ours == sdk_token
    assert encoded_entry("pics", "a/b.png") == qiniu.entry("pics", "a/b.png")

    now = datetime(2026, 12, 1, 8, 0, 0, tzinfo=UTC)
    url = f"https://rs-z0.qiniuapi.com/delete/{qiniu.entry('pics', 'a/b.png')}"
    headers = management_headers(ACCESS, SECRET, "POST", url, now=now)
    sdk = qiniu.QiniuMacAuth(ACCESS, SECRET).token_of_request(
        "POST", "rs-z0.qiniuapi.com", url, f"X-Qiniu-Date: {headers['X-Qiniu-Date']}",
        "application/x-www-form-urlencoded", None,
    )  # fmt: skip
    assert headers["Authorization"] == f"Qiniu {sdk}"
    host = QiniuHost("t", QiniuSettings(bucket="pics", region="z2", url_prefix="https://i.example/"))
    assert (host.up_host, host.rs_host) == ("https://upload-z2.qiniup.com", "https://rs-z2.qiniuapi.com")


def fields(server, **more):
    return {"extends": "qiniu", "bucket": "pics", "region": "z0", "up_host": server.url, "rs_host": server.url,
            "url_prefix": "https://img.example.com/", **more}  # fmt: skip


def test_upload_and_delete(qiniu_server, hosts_dir, images):
    [path] = images(1)
    env = {"QINIU_ACCESS_KEY": ACCESS, "QINIU_SECRET_KEY": SECRET}
    url = upload_then_delete(
        qiniu_server, hosts_dir, path, fields(qiniu_server, path="blog/{year}/{month}/{name}{ext}"), env,
        f"blog/{year_month()}/img0000.png",
    )  # fmt: skip
    assert url == f"https://img.example.com/blog/{year_month()}/img0000.png"


def test_wrong_secret_and_missing_domain(qiniu_server, hosts_dir, images):
    [path] = images(1)
    env = {"QINIU_ACCESS_KEY": ACCESS, "QINIU_SECRET_KEY": "not-the-secret-123"}
    line = wrong_secret_line(hosts_dir, path, fields(qiniu_server), env)
    assert "HTTP 401: Qiniu bad token" in line and "check access_key and secret_key" in line
    write_host(hosts_dir, "nodomain", extends="qiniu", bucket="pics")
    done = run_picbeam("upload", path, "--host", "nodomain", env=env)
    assert done.returncode == 2 and "field 'url_prefix' is required" in done.stderr
