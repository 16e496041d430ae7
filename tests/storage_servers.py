"""Python storage servers on 127.0.0.1 for the storage hosts' tests, started and stopped by fixtures:
moto's S3 server (request authentication on), wsgidav (WebDAV), an asyncssh SFTP server, and a
GitHub API server (tests/github_server.py). The servers people run (OpenSSH, Apache, nginx, lighttpd,
rclone) are launched by tests/real_servers.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

BUCKET = "pics"
ALLOW_ALL = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


@dataclass
class S3Server:
    endpoint: str
    writer: tuple[str, str]  # may do anything
    reader: tuple[str, str]  # a valid key with no permission at all

    def client(self) -> Any:
        """A boto3 client with the writer's key, to read back what arrived."""
        import boto3

        key, secret = self.writer
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        )

    def env(self, who: tuple[str, str] | None = None) -> dict[str, str]:
        key, secret = who or self.writer
        return {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 in server mode; once set up, every request must be signed by a key moto's IAM knows."""
    import boto3
    from moto import settings
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    iam = boto3.client(
        "iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    keys = {}
    for user in ("writer", "reader"):
        iam.create_user(UserName=user)
        if user == "writer":
            iam.put_user_policy(UserName=user, PolicyName="all", PolicyDocument=ALLOW_ALL)
        made = iam.create_access_key(UserName=user)["AccessKey"]
        keys[user] = (made["AccessKeyId"], made["SecretAccessKey"])
    saved = settings.INITIAL_NO_AUTH_ACTION_COUNT
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # from here on, moto checks every signature and permission
    s3 = S3Server(endpoint, keys["writer"], keys["reader"])
    s3.client().create_bucket(Bucket=BUCKET)
    try:
        yield s3
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = saved
        server.stop()


@dataclass
class WebDAVServer:
    url: str  # the server's root; shares at /dav (read-write) and /ro (read-only)
    root: Path  # the folder behind /dav
    username: str = "alice"
    password: str = "dav-pass-4321"

    def env(self) -> dict[str, str]:
        return {"DAV_PASSWORD": self.password}


def _start_wsgidav(folder: Path, digest: bool) -> tuple[Any, WebDAVServer]:
    import threading

    from cheroot import wsgi
    from wsgidav.wsgidav_app import WsgiDAVApp

    root, readonly = folder / "dav", folder / "ro"
    root.mkdir(parents=True)
    (readonly / "blog").mkdir(parents=True)
    server_info = WebDAVServer("", root)
    config = {
        "host": "127.0.0.1",
        "port": 0,
        "provider_mapping": {"/dav": str(root), "/ro": {"root": str(readonly), "readonly": True}},
        "simple_dc": {"user_mapping": {"*": {server_info.username: {"password": server_info.password}}}},
        "http_authenticator": {"accept_basic": not digest, "accept_digest": digest, "default_to_digest": digest},
        "verbose": 0,
        "logging": {"enable": False},
        "dir_browser": {"enable": False},
    }
    server = wsgi.Server(("127.0.0.1", 0), WsgiDAVApp(config), numthreads=8)
    server.prepare()
    threading.Thread(target=server.serve, daemon=True).start()
    server_info.url = f"http://127.0.0.1:{server.bind_addr[1]}"
    return server, server_info


@pytest.fixture(scope="session", params=["basic", "digest"])
def webdav_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDAVServer]:
    """wsgidav on cheroot, asking for Basic or for Digest authentication."""
    server, info = _start_wsgidav(tmp_path_factory.mktemp(f"webdav-{request.param}"), request.param == "digest")
    try:
        yield info
    finally:
        server.stop()


@dataclass
class SFTPServer:
    port: int
    root: Path  # what the server's SFTP root (chroot) is on disk
    known_hosts: Path  # a known_hosts file that trusts this server
    key_file: Path  # a private key the server accepts for "bob"
    username: str = "bob"
    password: str = "ssh-pass-9876"


def _sftp_server_classes(root: Path) -> tuple[type, type]:
    import asyncssh

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, password: str) -> bool:
            return username in ("bob", "viewer", "full", "halfway") and password == SFTPServer.password

    class Files(asyncssh.SFTPServer):
        """A chrooted SFTP server; the user "viewer" may only read, "full" finds the disk full, and
        "halfway" fills it while writing (after the first megabyte)."""

        def __init__(self, chan: Any) -> None:
            super().__init__(chan, chroot=str(root).encode())
            self.user = chan.get_extra_info("username")

        def open(self, path: bytes, pflags: int, attrs: Any) -> Any:
            if pflags & asyncssh.FXF_WRITE:
                self._refuse()
            return super().open(path, pflags, attrs)

        def write(self, file_obj: object, offset: int, data: bytes) -> int:
            room = 1024 * 1024 - offset
            if self.user == "halfway" and len(data) > room:
                super().write(file_obj, offset, data[: max(room, 0)])  # a partial file is left
                raise asyncssh.SFTPFailure("No space left on device")
            return super().write(file_obj, offset, data)

        def mkdir(self, path: bytes, attrs: Any) -> None:
            self._refuse()
            return super().mkdir(path, attrs)

        def _refuse(self) -> None:
            if self.user == "viewer":
                raise asyncssh.SFTPPermissionDenied("Permission denied")
            if self.user == "full":
                raise asyncssh.SFTPFailure("No space left on device")

    return Server, Files


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SFTPServer]:
    """asyncssh's SSH server with SFTP on loopback, in its own thread and event loop."""
    import asyncio
    import threading

    import asyncssh

    folder = tmp_path_factory.mktemp("sftp")
    root = folder / "root"
    root.mkdir()
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = folder / "id_ed25519"
    client_key.write_private_key(str(key_file))
    server_class, files_class = _sftp_server_classes(root)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> Any:
        return await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(client_key.export_public_key().decode()),
            server_factory=server_class,
            sftp_factory=files_class,
        )

    server = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    port = server.sockets[0].getsockname()[1]
    known_hosts = folder / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key.export_public_key().decode()}")
    try:
        yield SFTPServer(port, root, known_hosts, key_file)
    finally:
        server.close()
        asyncio.run_coroutine_threadsafe(server.wait_closed(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@pytest.fixture
def github_server() -> Iterator[Any]:
    """A GitHub API server on loopback with the repository "me/pics" (branch main, one README)."""
    from github_server import GitHubServer

    server = GitHubServer().start()
    server.create_repo("me/pics")
    try:
        yield server
    finally:
        server.stop()


# -- what every storage host's tests do ------------------------------------------------------------------
def upload_batch(images: Any, host: str, env: dict[str, str] | None = None) -> tuple[list[Path], list[dict], float]:
    """Upload 100 new images as one folder with -j 8; their paths, the JSON records in order, and the time."""
    import time

    from picbeam.testing import run_picbeam

    paths = images(100)
    started = time.monotonic()
    done = run_picbeam("upload", paths[0].parent, "--host", host, "-j", "8", "--format", "json", env=env)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    return paths, [json.loads(line) for line in done.lines], elapsed


def failure_line(
    path: Path, host: str, secrets: tuple[str, ...], env: dict[str, str] | None = None, *, cli: bool = False
) -> str:
    """Upload one file that must fail (through the command with ``cli``, else the Python API, which is
    quicker): the one line that names it; no secret anywhere."""
    import os
    from unittest import mock

    import picbeam
    from picbeam.testing import run_picbeam

    if cli:
        done = run_picbeam("upload", path, "--host", host, "--retries", "0", env=env)
        assert done.returncode == 1, (host, done.stderr)
        [line] = [line for line in done.stderr.splitlines() if str(path) in line]
        shown = done.stderr + done.stdout
    else:
        with mock.patch.dict(os.environ, env or {}):
            [result] = picbeam.upload([path], host=host, retries=0)
        assert result.error, host
        line = shown = f"{result.path}: {result.host}: {result.error}"
    assert "Traceback" not in shown and "\n" not in line.strip() and not [s for s in secrets if s in shown]
    return line


def shows_masked(host: str, field: str, value: str) -> bool:
    """`hosts show` prints the field masked and never its literal value."""
    from picbeam.testing import run_picbeam

    shown = run_picbeam("hosts", "show", host).stdout
    return value not in shown and f'{field} = "***"' in shown


def sftp_host(hosts_dir: Path, server: Any, name: str = "box", **fields: Any) -> None:
    """A hosts.d file for an SFTP server (asyncssh's or OpenSSH's) that trusts its host key."""
    from picbeam.testing import write_host

    fields = {
        "extends": "sftp",
        "host": "127.0.0.1",
        "port": server.port,
        "username": server.username,
        "known_hosts": str(server.known_hosts),
        **fields,
    }
    write_host(hosts_dir, name, **fields)


def prepared(name: str) -> Any:
    """A configured host, ready for a run (for calling ``delete`` directly)."""
    from picbeam.config import Config
    from picbeam.loader import load_plugins

    return load_plugins().hosts(Config.load()).select(name).prepared()
