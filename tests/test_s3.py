"""The s3 host against moto's S3 server with request authentication on."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import picbeam
from picbeam.testing import run_picbeam, write_host
from storage_servers import BUCKET, failure_line, prepared, shows_masked, upload_batch


def s3_host(hosts_dir, s3_server, name="pics", **fields):
    fields = {"extends": "s3", "endpoint": s3_server.endpoint, "bucket": BUCKET, "path_style": True, **fields}
    write_host(hosts_dir, name, **fields)


def test_batch_of_100_arrives_byte_identical_at_templated_keys(s3_server, hosts_dir, images):
    s3_host(hosts_dir, s3_server, path="batch/{year}/{name}-{sha256:8}{ext}", cache_control="max-age=60")
    paths, records, elapsed = upload_batch(images, "pics", s3_server.env())
    client = s3_server.client()
    for record, path in zip(records, paths, strict=True):
        key = f"batch/{time.strftime('%Y')}/{path.stem}-{record['sha256'][:8]}.png"
        assert record["url"] == f"{s3_server.endpoint}/{BUCKET}/{key}"
        got = client.get_object(Bucket=BUCKET, Key=key)
        assert got["Body"].read() == path.read_bytes()
        assert got["ContentType"] == "image/png" and got["CacheControl"] == "max-age=60"
    print(f"s3: 100 images in {elapsed:.1f}s")


def test_errors_are_one_clear_line_and_never_show_the_secret(s3_server, hosts_dir, images):
    [path] = images(1)
    key, secret = s3_server.writer
    cases = {
        "wrong-secret": ({"access_key_id": key, "secret_access_key": "wrong-secret-value"}, "SignatureDoesNotMatch"),
        "unknown-key": ({"access_key_id": "AKIANOTAKEY000000000", "secret_access_key": secret}, "InvalidAccessKeyId"),
        "no-permission": (
            dict(zip(("access_key_id", "secret_access_key"), s3_server.reader, strict=True)),
            "AccessDenied",
        ),
        "no-bucket": ({"access_key_id": key, "secret_access_key": secret, "bucket": "missing"}, "does not exist"),
    }
    for name, (fields, expected) in cases.items():
        s3_host(hosts_dir, s3_server, name=name, **fields)
        line = failure_line(path, name, (secret, "wrong-secret-value", s3_server.reader[1]), cli=name == "wrong-secret")
        assert expected in line, (name, line)
    assert shows_masked("wrong-secret", "secret_access_key", "wrong-secret-value")


def test_missing_environment_credentials_name_the_variable(s3_server, hosts_dir, images):
    s3_host(hosts_dir, s3_server)
    [path] = images(1)
    done = run_picbeam("upload", path, "--host", "pics", env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""})
    assert done.returncode == 2
    assert "AWS_ACCESS_KEY_ID is not set" in done.stderr and len(done.stderr.splitlines()) == 1


def test_multipart_upload_of_a_large_file_and_delete(s3_server, hosts_dir, tmp_path, monkeypatch):
    s3_host(hosts_dir, s3_server, part_size=5 * 1024 * 1024, acl="public-read", path="big/{sha256:16}{ext}")
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (11 * 1024 * 4))  # 11 MiB: three parts
    [result] = picbeam.upload([big], host="pics")
    assert result.ok, result.error
    key = result.answer["path"]
    got = s3_server.client().get_object(Bucket=BUCKET, Key=key)
    assert got["Body"].read() == big.read_bytes()
    assert got["ETag"].strip('"').endswith("-3")  # S3's mark of an object put together from 3 parts

    record = {"url": result.url, "answer": result.answer, "endpoint": result.endpoint}
    asyncio.run(_call(prepared("pics").delete, record))
    assert s3_server.client().list_objects_v2(Bucket=BUCKET, Prefix=key).get("KeyCount") == 0


def test_virtual_hosted_addressing(s3_server, hosts_dir, images, monkeypatch):
    """bucket.<endpoint host>/key: the name *.localhost resolves to 127.0.0.1 here, as browsers and
    systemd-resolved do."""
    import socket

    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        return real("127.0.0.1" if str(host).endswith(".localhost") else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    port = s3_server.endpoint.rsplit(":", 1)[1]
    s3_host(hosts_dir, s3_server, endpoint=f"http://localhost:{port}", path_style=False, path="vh/{name}{ext}")
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    [path] = images(1)
    [result] = picbeam.upload([path], host="pics")
    assert result.ok, result.error
    assert result.url == f"http://{BUCKET}.localhost:{port}/vh/img0000.png"
    assert s3_server.client().get_object(Bucket=BUCKET, Key="vh/img0000.png")["Body"].read() == path.read_bytes()


def test_url_template_and_unknown_field(s3_server, hosts_dir, images):
    s3_host(hosts_dir, s3_server, url_template="https://cdn.example/{bucket}/{path}", path="t/{name}{ext}")
    [path] = images(1)
    done = run_picbeam("upload", path, "--host", "pics", env=s3_server.env())
    assert done.lines == [f"https://cdn.example/{BUCKET}/t/img0000.png"], done.stderr
    write_host(hosts_dir, "typo", extends="s3", bucket="b", acces_key_id="x")
    done = run_picbeam("upload", path, "--host", "typo")
    assert done.returncode == 2 and "typo.toml: unknown field 'acces_key_id'" in done.stderr


async def _call(method, *args):
    async with aiohttp.ClientSession() as session:
        return await method(*args, session)


def test_a_processed_photo_is_stored(s3_server, hosts_dir, tmp_path):
    """The stripped copy is what is sent (its payload hash, which AWS checks and moto does not, is the copy's)."""
    from pictures import jpeg_with_exif

    s3_host(hosts_dir, s3_server, path="photos/{name}{ext}")
    photo = tmp_path / "holiday.jpg"
    photo.write_bytes(jpeg_with_exif())
    done = run_picbeam("upload", photo, "--host", "pics", env=s3_server.env())
    assert done.returncode == 0, done.stderr
    stored = s3_server.client().get_object(Bucket=BUCKET, Key="photos/holiday.jpg")["Body"].read()
    assert len(stored) < len(photo.read_bytes())  # the stripped copy was sent, and S3 accepted its signature
