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
