"""The sftp host against OpenSSH's sshd (its own instance and login account, see tests/real_servers.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from urllib.parse import quote

import picbeam
import pytest
from picbeam.testing import run_picbeam
from real_servers import sshd, started
from storage_servers import failure_line, sftp_host

BIG = 64 * 1024 * 1024


@pytest.fixture(scope="module")
def server():
    yield from started(sshd)


def box(hosts_dir, server, name="box", **fields):
    sftp_host(hosts_dir, server, name, **{"key_file": str(server.plain_key_file), **fields})


def big_file(tmp_path, name="photo.bin", size=BIG):
    path = tmp_path / name
    path.write_bytes(name.encode()[:1] * size)
    return path


def upload_and_drop(server, folder, paths, *args):
    """Run an upload of ``paths`` and drop every SSH connection once part of a file has arrived in
    ``folder``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "picbeam", "upload", *map(str, paths), "--host", "box", "--no-ledger", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    dropped = False
    while process.poll() is None and not dropped:
        arrived = [p for p in folder.glob("*") if p.is_file() and p.stat().st_size > 2 * 1024 * 1024]
        if arrived:
            dropped = bool(server.drop_connections())
        time.sleep(0.005)
    stdout, stderr = process.communicate(timeout=120)
    assert dropped, stderr + "the upload ended before the connection could be dropped"
    return process.returncode, stdout, stderr


def test_dropped_connections_are_retried_on_a_new_one_and_no_partial_stays(server, hosts_dir, tmp_path):
    """Four uploads on one connection, which is killed: each is sent again on one new connection."""
    folder = server.home / "drop"
    box(hosts_dir, server, root="drop", path="{name}{ext}")
    paths = [big_file(tmp_path, f"{n}.bin", 16 * 1024 * 1024) for n in "abcd"]
    code, _, stderr = upload_and_drop(server, folder, paths, "--retries", "2", "-j", "4")
    assert code == 0, stderr
    assert stderr.count("\n") <= 1 and "socket.send" not in stderr and "Traceback" not in stderr, stderr
    for path in paths:
        assert (folder / path.name).read_bytes() == path.read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == ["a.bin", "b.bin", "c.bin", "d.bin"]  # no partial


def test_a_dropped_connection_without_retries_blames_the_connection_not_the_file(server, hosts_dir, tmp_path):
    folder = server.home / "drop-once"
    box(hosts_dir, server, root="drop-once", path="{name}{ext}")
    path = big_file(tmp_path)
    code, _, stderr = upload_and_drop(server, folder, [path], "--retries", "0")
    assert code == 1
    [line] = stderr.splitlines()
    assert "connection" in line and "cannot read" not in line and str(path) in line, line
    assert not (folder / "photo.bin").exists()  # never a truncated file under the final name


def test_an_encrypted_openssh_key_works_and_a_wrong_passphrase_is_one_config_line(
    server, hosts_dir, images, monkeypatch
):
    [path] = images(1)
    box(hosts_dir, server, key_file=str(server.key_file), passphrase="${KEY_PASS}", path="enc/{name}{ext}")
    monkeypatch.setenv("KEY_PASS", server.passphrase)
    [result] = picbeam.upload([path], host="box", ledger=False)
    assert result.ok, result.error
    assert (server.home / "enc" / "img0000.png").read_bytes() == path.read_bytes()
    done = run_picbeam("upload", path, "--host", "box", env={"KEY_PASS": "not-the-passphrase"})
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert "wrong passphrase" in line and str(server.key_file) in line and "field 'passphrase' (KEY_PASS)" in line
    assert "not-the-passphrase" not in done.stderr


def test_home_relative_root_nested_folders_odd_names_password_and_delete_twice(
    server, hosts_dir, tmp_path, monkeypatch
):
    from picbeam.samples import png

    box(hosts_dir, server, key_file="", password="${SSH_PASSWORD}", root="~/public_html", path="a b/ü/{name}{ext}")
    monkeypatch.setenv("SSH_PASSWORD", server.password)
    image = tmp_path / "été photo.png"
    image.write_bytes(png(4, 4, seed=7))
    [result] = picbeam.upload([image], host="box")
    assert result.ok, result.error
    [stored] = (server.home / "public_html" / "a b" / "ü").iterdir()
    assert stored.read_bytes() == image.read_bytes()
    assert not (server.home / "~").exists()
    expected = f"sftp://{server.username}@127.0.0.1:{server.port}/~/public_html/{quote('a b/ü/' + stored.name)}"
    assert result.url == expected

    stored.unlink()  # gone already: deleting it is done, with a note
    gone = run_picbeam("delete", result.url)
    assert gone.returncode == 0, gone.stderr
    assert gone.lines == [f"deleted {result.url}"]
    assert "already gone, marked deleted" in gone.stderr and len(gone.stderr.splitlines()) == 1, gone.stderr


def test_a_root_that_is_a_file_and_a_folder_without_permission_get_the_right_hint(server, hosts_dir, images):
    [path] = images(1)
    (server.home / "afile").write_text("not a folder")
    box(hosts_dir, server, name="isfile", root="afile", path="{name}{ext}")
    box(hosts_dir, server, name="denied", root="/root/picbeam-denied", path="{name}{ext}")
    box(hosts_dir, server, name="absent", root="/nonexistent-picbeam/x", path="{name}{ext}")
    lines = {name: failure_line(path, name, ()) for name in ("isfile", "denied", "absent")}
    assert "afile on 127.0.0.1" in lines["isfile"] and "is a file, not a folder" in lines["isfile"], lines
    assert "disk full" not in lines["isfile"], lines
    assert "permission denied" in lines["denied"] and "no such" not in lines["denied"], lines
    assert "permission denied writing /nonexistent-picbeam;" in lines["absent"], lines
