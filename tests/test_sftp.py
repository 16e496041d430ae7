"""The sftp host against asyncssh's SSH server on loopback."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import asyncssh
import picbeam
from picbeam.testing import run_picbeam
from storage_servers import failure_line, prepared, sftp_host, shows_masked, upload_batch


def test_batch_of_100_with_a_key_arrives_byte_identical(sftp_server, hosts_dir, images):
    sftp_host(
        hosts_dir,
        sftp_server,
        key_file=str(sftp_server.key_file),
        root="www/img",
        path="{year}/{month}/{name}-{sha256:8}{ext}",
        url_prefix="https://img.example/",
    )
    paths, records, elapsed = upload_batch(images, "box")
    folder = f"{time.strftime('%Y')}/{time.strftime('%m')}"
    for record, path in zip(records, paths, strict=True):
        relative = f"{folder}/{path.stem}-{record['sha256'][:8]}.png"
        assert (sftp_server.root / "www" / "img" / relative).read_bytes() == path.read_bytes()
        assert record["url"] == f"https://img.example/{relative}"
    print(f"sftp: 100 images in {elapsed:.1f}s")


def test_password_login_large_file_and_delete(sftp_server, hosts_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SFTP_PASSWORD", sftp_server.password)
    sftp_host(hosts_dir, sftp_server, password="${SFTP_PASSWORD}", path="big/{name}{ext}")
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 12 * 1024)  # 3 MiB: streamed from disk, not held in memory
    [result] = picbeam.upload([big], host="box")
    assert result.ok, result.error
    stored = sftp_server.root / "big" / "big.bin"
    assert stored.read_bytes() == big.read_bytes()
    assert result.url == f"sftp://bob@127.0.0.1:{sftp_server.port}/~/big/big.bin"  # in the login folder

    async def delete():
        host = prepared("box")
        async with aiohttp.ClientSession() as session:
            await host.delete({"url": result.url, "answer": result.answer, "endpoint": result.endpoint}, session)
            await host.finish(session)

    asyncio.run(delete())
    assert not stored.exists()


def test_login_host_key_permission_and_full_disk_are_one_line_each(sftp_server, hosts_dir, images, tmp_path):
    [path] = images(1)
    other_hosts = tmp_path / "other_known_hosts"
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    other_hosts.write_text(f"[127.0.0.1]:{sftp_server.port} {impostor}")  # another key for this address
    sftp_host(hosts_dir, sftp_server, name="badpw", password="not-the-password")
    sftp_host(hosts_dir, sftp_server, name="unknown", password=sftp_server.password, known_hosts=str(other_hosts))
    sftp_host(hosts_dir, sftp_server, name="viewer", username="viewer", password=sftp_server.password)
    sftp_host(hosts_dir, sftp_server, name="full", username="full", password=sftp_server.password, path="{name}{ext}")
    expected = {
        "badpw": "refused the login of 'bob': wrong password or key",
        "unknown": "is not trusted by",
        "viewer": "permission denied writing",
        "full": "No space left on device",
    }
    for name, text in expected.items():
        line = failure_line(path, name, ("not-the-password", sftp_server.password), cli=name == "badpw")
        assert text in line, (name, line)
    assert shows_masked("badpw", "password", "not-the-password")


def test_picbeam_delete_removes_the_file_and_the_ledger_records_it(sftp_server, hosts_dir, images):
    sftp_host(hosts_dir, sftp_server, key_file=str(sftp_server.key_file), path="cli/{name}{ext}")
    [path] = images(1)
    done = run_picbeam("upload", path, "--host", "box")
    assert done.returncode == 0, done.stderr
    stored = sftp_server.root / "cli" / "img0000.png"
    assert stored.read_bytes() == path.read_bytes()
    gone = run_picbeam("delete", done.lines[0])
    assert gone.returncode == 0 and gone.stderr == "", gone.stderr
    assert not stored.exists()
    assert "(deleted)" in run_picbeam("history").stdout


def test_a_write_that_fails_midway_leaves_no_partial_file(sftp_server, hosts_dir, tmp_path):
    """The connection still works, so the partial file is removed; the final name was never written."""
    sftp_host(hosts_dir, sftp_server, username="halfway", password=sftp_server.password, path="half/{name}{ext}")
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 12 * 1024)  # 3 MiB
    [result] = picbeam.upload([big], host="box", retries=0, ledger=False)
    assert result.error and "No space left on device" in result.error, result
    assert list((sftp_server.root / "half").iterdir()) == []
