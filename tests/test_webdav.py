"""The webdav host against wsgidav on loopback, with Basic and with Digest authentication."""

from __future__ import annotations

import asyncio
import time
import urllib.request

import aiohttp
import picbeam
from picbeam.testing import Reply, run_picbeam, write_host
from storage_servers import failure_line, prepared, shows_masked, upload_batch


def dav_host(hosts_dir, server, name="dav", share="dav", **fields):
    fields = {
        "extends": "webdav",
        "endpoint": f"{server.url}/{share}/blog",
        "username": server.username,
        "password": "${DAV_PASSWORD}",
        **fields,
    }
    write_host(hosts_dir, name, **fields)


def test_batch_of_100_arrives_byte_identical_in_new_folders(webdav_server, hosts_dir, images):
    (webdav_server.root / "blog").mkdir(exist_ok=True)
    dav_host(hosts_dir, webdav_server, path="img/{year}/{month}/{name}-{sha256:8}{ext}")
    paths, records, elapsed = upload_batch(images, "dav", webdav_server.env())
    folder = f"img/{time.strftime('%Y')}/{time.strftime('%m')}"
    for record, path in zip(records, paths, strict=True):
        name = f"{path.stem}-{record['sha256'][:8]}.png"
        assert (webdav_server.root / "blog" / folder / name).read_bytes() == path.read_bytes()
        assert record["url"] == f"{webdav_server.url}/dav/blog/{folder}/{name}"
    # The URL serves the file (to the account).
    url = records[0]["url"]
    with urllib.request.build_opener(_auth_handler(webdav_server, url)).open(url) as answer:
        assert answer.read() == paths[0].read_bytes()
    print(f"webdav: 100 images in {elapsed:.1f}s")


def test_wrong_password_missing_collection_and_no_permission(webdav_server, hosts_dir, images):
    [path] = images(1)
    (webdav_server.root / "blog").mkdir(exist_ok=True)
    dav_host(hosts_dir, webdav_server, name="badpw", password="not-the-password")
    dav_host(hosts_dir, webdav_server, name="nocoll", endpoint=f"{webdav_server.url}/dav/absent/deeper")
    dav_host(hosts_dir, webdav_server, name="readonly", share="ro")
    expected = {
        "badpw": "HTTP 401",
        "nocoll": "HTTP 404",
        "readonly": "HTTP 403",
    }
    for name, status in expected.items():
        line = failure_line(
            path, name, ("not-the-password", webdav_server.password), webdav_server.env(), cli=name == "badpw"
        )
        assert status in line and f": {name}: " in line, line
    assert shows_masked("badpw", "password", "not-the-password")


def test_delete_removes_the_file(webdav_server, hosts_dir, images, monkeypatch):
    monkeypatch.setenv("DAV_PASSWORD", webdav_server.password)
    (webdav_server.root / "blog").mkdir(exist_ok=True)  # its own collection: it may run first (random order)
    dav_host(hosts_dir, webdav_server, path="del/{name}{ext}")
    [path] = images(1)
    [result] = picbeam.upload([path], host="dav")
    assert result.ok, result.error
    stored = webdav_server.root / "blog" / "del" / "img0000.png"
    assert stored.read_bytes() == path.read_bytes()
    asyncio.run(
        _call(prepared("dav").delete, {"url": result.url, "answer": result.answer, "endpoint": result.endpoint})
    )
    assert not stored.exists()


def test_full_storage_is_one_clear_line(fake_host, hosts_dir, images):
    fake_host.respond_with(lambda request, host: Reply(status=507 if request.method == "PUT" else 201))
    write_host(hosts_dir, "full", extends="webdav", endpoint=fake_host.endpoint("/dav"))
    [path] = images(1)
    done = run_picbeam("upload", path, "--host", "full", "--retries", "0")
    assert done.returncode == 1
    assert "HTTP 507" in done.stderr and "full or the account is over its quota" in done.stderr
    assert [r.method for r in fake_host.requests] == ["MKCOL", "MKCOL", "PUT"]  # {year}/{month}/ then the file


def _auth_handler(server, url):
    manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    manager.add_password(None, url, server.username, server.password)
    if "digest" in str(server.root):
        return urllib.request.HTTPDigestAuthHandler(manager)
    return urllib.request.HTTPBasicAuthHandler(manager)


async def _call(method, *args):
    async with aiohttp.ClientSession() as session:
        return await method(*args, session)
