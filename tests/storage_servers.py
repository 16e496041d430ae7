"""Real storage servers on 127.0.0.1 for the storage hosts' tests, started and stopped by fixtures:
moto's S3 server (request authentication on), wsgidav (WebDAV), an asyncssh SFTP server, and a
GitHub API server (tests/github_server.py)."""

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
