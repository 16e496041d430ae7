"""The ftp host against real FTP servers on loopback: pyftpdlib (a login with a password) and Debian's
vsftpd (anonymous writes, plain and explicit FTPS with a self-signed certificate)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from picbeam.testing import run_picbeam, write_host

PASSWORD = "ftp-pass-4321"


@dataclass
class FTPServer:
    port: int
    root: Path  # where the host's files land
    username: str
    folder: str = ""  # the host's root on the server


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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def vsftpd(tmp_path_factory) -> Iterator[FTPServer]:
    binary = shutil.which("vsftpd") or ("/usr/sbin/vsftpd" if Path("/usr/sbin/vsftpd").exists() else None)
    if binary is None or not shutil.which("openssl"):
        pytest.skip("vsftpd or openssl is not installed (apt-get install vsftpd openssl)")
    base = tmp_path_factory.mktemp("vsftpd")
    root = base / "anon"
    (root / "pub").mkdir(parents=True)
    shutil.chown(root / "pub", "ftp", "ftp")
    root.chmod(0o755)
    base.chmod(0o755)
    Path("/var/run/vsftpd/empty").mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", base / "key.pem",
                    "-out", base / "cert.pem", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)  # fmt: skip
    port = _free_port()
    config = base / "vsftpd.conf"
    config.write_text(
        "\n".join([
            "listen=YES", "listen_address=127.0.0.1", f"listen_port={port}", "background=NO",
            "anonymous_enable=YES", "local_enable=NO", "write_enable=YES", "anon_upload_enable=YES",
            "anon_mkdir_write_enable=YES", "anon_other_write_enable=YES", f"anon_root={root}", "anon_umask=022",
            "no_anon_password=YES", "secure_chroot_dir=/var/run/vsftpd/empty", "pasv_enable=YES",
            "pasv_address=127.0.0.1", "seccomp_sandbox=NO", "ftp_username=ftp", f"vsftpd_log_file={base}/log",
            "ssl_enable=YES", "allow_anon_ssl=YES", "force_anon_logins_ssl=NO", "force_anon_data_ssl=NO",
            f"rsa_cert_file={base}/cert.pem", f"rsa_private_key_file={base}/key.pem", "require_ssl_reuse=NO",
        ]) + "\n"
    )  # fmt: skip
    process = subprocess.Popen([binary, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        if process.poll() is not None:
            pytest.fail(f"vsftpd did not start: {process.stderr.read().decode() if process.stderr else ''}")
        time.sleep(0.05)
    try:
        server = FTPServer(port, root / "pub", "anonymous", folder="pub")
        server.cert = base / "cert.pem"  # type: ignore[attr-defined]
        yield server
    finally:
        process.terminate()
        process.wait(10)


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
