"""picbeam links: dead image links found (200/404/timeouts), and mended after a host dies."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from blogs import OldHost, hexo_blog
from picbeam.testing import FakeHost, RecordedRequest, Reply, run_picbeam, write_host
from test_migrate import assert_migrated


def answer(request: RecordedRequest, host: FakeHost) -> Reply:
    if request.path.startswith("/gone"):
        return Reply(status=404)
    if request.path.startswith("/slow"):
        return Reply(fault="stall", delay=2)
    if request.path.startswith("/nohead"):
        return Reply(status=405) if request.method == "HEAD" else Reply(status=206, body=b"\x89")
    if request.path.startswith("/moved"):
        return Reply(status=301, headers={"Location": "/ok.png"})
    if request.path.startswith("/broken"):
        return Reply(status=500)
    return Reply(status=200, body=b"\x89PNG")


@pytest.fixture
def web() -> Iterator[FakeHost]:
    with FakeHost(answer) as server:
        yield server


def test_dead_links_are_reported(tmp_path: Path, web: FakeHost) -> None:
    post = tmp_path / "post.md"
    post.write_text(
        f"![ok]({web.url}/ok.png)\n"
        f"![gone]({web.url}/gone.png)\n"
        f"<img src='{web.url}/slow.png'>\n"
        f"![nohead]({web.url}/nohead.png) ![moved]({web.url}/moved.png)\n"
        f"![broken]({web.url}/broken.png) ![gone again]({web.url}/gone.png)\n"
        "```\n![in code](http://127.0.0.1:9/never-checked.png)\n```\n"
        "![local](missing.png)\n"
    )
    result = run_picbeam("links", post, "--timeout", "1")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert f"picbeam: {post}:2: {web.url}/gone.png: HTTP 404" in lines
    assert f"picbeam: {post}:5: {web.url}/gone.png: HTTP 404" in lines
    assert f"picbeam: {post}:5: {web.url}/broken.png: HTTP 500" in lines
    assert f"picbeam: {post}:3: {web.url}/slow.png: no answer within 1 s" in lines
    assert f"picbeam: {post}:9: missing.png: no such file" in lines
    assert not any("ok.png" in line or "nohead" in line or "moved" in line for line in lines[:-1])
    assert "never-checked" not in result.stderr
    assert lines[-1] == "picbeam: 8 image links checked (6 distinct), 5 dead in 1 files"
    # HEAD first; a GET of one byte only where HEAD was refused
    gets = [r for r in web.requests if r.method == "GET" and r.path == "/nohead.png"]
    assert gets and gets[0].headers["Range"] == "bytes=0-0"
    assert not [r for r in web.requests if r.method == "GET" and r.path == "/ok.png" and "Range" not in r.headers]


def test_all_alive_exits_zero(tmp_path: Path, web: FakeHost) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    post = tmp_path / "post.md"
    post.write_text(f"![ok]({web.url}/ok.png) ![a](a.png)\n")
    result = run_picbeam("links", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 image links checked (1 distinct), 0 dead in 1 files" in result.stderr


def test_links_fix_brings_the_blog_back_after_its_host_dies(tmp_path: Path, hosts_dir: Path) -> None:
    blog = tmp_path / "blog"
    with OldHost() as old, FakeHost() as first, FakeHost() as second:
        write_host(hosts_dir, "first", endpoint=first.endpoint(), url_path="data.url")
        write_host(hosts_dir, "second", endpoint=second.endpoint(), url_path="data.url")
        posts, images = hexo_blog(blog, old)
        moved = run_picbeam("migrate", blog, "--host", "first", "--remote")
        assert moved.returncode == 0, moved.stderr
        # the remote images were downloaded to a temporary folder: only a backup of them is left
        backup = tmp_path / "backup"
        backup.mkdir()
        for name in ("remote1", "remote2"):
            (backup / f"copy of {name}.png").write_bytes(images[name])
        old.stop()
        first.stop()  # the host dies

        dead = run_picbeam("links", blog, "--timeout", "5")
        assert dead.returncode == 1
        assert re.search(rf"hello-world\.md:8: {re.escape(first.url)}/files/\d+/logo\.png: cannot connect", dead.stderr)

        fixed = run_picbeam("links", blog, "--fix", "--host", "second", "--search", backup, "--timeout", "5")
        assert fixed.returncode == 0, fixed.stderr
        assert_migrated(posts, second)
        assert len(second.accepted()) == len(images)  # every image, once

        alive = run_picbeam("links", blog)
        assert alive.returncode == 0, alive.stderr


def test_links_fix_from_a_mirror(tmp_path: Path, hosts_dir: Path, images) -> None:
    with FakeHost() as a, FakeHost() as b, FakeHost() as c:
        for name, host in (("a", a), ("b", b), ("c", c)):
            write_host(hosts_dir, name, endpoint=host.endpoint(), url_path="data.url")
        image = images(1)[0]
        up = run_picbeam("upload", image, "--host", "a", "--host", "b")
        assert up.returncode == 0, up.stderr
        data = image.read_bytes()
        image.unlink()  # the local copy is gone: only b's mirror has it
        post = tmp_path / "post.md"
        post.write_text(f"Photo: ![p]({up.lines[0]})\n", newline="\r\n")
        a.stop()
        result = run_picbeam("links", post, "--fix", "--host", "c", "--timeout", "5")
        assert result.returncode == 0, result.stderr
        assert re.fullmatch(rf"Photo: !\[p\]\({re.escape(c.url)}/files/\d+/[^)]+\)\r\n", post.read_bytes().decode())
        assert c.requests[0].content == data


def test_links_fix_without_a_copy_reports_it(tmp_path: Path, hosts_dir: Path, web: FakeHost) -> None:
    with FakeHost() as c:
        write_host(hosts_dir, "c", endpoint=c.endpoint(), url_path="data.url")
        post = tmp_path / "post.md"
        post.write_text(f"![g]({web.url}/gone.png)\n")
        result = run_picbeam("links", post, "--fix", "--host", "c")
        assert result.returncode == 1
        assert f"{post}:1: {web.url}/gone.png: HTTP 404; no copy: the ledger has no upload with this URL" in (
            result.stderr
        )
        assert post.read_text() == f"![g]({web.url}/gone.png)\n" and not c.requests


def test_links_fix_dry_run_changes_nothing_and_backup_keeps_the_old_file(
    tmp_path: Path, hosts_dir: Path, images
) -> None:
    with FakeHost() as a, FakeHost() as b:
        write_host(hosts_dir, "a", endpoint=a.endpoint(), url_path="data.url")
        write_host(hosts_dir, "b", endpoint=b.endpoint(), url_path="data.url")
        image = images(1)[0]
        url = run_picbeam("upload", image, "--host", "a").lines[0]
        post = tmp_path / "post.md"
        post.write_text(f"![p]({url})\n")
        a.stop()
        dry = run_picbeam("links", post, "--fix", "--host", "b", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert f"-![p]({url})" in dry.stdout and "+![p](picbeam-dry-run:b/" in dry.stdout
        assert post.read_text() == f"![p]({url})\n" and not b.requests
        fixed = run_picbeam("links", post, "--fix", "--host", "b", "--backup")
        assert fixed.returncode == 0, fixed.stderr
        assert post.read_text().startswith(f"![p]({b.url}/files/")
        assert (tmp_path / "post.md.orig").read_text() == f"![p]({url})\n"
        assert "1 re-hosted" in fixed.stderr


def test_links_flags_need_fix(tmp_path: Path) -> None:
    (tmp_path / "post.md").write_text("text\n")
    result = run_picbeam("links", tmp_path, "--search", tmp_path)
    assert result.returncode == 2 and "go with --fix" in result.stderr


def test_requests_to_one_domain_are_bounded(tmp_path: Path) -> None:
    import asyncio
    import threading

    from aiohttp import web as aioweb

    state = {"now": 0, "most": 0}

    async def slow(request: aioweb.Request) -> aioweb.Response:
        state["now"] += 1
        state["most"] = max(state["most"], state["now"])
        await asyncio.sleep(0.2)
        state["now"] -= 1
        return aioweb.Response(status=200)

    loop = asyncio.new_event_loop()
    app = aioweb.Application()
    app.router.add_route("*", "/{name}", slow)
    runner = aioweb.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(aioweb.TCPSite(runner, "127.0.0.1", 0).start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        post = tmp_path / "post.md"
        post.write_text("".join(f"![{n}](http://127.0.0.1:{port}/{n}.png)\n\n" for n in range(12)))
        result = run_picbeam("links", post, "--per-domain", "3")
        assert result.returncode == 0, result.stderr
        assert state["most"] == 3
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
