"""The webdav host against Apache mod_dav (Digest, public read), nginx dav + dav_ext (Basic), lighttpd
mod_webdav (Digest) and rclone serve webdav (Basic), each its own instance (see tests/real_servers.py)."""

from __future__ import annotations

import asyncio
import urllib.request
from urllib.parse import quote

import aiohttp
import picbeam
import pytest
from picbeam.errors import AlreadyGone
from picbeam.samples import png
from picbeam.testing import run_picbeam, write_host
from real_servers import WEB_USER, apache, lighttpd, nginx, rclone_webdav, started
from storage_servers import failure_line, prepared

SERVERS = {
    "apache-digest-public-read": (apache, "digest", True),
    "nginx-basic": (nginx,),
    "lighttpd-digest": (lighttpd, "digest"),
    "rclone-basic": (rclone_webdav,),
}


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request):
    launcher, *args = SERVERS[request.param]
    yield from started(launcher, *args)


def dav(hosts_dir, server, monkeypatch, name="dav", **fields):
    fields = {
        "extends": "webdav",
        "endpoint": server.url,
        "username": server.username,
        "password": "${DAV_PASSWORD}",
        **fields,
    }
    write_host(hosts_dir, name, **fields)
    monkeypatch.setenv("DAV_PASSWORD", server.password)


def read_back(server, url):
    manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    manager.add_password(None, server.url, server.username, server.password)
    auth = urllib.request.HTTPDigestAuthHandler if server.auth == "digest" else urllib.request.HTTPBasicAuthHandler
    with urllib.request.build_opener(auth(manager)).open(url) as answer:
        return answer.read()


def test_nested_folders_odd_names_a_big_file_delete_and_already_gone(server, hosts_dir, tmp_path, monkeypatch):
    """The first 401 may come from MKCOL or PUT (Apache's public read lets PROPFIND through): its scheme
    is the one answered; a PUT challenged first is sent again with a fresh body. URLs are
    percent-encoded and serve the file."""
    dav(hosts_dir, server, monkeypatch, path="n/a b/ü/{name}{ext}")
    image = tmp_path / "été photo.png"
    image.write_bytes(png(4, 4, seed=11))
    [result] = picbeam.upload([image], host="dav", ledger=False)
    assert result.ok, result.error
    [stored] = (server.root / "n" / "a b" / "ü").iterdir()
    assert stored.read_bytes() == image.read_bytes()
    assert result.url == f"{server.url}/{quote('n/a b/ü/' + stored.name)}" and result.url.isascii()
    assert read_back(server, result.url) == image.read_bytes()

    dav(hosts_dir, server, monkeypatch, name="flat", path="{name}{ext}")  # no MKCOL: the PUT is challenged
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (12 * 1024 * 4))  # 12 MiB, streamed from disk
    [result] = picbeam.upload([big], host="flat", ledger=False)
    assert result.ok, result.error
    assert (server.root / "big.bin").read_bytes() == big.read_bytes()

    record = {"url": result.url, "answer": result.answer, "endpoint": result.endpoint}
    host = prepared("flat")
    asyncio.run(call(host.delete, record))
    assert not (server.root / "big.bin").exists()
    with pytest.raises(AlreadyGone, match="already gone"):
        asyncio.run(call(prepared("flat").delete, record))


def test_wrong_password_is_one_401_line(server, hosts_dir, images, monkeypatch):
    [path] = images(1)
    dav(hosts_dir, server, monkeypatch, name="bad", password="not-the-password", path="w/{name}{ext}")
    line = failure_line(path, "bad", ("not-the-password", server.password))
    assert "HTTP 401" in line and "wrong username or password" in line, line


@pytest.mark.parametrize("server", ["apache-digest-public-read"], indirect=True)
def test_the_command_prints_encoded_urls_and_deletes_what_is_already_gone(server, hosts_dir, tmp_path, monkeypatch):
    import shutil

    folder = server.root / "my pics"
    folder.mkdir()
    shutil.chown(folder, WEB_USER, WEB_USER)
    dav(hosts_dir, server, monkeypatch, endpoint=f"{server.url}/my pics", path="cli/{name}{ext}")
    image = tmp_path / "naïve one.png"
    image.write_bytes(png(4, 4, seed=12))
    done = run_picbeam("upload", image, "--host", "dav")
    assert done.returncode == 0, done.stderr
    [url] = done.lines
    assert url == f"{server.url}/my%20pics/cli/na%C3%AFve-one.png", url  # Markdown-safe
    assert read_back(server, url) == image.read_bytes()
    (folder / "cli" / "naïve-one.png").unlink()  # removed by someone else
    done = run_picbeam("delete", url)
    assert done.returncode == 0, done.stderr
    assert done.lines == [f"deleted {url}"] and "already gone, marked deleted" in done.stderr


@pytest.mark.parametrize("server", ["apache-digest-public-read"], indirect=True)
def test_a_stale_nonce_is_answered_with_the_new_challenge(server, hosts_dir, images, monkeypatch):
    """One run, two files more than the nonce's lifetime (1 s here) apart, as `picbeam watch` sends
    them: Apache answers the second with a stale-nonce challenge, which is answered again."""
    import time

    from picbeam.engine import Batch
    from picbeam.inputs import Found

    dav(hosts_dir, server, monkeypatch, path="stale/{name}{ext}")
    paths = images(2)

    def arriving():
        yield Found(paths[0], explicit=True)
        time.sleep(2.5)  # longer than the nonce lives
        yield Found(paths[1], explicit=True)

    results = []
    batch = Batch(prepared("dav"), retries=0, emit=results.append)
    asyncio.run(batch.run(arriving()))
    assert [r.error for r in results] == [None, None]
    assert sorted(p.name for p in (server.root / "stale").iterdir()) == ["img0000.png", "img0001.png"]
    second = [line for line in server.access_log.read_text().splitlines() if "/stale/img0001.png" in line]
    assert second == ["PUT /dav/stale/img0001.png 401", "PUT /dav/stale/img0001.png 201"]  # stale, then answered


async def call(method, *args):
    async with aiohttp.ClientSession() as session:
        return await method(*args, session)
