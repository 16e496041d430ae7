"""`picbeam hosts import` of Qexo's export file: every provider maps to a host that loads, the S3 one
uploads to moto as Qexo would, and the remote API's delete_url becomes a working `picbeam delete`."""

from __future__ import annotations

import json
import time

import pytest
from picbeam.testing import Reply, run_picbeam
from storage_servers import BUCKET

PROVIDERS = {
    "S3协议": {"key_id": "AKIAQEXO", "access_key": "qexo-s3-secret", "bucket": BUCKET, "endpoint_url": "",
               "region_name": "us-east-1", "path": "qexo/{YEAR}/{filename}.{extName}",
               "prev_url": "https://cdn.example/qexo/{YEAR}/{filename}.{extName}"},
    "Github": {"token": "ghp_qexo", "repo": "me/pics", "branch": "main", "path": "img/{md5}.{extName}",
               "url": "https://cdn.example/{md5}.{extName}"},
    "FTP协议": {"host": "ftp.example", "port": "2121", "user": "me", "password": "qexo-ftp-pw",
                "path": "/www/{YEAR}/{filename}.{extName}", "prev_url": "https://www.example/{YEAR}/{filename}.{extName}"},
    "阿里云OSS": {"access_id": "LTAIqexo", "access_key": "qexo-oss", "bucket": "pics",
                 "endpoint_url": "https://oss-cn-shanghai.aliyuncs.com", "path": "{YEAR}/{md5}.{extName}",
                 "prev_url": "https://img.example/{YEAR}/{md5}.{extName}"},
    "又拍云-云储存": {"service": "pics", "username": "op", "password": "qexo-up", "path": "{md5}.{extName}",
                  "prev_url": "https://up.example/{md5}.{extName}"},
    "DogeCloudOss": {"access_key": "dak", "secret_key": "dsk", "bucket": "pics", "endpoint_url": "https://x",
                     "path": "{md5}.{extName}", "prev_url": "https://doge.example/{md5}.{extName}"},
    "CFImgBed": {"api": "https://bed.example/upload", "post_params": "file", "json_path": "0.src",
                 "api_key": "imgbed_x", "custom_url": "https://bed.example", "delete_url":
                 "https://bed.example/api/manage/delete", "upload_folder": "blog", "upload_name_type": "origin"},
}  # fmt: skip
KINDS = {"S3协议": "s3", "Github": "github", "FTP协议": "ftp", "阿里云OSS": "oss", "又拍云-云储存": "upyun",
         "DogeCloudOss": "dogecloud", "CFImgBed": "cfimgbed"}  # fmt: skip


def export_file(tmp_path, kind, params):
    """Qexo's export: settings as {name, content}, IMG_HOST's content JSON text."""
    document = {"settings": [{"name": "IMG_TYPE", "content": kind},
                             {"name": "IMG_HOST", "content": json.dumps(params, ensure_ascii=False)},
                             {"name": "SITE_NAME", "content": "blog"}], "images": [], "posts": []}  # fmt: skip
    path = tmp_path / "qexo-export.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", PROVIDERS)
def test_every_provider_maps(kind, tmp_path):
    """In process (the command's own path is tested below): the host file's fields configure the host."""
    from picbeam.config import Config
    from picbeam.importers import Imported, read
    from picbeam.loader import load_plugins

    [result] = read(export_file(tmp_path, kind, PROVIDERS[kind]))
    assert isinstance(result, Imported) and result.fields["extends"] == KINDS[kind], result
    secrets = [v for k, v in PROVIDERS[kind].items() if k in ("access_key", "password", "token", "api_key")]
    assert not [v for v in secrets if v in json.dumps(result.fields, ensure_ascii=False)]
    registry = load_plugins().hosts(Config.load())
    fields = {k: v for k, v in result.fields.items() if k != "extends"}
    registry.get(KINDS[kind]).configured(result.name, fields, source="qexo-export.json")


def test_s3_provider_uploads_where_qexo_would(tmp_path, hosts_dir, images, s3_server):
    run_picbeam("hosts", "import", export_file(tmp_path, "S3协议", PROVIDERS["S3协议"]), "--dir", hosts_dir)
    key, secret = s3_server.writer
    [path] = images(1)
    env = {"QEXO_S3_KEY_ID": key, "QEXO_S3_ACCESS_KEY": secret}
    done = run_picbeam("upload", path, "--host", "qexo-s3", "--set", f"endpoint={s3_server.endpoint}",
                       "--set", "path_style=true", env=env)  # fmt: skip
    year = time.strftime("%Y")
    assert done.lines == [f"https://cdn.example/qexo/{year}/img0000.png"], done.stderr
    got = s3_server.client().get_object(Bucket=BUCKET, Key=f"qexo/{year}/img0000.png")["Body"].read()
    assert got == path.read_bytes()


def test_remote_api_delete_url_is_a_working_delete(tmp_path, hosts_dir, images, fake_host):
    params = {"api": fake_host.endpoint("/api/upload"), "post_params": "file", "json_path": "data.url",
              "custom_header": "", "custom_body": "", "custom_url": "", "delete_url": "data.delete"}  # fmt: skip
    source = export_file(tmp_path, "custom", params)
    assert run_picbeam("hosts", "import", source, "--dir", hosts_dir, "--name", "qx").returncode == 0
    fake_host.script([Reply(json={"data": {"url": "https://i.example/a.png", "delete": fake_host.endpoint("/del/k1")}}),
                      Reply(text="deleted")])  # fmt: skip
    [path] = images(1)
    done = run_picbeam("upload", path, "--host", "qx")
    assert done.lines == ["https://i.example/a.png"], done.stderr
    deleted = run_picbeam("delete", "https://i.example/a.png")
    assert deleted.returncode == 0, deleted.stderr
    assert (fake_host.requests[1].method, fake_host.requests[1].path) == ("GET", "/del/k1")


def test_unknown_provider_is_refused_by_name(tmp_path, hosts_dir):
    done = run_picbeam("hosts", "import", export_file(tmp_path, "七牛云", {"x": 1}), "--dir", hosts_dir)
    assert (
        done.returncode == 2 and "Qexo's image host here is '七牛云', which picbeam has no mapping for" in done.stderr
    )
