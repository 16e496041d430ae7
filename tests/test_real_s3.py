"""The s3 host against rclone's S3 server, which checks SigV4 signatures (see tests/real_servers.py)."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import aiohttp
import picbeam
import pytest
from picbeam.errors import AlreadyGone, ConfigError
from picbeam.samples import png
from picbeam.testing import write_host
from real_servers import rclone_s3, started
from storage_servers import failure_line, prepared


@pytest.fixture(scope="module")
def server():
    yield from started(rclone_s3)


def s3(hosts_dir, server, monkeypatch, name="pics", **fields):
    """A host file as a user writes one for a self-hosted store: its own variable names, no path_style."""
    fields = {
        "extends": "s3",
        "endpoint": server.endpoint,
        "bucket": server.bucket,
        "access_key_id": "${STORE_KEY}",
        "secret_access_key": "${STORE_SECRET}",
        **fields,
    }
    write_host(hosts_dir, name, **fields)
    monkeypatch.setenv("STORE_KEY", server.access_key)
    monkeypatch.setenv("STORE_SECRET", server.secret_key)


@pytest.mark.parametrize("address", ["127.0.0.1", "localhost"])
def test_ip_and_single_label_endpoints_are_path_style_without_being_told(
    server, hosts_dir, tmp_path, monkeypatch, address
):
    port = server.endpoint.rsplit(":", 1)[1]
    s3(hosts_dir, server, monkeypatch, endpoint=f"http://{address}:{port}", path=f"{address}/a b/ü/{{name}}{{ext}}")
    image = tmp_path / "été.png"
    image.write_bytes(png(4, 4, seed=21))
    [result] = picbeam.upload([image], host="pics", ledger=False, retries=0)
    assert result.ok, result.error
    key = f"{address}/a b/ü/été.png"
    assert (server.root / key).read_bytes() == image.read_bytes()
    assert result.url == f"http://{address}:{port}/{server.bucket}/{quote(key)}"


def test_a_big_file_in_parts_delete_and_delete_when_already_gone(server, hosts_dir, tmp_path, monkeypatch):
    s3(hosts_dir, server, monkeypatch, part_size=5 * 1024 * 1024, path="big/{name}{ext}")
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (11 * 1024 * 4))  # 11 MiB: three parts
    [result] = picbeam.upload([big], host="pics", ledger=False)
    assert result.ok, result.error
    stored = server.root / "big" / "big.bin"
    assert stored.read_bytes() == big.read_bytes()
    record = {"url": result.url, "answer": result.answer, "endpoint": result.endpoint}
    asyncio.run(call(prepared("pics").delete, record))
    assert not stored.exists()
    with pytest.raises(AlreadyGone, match="already gone"):
        asyncio.run(call(prepared("pics").delete, record))


def test_a_wrong_secret_names_the_variable_the_host_file_uses(server, hosts_dir, images, monkeypatch):
    [path] = images(1)
    s3(hosts_dir, server, monkeypatch)
    monkeypatch.setenv("STORE_SECRET", "wrong-secret-value")
    line = failure_line(path, "pics", ("wrong-secret-value", server.secret_key))
    assert "SignatureDoesNotMatch" in line and "field 'secret_access_key' (STORE_SECRET)" in line, line
    assert "AWS_SECRET_ACCESS_KEY" not in line


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"endpoint": "127.0.0.1:9000"},
            "field 'endpoint' must be a URL starting with https:// or http:// (like http://127.0.0.1:9000), "
            "not '127.0.0.1:9000'",
        ),
        ({"endpoint": "http://127.0.0.1:9000", "path_style": False}, "127.0.0.1 is an IP address"),
    ],
)
def test_a_bad_endpoint_is_one_config_line_when_the_host_loads(hosts_dir, images, fields, expected):
    [path] = images(1)
    write_host(hosts_dir, "bad", extends="s3", bucket="b", **fields)
    with pytest.raises(ConfigError) as caught:
        picbeam.upload([path], host="bad")
    message = str(caught.value)
    assert message.startswith(f"{hosts_dir / 'bad.toml'}: host 'bad': ") and expected in message, message
    assert "\n" not in message


async def call(method, *args):
    async with aiohttp.ClientSession() as session:
        return await method(*args, session)
