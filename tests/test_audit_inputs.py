"""Hostile folders: symlinks out of the tree, FIFOs, devices, dangling links, names with control characters."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from picbeam.samples import png
from picbeam.testing import run_picbeam, write_host


@pytest.fixture
def fake(fake_host, hosts_dir):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url", timeout=5)
    return ["--host", "fake"]


def sent(fake_host) -> set[str]:
    return {hashlib.sha256(request.content).hexdigest() for request in fake_host.requests}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tree(tmp_path):
    """case/tree with links leading out of it (a folder, a file, the parent: a loop) and links inside it."""
    case = tmp_path / "case"
    (case / "outside" / "photos").mkdir(parents=True)
    (case / "outside" / "photos" / "private.png").write_bytes(png(4, 4, seed=101))
    (case / "outside" / "secret.png").write_bytes(png(4, 4, seed=102))
    tree = case / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.png").write_bytes(png(4, 4, seed=103))
    (tree / "sub" / "b.png").write_bytes(png(4, 4, seed=104))
    (tree / "photos").symlink_to("../outside/photos")
    (tree / "secret.png").symlink_to(case / "outside" / "secret.png")
    (tree / "up").symlink_to("..")
    (tree / "sub" / "back").symlink_to("..")  # inside the tree: followed, and the loop detected
    (tree / "inner.png").symlink_to("sub/b.png")
    return tree


def test_a_folder_walk_does_not_follow_symlinks_out_of_the_tree(fake, fake_host, tree):
    done = run_picbeam("upload", "-r", tree, *fake)
    assert done.returncode == 0, done.stderr
    assert sent(fake_host) == {digest(tree / "a.png"), digest(tree / "sub" / "b.png")}
    assert f"skipped 3 symlinks that lead outside {tree}/ (--follow-symlinks to follow them)" in done.stderr
    assert "Traceback" not in done.stderr


def test_follow_symlinks_follows_them_and_still_detects_loops(fake, fake_host, tree):
    done = run_picbeam("upload", "-r", "--follow-symlinks", tree, *fake)
    assert done.returncode == 0, done.stderr
    outside = tree.parent / "outside"
    assert {digest(outside / "photos" / "private.png"), digest(outside / "secret.png")} <= sent(fake_host)
    assert "a symbolic link to a folder already walked" in done.stderr
    assert "lead outside" not in done.stderr


def test_a_link_named_on_the_command_line_is_uploaded_as_today(fake, fake_host, tree):
    done = run_picbeam("upload", tree / "secret.png", *fake)
    assert done.returncode == 0, done.stderr
    assert sent(fake_host) == {digest(tree / "secret.png")}


def test_fifo_device_and_dangling_link_in_a_folder_are_skipped_and_counted(fake, fake_host, tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "a.png").write_bytes(png(4, 4, seed=7))
    os.mkfifo(folder / "pipe.png")
    (folder / "gone.png").symlink_to(folder / "nowhere.png")
    specials = 2
    if os.geteuid() == 0:  # only root may make a device node
        os.mknod(folder / "null.png", 0o600 | 0o020000, os.makedev(1, 3))
        specials += 1
    done = run_picbeam("upload", folder, *fake)
    assert done.returncode == 0, done.stderr
    assert len(fake_host.requests) == 1
    assert f"skipped {specials} non-image file(s) found in folders" in done.stderr
    assert "not a regular file" not in done.stderr and "Traceback" not in done.stderr
    # Named on the command line, the FIFO is still refused in one line.
    named = run_picbeam("upload", folder / "pipe.png", *fake)
    assert named.returncode == 1 and "not a regular file" in named.stderr


@pytest.fixture(scope="module")
def growing_host():
    """A host that, as soon as an upload's headers arrive, makes the file being sent grow by 1 MB, then
    reads the body and records how many file bytes it got."""
    from aiohttp import web
    from picbeam.testing import serving

    state: dict = {"grow": None, "received": []}

    async def upload(request: web.Request) -> web.Response:
        grow = state["grow"]
        if grow is not None:
            with open(grow, "ab") as handle:
                handle.write(b"\0" * 1024 * 1024)
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            data = b""
            while (part := await reader.next()) is not None:
                if part.filename:
                    data = bytes(await part.read())
        else:
            data = await request.read()
        state["received"].append((request.headers.get("Content-Length"), len(data)))
        return web.json_response({"data": {"url": f"http://127.0.0.1/{len(state['received'])}.png"}})

    app = web.Application(client_max_size=1024**3)
    app.router.add_post("/upload", upload)
    with serving(app) as url:
        state["url"] = url + "/upload"
        yield state


@pytest.mark.parametrize("body", ["multipart", "binary"])
def test_a_growing_file_is_sent_exactly_its_declared_length_then_reported(growing_host, hosts_dir, tmp_path, body):
    write_host(hosts_dir, "grow", endpoint=growing_host["url"], url_path="data.url", body=body)
    big = tmp_path / "big.png"
    declared = 24 * 1024 * 1024  # more than loopback buffers hold, so the file grows while it is read
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(declared - 8))
    growing_host["grow"], growing_host["received"] = big, []
    done = run_picbeam("upload", big, "--host", "grow", "--keep-metadata", "--retries", "0")
    assert done.returncode == 1
    assert "the file changed while it was being uploaded" in done.stderr, done.stderr
    [(_, received)] = growing_host["received"]
    assert received == declared


def test_watch_does_not_follow_symlinks_out_of_the_folder_unless_told(fake_host, hosts_dir, tmp_path):
    from test_watch import Watch

    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "early.png").write_bytes(png(4, 4, seed=201))
    (outside / "late.png").write_bytes(png(4, 4, seed=202))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "early.png").symlink_to(outside / "early.png")
    watch = Watch(inbox, "--existing")
    try:
        (inbox / "late.png").symlink_to(outside / "late.png")
        (inbox / "mine.png").write_bytes(png(4, 4, seed=203))
        watch.wait_for(lambda: len(watch.stdout) >= 1, "the upload of mine.png")
        watch.wait_for(lambda: any("late.png" in line for line in watch.stderr), "the skipped late link")
    finally:
        watch.stop()
    assert [r.file.filename for r in fake_host.requests] == ["mine.png"]
    assert any("skipped 1 symlink that leads outside" in line for line in watch.stderr), watch.stderr
    followed = Watch(inbox, "--existing", "--follow-symlinks")
    try:
        followed.wait_for(lambda: len(fake_host.requests) >= 3, "the linked files")
    finally:
        followed.stop()
    assert sorted(r.file.filename for r in fake_host.requests) == ["early.png", "late.png", "mine.png"]
