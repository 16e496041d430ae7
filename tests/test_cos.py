"""The cos host (Tencent COS): its signature against cos-python-sdk-v5's, and upload and delete against a
loopback COS that checks every signature with the SDK's algorithm."""

from __future__ import annotations

from types import SimpleNamespace
from unittest import mock

import pytest
from picbeam.plugins.cos import COSHost, COSSettings
from picbeam.testing import run_picbeam, write_host
from vendor_cases import upload_then_delete, wrong_secret_line, year_month

SECRET_ID, SECRET_KEY = "AKIDpicbeamtest0000000000000000000", "cos-secret-key-9876"


@pytest.mark.parametrize(
    ("key", "headers"),
    [
        ("2026/12/a.png", {"Content-Type": "image/png", "Content-Length": "42"}),
        (
            "中文 目录/x (1)+y.jpg",
            {"Content-Type": "image/jpeg", "Cache-Control": "max-age=60", "x-cos-acl": "public-read"},
        ),
    ],
)
def test_signature_is_the_sdks(key, headers):
    from qcloud_cos import CosConfig, cos_auth

    host = COSHost("t", COSSettings(bucket="pics-1250000000", region="ap-guangzhou", secret_id=SECRET_ID,
                                    secret_key=SECRET_KEY))  # fmt: skip
    url = host.object_url(key)
    ours = host.sign("PUT", url, dict(headers), now=1_700_000_000)
    conf = CosConfig(Region="ap-guangzhou", SecretId=SECRET_ID, SecretKey=SECRET_KEY)
    request = SimpleNamespace(method="PUT", url=url, headers=dict(headers))
    sdk = cos_auth.CosS3Auth(conf, key=key, params={}, expire=900)
    with mock.patch.object(cos_auth, "time", SimpleNamespace(time=lambda: 1_700_000_000)):
        sdk(request)
    assert ours["Authorization"] == request.headers["Authorization"]
    assert url.startswith("https://pics-1250000000.cos.ap-guangzhou.myqcloud.com/")


def fields(server, **more):
    return {"extends": "cos", "bucket": "pics", "app_id": "1250000000", "region": "ap-guangzhou",
            "endpoint": server.url, **more}  # fmt: skip


def test_upload_and_delete(cos_server, hosts_dir, images):
    [path] = images(1)
    env = {"COS_SECRET_ID": SECRET_ID, "COS_SECRET_KEY": SECRET_KEY}
    url = upload_then_delete(
        cos_server, hosts_dir, path, fields(cos_server, path="blog/{year}/{month}/{name}{ext}"), env,
        f"blog/{year_month()}/img0000.png",
    )  # fmt: skip
    assert url == f"{cos_server.url}/blog/{year_month()}/img0000.png"


def test_custom_domain_and_wrong_secret(cos_server, hosts_dir, images):
    [path] = images(1)
    env = {"COS_SECRET_ID": SECRET_ID, "COS_SECRET_KEY": "not-the-key-1234"}
    line = wrong_secret_line(hosts_dir, path, fields(cos_server), env)
    assert "SignatureDoesNotMatch" in line and "check secret_key (COS_SECRET_KEY)" in line
    write_host(hosts_dir, "cdn", **fields(cos_server, url_prefix="https://img.example.com/", path="{name}{ext}"))
    done = run_picbeam("upload", path, "--host", "cdn", env={**env, "COS_SECRET_KEY": SECRET_KEY})
    assert done.lines == ["https://img.example.com/img0000.png"], done.stderr


def test_default_address_and_bad_region(hosts_dir):
    host = COSHost("t", COSSettings(bucket="pics-1250000000", region="ap-shanghai"))
    assert host.object_url("a b.png") == "https://pics-1250000000.cos.ap-shanghai.myqcloud.com/a%20b.png"
    write_host(hosts_dir, "bad", extends="cos", bucket="pics-1", region="oss-cn-hangzhou")
    done = run_picbeam("hosts", "show", "bad")
    assert done.returncode == 2 and "'oss-cn-hangzhou' is not a Tencent COS region" in done.stderr
