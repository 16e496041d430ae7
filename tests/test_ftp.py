"""The ftp host against real FTP servers on loopback: pyftpdlib (a login with a password) and Debian's
vsftpd (anonymous writes, plain and explicit FTPS with a self-signed certificate)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from picbeam.testing import run_picbeam, write_host
from real_servers import started
from real_servers import vsftpd as vsftpd_server

PASSWORD = "ftp-pass-4321"


@dataclass
class FTPServer:
    port: int
    root: Path  # where the host's files land
    username: str
    folder: str = ""  # the host's root on the server
    cert: Path | None = None  # the server's self-signed certificate (to trust with ca_file)


@pytest.fixture(scope="module")
def pyftpd(tmp_path_factory) -> Iterator[FTPServer]:
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer as Server

    root = tmp_path_factory.mktemp("pyftpd")
    authorizer = DummyAuthorizer()
    authorizer.add_user("alice", PASSWORD, str(root), perm="elradfmwMT")
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer, "banner": "pyftpdlib ready"})
    server = Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.2}, daemon=True)
    thread.start()
    try:
        yield FTPServer(server.address[1], root, "alice")
    finally:
        server.close_all()
        thread.join(5)


@pytest.fixture(scope="module")
def vsftpd() -> Iterator[FTPServer]:
    for server in started(vsftpd_server):
        yield FTPServer(server.port, server.root, server.username, server.folder, server.cert)


def ftp_fields(server: FTPServer, **more):
    fields = {"extends": "ftp", "host": "127.0.0.1", "port": server.port, "username": server.username,
              "path": "img/{year}/{name}{ext}", **more}  # fmt: skip
    if server.folder:
        fields["root"] = server.folder
    return fields


def upload_and_delete(server: FTPServer, hosts_dir: Path, paths: list[Path], **more) -> list[str]:
    write_host(hosts_dir, "ftp1", **ftp_fields(server, url_prefix="https://files.example/", **more))
    env = {"FTP_PASSWORD": PASSWORD}
    done = run_picbeam("upload", *paths, "--host", "ftp1", "-j", "4", env=env)
    assert done.returncode == 0, done.stderr
    year = time.strftime("%Y")
    assert done.lines == [f"https://files.example/img/{year}/{p.stem}.png" for p in paths]
    for path in paths:
        assert (server.root / "img" / year / path.name).read_bytes() == path.read_bytes()
    deleted = run_picbeam("delete", done.lines[0], env=env)
    assert deleted.returncode == 0, deleted.stderr
    assert not (server.root / "img" / year / paths[0].name).exists()
    return done.lines


def test_pyftpdlib_upload_and_delete(pyftpd, hosts_dir, images):
    upload_and_delete(pyftpd, hosts_dir, images(5))


def test_vsftpd_plain_and_explicit_tls(vsftpd, hosts_dir, images):
    paths = images(3)
    upload_and_delete(vsftpd, hosts_dir, paths[:1])
    upload_and_delete(vsftpd, hosts_dir, paths[1:], tls="explicit", ca_file=str(vsftpd.cert))


def test_untrusted_certificate_and_wrong_password(vsftpd, pyftpd, hosts_dir, images):
    [path] = images(1)
    write_host(hosts_dir, "untrusted", **ftp_fields(vsftpd, tls="explicit"))
    done = run_picbeam("upload", path, "--host", "untrusted", "--retries", "0")
    assert done.returncode == 1 and "TLS certificate is not trusted" in done.stderr and "set ca_file" in done.stderr
    write_host(hosts_dir, "wrong", **ftp_fields(pyftpd))
    done = run_picbeam("upload", path, "--host", "wrong", "--retries", "0", env={"FTP_PASSWORD": "not-it-9999"})
    assert done.returncode == 1 and "FTP 530" in done.stderr and "wrong username or password" in done.stderr
    assert "not-it-9999" not in done.stderr and "Traceback" not in done.stderr
