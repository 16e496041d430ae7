"""`picbeam serve`: the PicGo protocol as real editors speak it, and the checks that keep web pages out.

Most tests run the server in-process on a loopback port (fast); the command-line contract, curl and a
Node client run the real `picbeam serve` as a subprocess.
"""

from __future__ import annotations

import asyncio
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from picbeam.samples import png
from picbeam.testing import run_picbeam, write_host

SECRET = "s3cret-for-tests-0123456789"


# -- helpers -------------------------------------------------------------------------------------
class Answer:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def request(port: int, path: str = "/upload", body: bytes | str | None = b"", headers: dict[str, str] | None = None,
            method: str = "POST", host: str = "127.0.0.1") -> Answer:  # fmt: skip
    """One request with exactly these headers (http.client adds only Host, unless given, and Content-Length)."""
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        data = body.encode() if isinstance(body, str) else body
        connection.request(method, path, body=data, headers=headers or {})
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


def upload_json(port: int, entries: list[str], headers: dict[str, str] | None = None, path: str = "/upload") -> Answer:
    return request(port, path, json.dumps({"list": entries}, separators=(",", ":")),
                   {"Content-Type": "application/json", **(headers or {})})  # fmt: skip


class InProcessServer:
    """PicGoServer on 127.0.0.1 in its own thread and event loop."""

    def __init__(self, **options: Any) -> None:
        from picbeam.cli.common import open_hosts
        from picbeam.server import PicGoServer, ServerOptions

        plugins, config, registry = open_hosts()
        options.setdefault("host", "fake")
        self.lines: list[str] = []
        self.server = PicGoServer(ServerOptions(**options), plugins, config, registry, log=self.lines.append)

    def __enter__(self) -> InProcessServer:
        ready = threading.Event()

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            self.loop.run_until_complete(self.server.start())
            self.port = self.loop.run_until_complete(self.server.listen("127.0.0.1", 0))
            ready.set()
            self.loop.run_forever()
            self.loop.run_until_complete(self.server.stop())
            self.loop.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def fake(fake_host, hosts_dir):
    """The upload target: a loopback fake host configured as hosts.d/fake.toml."""
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    return fake_host


@pytest.fixture
def serve(fake):
    """serve(**options) starts an in-process server and returns its port."""
    with_servers: list[InProcessServer] = []

    def start(**options: Any) -> int:
        server = InProcessServer(**options).__enter__()
        with_servers.append(server)
        return server.port

    start.servers = with_servers  # type: ignore[attr-defined]
    yield start
    for server in with_servers:
        server.__exit__()


class Subprocess:
    """The real `picbeam serve` command."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "picbeam", "serve", "--port", "0", *args], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})},
        )  # fmt: skip
        self.stderr: list[str] = []
        started = threading.Event()

        def read() -> None:
            for line in self.process.stderr:  # type: ignore[union-attr]
                self.stderr.append(line)
                if "serving the PicGo protocol" in line:
                    started.set()
            started.set()

        threading.Thread(target=read, daemon=True).start()
        started.wait(30)
        match = re.search(r"http://127\.0\.0\.1:(\d+)/upload", "".join(self.stderr))
        self.port = int(match.group(1)) if match else 0

    def stop(self) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        code = self.process.wait(20)
        time.sleep(0.05)
        return code, "".join(self.stderr)


@pytest.fixture
def command(fake) -> Iterator[Any]:
    started: list[Subprocess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Subprocess:
        server = Subprocess("--host", "fake", *args, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(10)


class ImageServer:
    """A second loopback server that serves an image (for URL entries), a big file and redirects."""

    def __init__(self, image: bytes, address: str = "127.0.0.1") -> None:
        files = {
            "/a.png": image,
            "/b.png": png(5, 5, seed=78),
            "/notes.txt": b"just text",
            "/big.png": image + b"\0" * 3_000_000,
        }

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/redirect?to="):
                    self.send_response(302)
                    self.send_header("Location", self.path.split("=", 1)[1])
                    self.end_headers()
                    return
                data = files.get(self.path)
                self.send_response(200 if data is not None else 404)
                self.send_header("Content-Length", str(len(data or b"")))
                self.end_headers()
                self.wfile.write(data or b"")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer((address, 0), Handler)
        self.url = f"http://{address}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def image_server() -> Iterator[ImageServer]:
    server = ImageServer(png(6, 6, seed=77))
    yield server
    server.close()


def obsidian_multipart(files: list[tuple[str, bytes]]) -> tuple[str, bytes]:
    """The body the Obsidian image-auto-upload plugin builds in remote-server mode: one part named `list`
    per file, a File without a type (so application/octet-stream), its own boundary scheme."""
    boundary = "BoundaryAbCdEfGh01234567"
    body = b""
    for name, data in files:
        body += f'------{boundary}\r\nContent-Disposition: form-data; name="list"; filename="{name}"\r\n'.encode()
        body += b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
    body += f"------{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary=----{boundary}", body


# -- the protocol as editors speak it ------------------------------------------------------------
def test_heartbeat(serve):
    port = serve()
    answer = request(port, "/heartbeat")
    assert answer.status == 200 and answer.json == {"success": True, "result": "alive"}


def test_typora_style_request_uploads_in_request_order(serve, fake, images):
    # Typora's "PicGo (app)" mode: a JSON body with absolute paths (its test button sends two icons).
    first, second = images(2)
    port = serve()
    answer = upload_json(port, [str(first), str(second)])
    assert answer.status == 200, answer.body
    assert answer.headers["Content-Type"].startswith("application/json")
    body = answer.json
    assert body["success"] is True
    assert len(fake.requests) == 2
    urls = {request.file.data: fake.file_url(request) for request in fake.requests}
    assert body["result"] == [urls[first.read_bytes()], urls[second.read_bytes()]]
    assert [item["path"] for item in body["items"]] == [str(first), str(second)]
    assert all(item["error"] is None for item in body["items"])


def test_obsidian_style_requests(serve, fake, images):
    [path] = images(1)
    port = serve()
    # requestUrl({method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({list})})
    answer = upload_json(port, [str(path)])
    assert answer.status == 200 and answer.json["result"] == [fake.file_url(fake.requests[0])]
    # remote-server mode: the file's bytes in a `list` part named after a timestamp
    content_type, body = obsidian_multipart([("1732958400000.png", png(3, 3, seed=5))])
    answer = request(port, body=body, headers={"Content-Type": content_type})
    assert answer.status == 200, answer.body
    assert fake.requests[1].file.filename == "1732958400000.png"
    assert fake.requests[1].file.data == png(3, 3, seed=5)
    assert answer.json["result"] == [fake.file_url(fake.requests[1])]


def test_obsidian_remote_mode_with_full_paths_as_names(serve, fake):
    # for images given by path, the plugin names the part with the whole path: only the name is kept
    content_type, body = obsidian_multipart([("/home/u/vault/a b.png", png(2, 2, seed=1)),
                                             ("C:\\vault\\c.png", png(2, 2, seed=2))])  # fmt: skip
    answer = request(serve(), body=body, headers={"Content-Type": content_type})
    assert answer.status == 200, answer.body
    assert sorted(unquote(r.file.filename or "") for r in fake.requests) == ["a b.png", "c.png"]
    assert [item["path"] for item in answer.json["items"]] == ["/home/u/vault/a b.png", "C:\\vault\\c.png"]


def test_posted_files_small_and_big_arrive_intact(serve, fake):
    # a screenshot stays in memory; a file over 1 MB is spooled to disk as it arrives
    small, big = png(9, 9, seed=90), png(700, 600, seed=91)
    assert len(big) > 1024 * 1024
    content_type, body = obsidian_multipart([("small.png", small), ("big.png", big)])
    answer = request(serve(), body=body, headers={"Content-Type": content_type})
    assert answer.status == 200, answer.body
    assert sorted(len(r.file.data) for r in fake.requests) == [len(small), len(big)]
    assert {r.file.filename: r.file.data for r in fake.requests} == {"small.png": small, "big.png": big}


def test_picgo_multipart_files_parts(serve, fake):
    boundary = "----picbeamtest"
    parts = b""
    for seed in (1, 2):
        parts += (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="f{seed}.png"\r\n'
                  "Content-Type: image/png\r\n\r\n").encode() + png(2, 2, seed=seed) + b"\r\n"  # fmt: skip
    parts += f"--{boundary}--\r\n".encode()
    answer = request(serve(), body=parts, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert answer.status == 200, answer.body
    assert len(answer.json["result"]) == 2 and len(fake.requests) == 2


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


def multipart_body(boundary: str, parts: list[tuple[str, bytes]], end: bytes = b"--\r\n") -> bytes:
    """A multipart body from (headers, data) parts as given, byte for byte."""
    body = b"".join(f"--{boundary}\r\n{headers}\r\n\r\n".encode() + data + b"\r\n" for headers, data in parts)
    return body + f"--{boundary}".encode() + end


def file_part(name: str, data: bytes = b"x") -> tuple[str, bytes]:
    return f'Content-Disposition: form-data; name="files"; filename="{name}"', data


FORM = "multipart/form-data; boundary=b"
HOSTILE_MULTIPART = {  # content type, body, status, message
    "no boundary": ("multipart/form-data", b"--x\r\n\r\n", 400, "names no boundary"),
    "truncated": (FORM, multipart_body("b", [file_part("a.png", b"\x89PNG")], end=b"")[:-3], 400,
                  "malformed multipart body: Unexpected end of multipart stream"),
    "no boundary in the body": (FORM, b"\x00garbage\xff" * 1000, 400, "malformed multipart body"),
    "a huge part header": (FORM, multipart_body("b", [file_part("a" * 10000 + ".png")]), 400,
                           "malformed multipart body: Maximum segment header length exceeded"),
    "a flood of text fields": (FORM, multipart_body("b", [(f'Content-Disposition: form-data; name="f{n}"', b"v")
                                                          for n in range(500)]), 400,
                               "malformed multipart body: Maximum segment count exceeded"),
    "too many files": (FORM, multipart_body("b", [file_part(f"{n}.png") for n in range(101)]), 413,
                       "too many files: at most 100 per request"),
    "text fields only": (FORM, multipart_body("b", [('Content-Disposition: form-data; name="note"', b"hi")]), 400,
                         "carried no file part"),
    "a part without Content-Disposition": (FORM, multipart_body("b", [("Content-Type: image/png", b"x")]), 400,
                                           "malformed multipart body: Missing Content-Disposition"),
    "part headers not UTF-8": (FORM, multipart_body("b", [file_part("@@.png")]).replace(b"@@", b"\xff"), 400,
                               "malformed multipart body"),
}  # fmt: skip


@pytest.mark.parametrize("case", HOSTILE_MULTIPART)
def test_hostile_multipart_bodies_are_one_clear_line(serve, fake, case):
    content_type, body, status, message = HOSTILE_MULTIPART[case]
    port = serve()
    answer = request(port, body=body, headers={"Content-Type": content_type})
    assert answer.status == status, answer.body
    assert answer.json["success"] is False and message in answer.json["message"], answer.json
    assert "\n" not in answer.json["message"]
    assert fake.requests == []
    assert request(port, "/heartbeat").status == 200  # and the server still serves


def test_multipart_parts_arrive_intact_however_the_bytes_are_split(serve, fake):
    # Data that looks like a boundary (a CR, then "\r\n--" and the boundary's start) on every packet's
    # edge, text fields between the files, a name given only as RFC 5987 filename*: each file arrives
    # byte for byte, whatever the split.
    boundary = "xYz-boundary"
    edges = b"\r\n--xYz-bound\r\r\n-\r" * 50
    tricky = png(20, 20, seed=3)[:-12] + png_chunk(b"IDAT", edges) + png_chunk(b"IEND", b"")  # before IEND
    body = multipart_body(boundary, [
        ('Content-Disposition: form-data; name="note"', b"first a text field"),
        ('Content-Disposition: form-data; name="files"; filename="tricky.png"\r\nContent-Type: image/png', tricky),
        ("Content-Disposition: form-data; name=files; filename*=UTF-8''%E5%9B%BE%20%C3%A9.png", png(3, 3, seed=4)),
    ])  # fmt: skip
    port = serve()
    for piece in (7, 64, 1000):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection.sendall(f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: "
                               f"multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n"
                               .encode())  # fmt: skip
            for start in range(0, len(body), piece):
                connection.sendall(body[start : start + piece])
                if start % (piece * 50) == 0:
                    time.sleep(0.001)  # let the server read what has come so far
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
        head, _, text = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), answer
        assert [item["path"] for item in json.loads(text)["items"]] == ["tricky.png", "图 é.png"]
    assert {(r.file.filename, r.file.data) for r in fake.requests[:2]} == {
        ("tricky.png", tricky), (unquote("%E5%9B%BE%20%C3%A9.png"), png(3, 3, seed=4))}  # fmt: skip


def test_empty_body_or_list_uploads_the_clipboard_image(x_display, serve, fake):
    from conftest import set_clipboard

    port = serve()
    set_clipboard(png(4, 4, seed=11), "image/png")
    answer = request(port)  # what Obsidian and PicGo clients send to upload the clipboard: no body at all
    assert answer.status == 200, answer.body
    assert fake.requests[0].file.data == png(4, 4, seed=11)
    set_clipboard(png(4, 4, seed=12), "image/png")
    assert upload_json(port, []).status == 200
    assert fake.requests[1].file.data == png(4, 4, seed=12)
    set_clipboard(b"text", "UTF8_STRING")
    answer = request(port)
    assert answer.status == 500 and answer.json["message"] == "clipboard: the clipboard holds no image"


def test_body_is_json_whatever_the_content_type(serve, fake, images):
    [path] = images(1)
    port = serve()
    for content_type in ("text/plain;charset=UTF-8", "application/x-www-form-urlencoded", None):
        headers = {"Content-Type": content_type} if content_type else {}
        answer = request(port, body=json.dumps({"list": [str(path)]}), headers=headers)
        assert answer.status == 200, (content_type, answer.body)
    assert len(fake.requests) == 1  # the ledger: the same file is sent once, then reused
    assert [item["reused"] for item in answer.json["items"]] == [True]


def test_malformed_bodies_are_400_with_a_clear_message(serve, fake):
    port = serve()
    for body in ('{"list": ', "[1, 2]", '{"list": "a.png"}', '{"list": [1]}'):
        answer = request(port, body=body)
        assert answer.status == 400, body
        assert answer.json["success"] is False and ('"list"' in answer.json["message"])
    assert fake.requests == []


def test_partial_failure_keeps_positions(serve, fake, images, tmp_path):
    first, second = images(2)
    port = serve()
    missing = str(tmp_path / "missing.png")
    answer = upload_json(port, [str(first), missing, str(second)])
    body = answer.json
    assert answer.status == 200 and body["success"] is True
    assert body["result"][1] == missing and body["result"][0].startswith(fake.url) and body["result"][2] != missing
    assert body["items"][1]["error"] == "no such file" and body["items"][1]["url"] is None
    everything_failed = upload_json(port, [missing])
    assert everything_failed.status == 500
    assert everything_failed.json["success"] is False and "no such file" in everything_failed.json["message"]


def test_host_and_picbed_pick_the_host(serve, fake, hosts_dir, images):
    from picbeam.testing import FakeHost

    with FakeHost() as other:
        write_host(hosts_dir, "other", endpoint=other.endpoint(), url_path="data.url")
        first, second = images(2)
        port = serve()
        assert upload_json(port, [str(first)], path="/upload?picbed=other").status == 200
        assert upload_json(port, [str(second)], path="/upload?host=other").status == 200
        assert len(other.requests) == 2 and fake.requests == []
        unknown = upload_json(port, [str(first)], path="/upload?host=nope")
        assert unknown.status == 400 and "unknown host 'nope'" in unknown.json["message"]


# -- one long-lived batch per host ------------------------------------------------------------------
def test_concurrent_requests_share_one_batch(serve, fake):
    """Four editors post the same screenshot at once: one batch for the server's life sends it once
    (the others wait for that upload and reuse it), where a batch per request sent it four times."""
    from picbeam.testing import Reply

    fake.respond_with(lambda recorded, host: Reply(json=host.default_reply(recorded).json, delay=0.5))
    port = serve()
    content_type, body = obsidian_multipart([("shot.png", png(7, 7, seed=70))])
    answers: list[Answer] = []
    threads = [threading.Thread(target=lambda: answers.append(request(port, body=body,
                                headers={"Content-Type": content_type}))) for _ in range(4)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [answer.status for answer in answers] == [200] * 4
    assert len(fake.requests) == 1
    assert {answer.json["result"][0] for answer in answers} == {fake.file_url(fake.requests[0])}
    assert sorted(answer.json["items"][0]["reused"] for answer in answers) == [False, True, True, True]


def test_a_host_that_batches_completes_before_each_answer(serve, github_server, hosts_dir, images, monkeypatch):
    """GitHub stages blobs and commits them in the host's finish: the long-lived batch commits after each
    request, so the URL an editor gets works at once."""
    import urllib.request

    from github_server import WRITE_TOKEN

    monkeypatch.setenv("GITHUB_TOKEN", WRITE_TOKEN)
    write_host(hosts_dir, "gh", extends="github", repo="me/pics", api=github_server.api,
               url_template=github_server.raw_url(), path="{name}{ext}")  # fmt: skip
    port = serve(host="gh")
    for path in images(2):
        answer = upload_json(port, [str(path)])
        assert answer.status == 200, answer.body
        with urllib.request.urlopen(answer.json["result"][0]) as served:
            assert served.read() == path.read_bytes()
    assert github_server.calls["POST /api/v3/repos/{owner}/{name}/git/commits"] == 2


# -- security ------------------------------------------------------------------------------------
def test_cross_origin_text_plain_post_of_a_local_file_is_refused(serve, fake, tmp_path):
    secret_file = tmp_path / "id_rsa"
    secret_file.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    port = serve()
    # what fetch(url, {method: "POST", mode: "no-cors", body: JSON.stringify(...)}) sends from a web page
    browser = {"Content-Type": "text/plain;charset=UTF-8", "Origin": "https://evil.example",
               "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}  # fmt: skip
    answer = request(port, body=json.dumps({"list": [str(secret_file)]}), headers=browser)
    assert answer.status == 403
    assert "Access-Control-Allow-Origin" not in answer.headers
    for origin in ("null", "http://localhost:8000", "file://"):
        assert request(port, body="{}", headers={"Origin": origin}).status == 403, origin
    no_origin = {"Sec-Fetch-Site": "same-site"}
    assert request(port, body=json.dumps({"list": [str(secret_file)]}), headers=no_origin).status == 403
    # and were a request to get through, a file that is not an image is still not uploaded
    answer = upload_json(port, [str(secret_file)])
    assert answer.status == 500 and "not an image" in answer.json["items"][0]["error"]
    assert fake.requests == []


def test_editor_app_origins_are_served(serve, fake, images):
    [path] = images(1)
    port = serve()
    for origin in ("app://obsidian.md", "vscode-webview://1a2b3c"):
        answer = upload_json(port, [str(path)], headers={"Origin": origin, "Sec-Fetch-Site": "cross-site"})
        assert answer.status == 200, (origin, answer.body)
        assert "Access-Control-Allow-Origin" not in answer.headers


def test_allow_origin_serves_that_origin_with_cors(serve, fake, images):
    [path] = images(1)
    port = serve(allow_origins=frozenset({"https://notes.example"}))
    preflight = request(port, method="OPTIONS", body=None, headers={
        "Origin": "https://notes.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})  # fmt: skip
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://notes.example"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    answer = upload_json(port, [str(path)], headers={"Origin": "https://notes.example", "Sec-Fetch-Site": "cross-site"})
    assert answer.status == 200 and answer.headers["Access-Control-Allow-Origin"] == "https://notes.example"
    assert request(port, method="OPTIONS", body=None, headers={"Origin": "https://other.example"}).status == 403


def test_host_header_must_be_loopback(serve, fake, images):
    [path] = images(1)
    port = serve()
    body = json.dumps({"list": [str(path)]})
    for host in ("evil.example", f"evil.example:{port}", "192.168.1.5", "127.0.0.1.nip.io"):
        assert request(port, body=body, headers={"Host": host}).status == 403, host
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost"):
        assert request(port, body=body, headers={"Host": host}).status == 200, host
    assert len(fake.requests) == 1


def test_secret_is_required_when_set(serve, fake, images):
    [path] = images(1)
    port = serve(secret=SECRET)
    missing = upload_json(port, [str(path)])
    assert missing.status == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    assert "Authorization: Bearer" in missing.json["message"]
    assert upload_json(port, [str(path)], headers={"Authorization": "Bearer wrong"}).status == 401
    assert upload_json(port, [str(path)], path="/upload?secret=wrong").status == 401
    assert fake.requests == []
    assert upload_json(port, [str(path)], headers={"Authorization": f"Bearer {SECRET}"}).status == 200
    assert upload_json(port, [str(path)], headers={"X-PicGo-Secret": SECRET}).status == 200
    assert upload_json(port, [str(path)], path=f"/upload?secret={SECRET}").status == 200
    assert upload_json(port, [str(path)], path=f"/upload?key={SECRET}").status == 200  # as PicList sends it
    assert request(port, "/heartbeat").status == 200  # liveness reveals nothing
    log = "\n".join(serve.servers[0].lines)
    assert "POST /upload 401" in log and SECRET not in log


def test_root_limits_paths_after_resolving_symlinks(serve, fake, images, tmp_path):
    inside, outside = images(1, folder="vault")[0], images(1, folder="elsewhere")[0]
    link = tmp_path / "vault" / "link.png"
    link.symlink_to(outside)
    port = serve(roots=(tmp_path / "vault",))
    answer = upload_json(port, [str(inside), str(outside), str(link), str(tmp_path / "vault" / ".." / "elsewhere")])
    errors = [item["error"] for item in answer.json["items"]]
    assert errors[0] is None
    assert all("outside the folders" in error for error in errors[1:])
    assert len(fake.requests) == 1


def test_only_regular_image_files(serve, fake, tmp_path):
    port = serve()
    (tmp_path / "folder").mkdir()
    (tmp_path / "fake.png").write_text("not really a png")
    answer = upload_json(port, [str(tmp_path / "folder"), "/dev/null", str(tmp_path / "fake.png"), "relative.png"])
    errors = [item["error"] for item in answer.json["items"]]
    assert errors[0] == "not a regular file" and errors[1] == "not a regular file"
    assert "not an image" in errors[2] and errors[3] == "not an absolute path"
    assert fake.requests == []


def test_allow_any_file(serve, fake, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    answer = upload_json(serve(allow_any_file=True), [str(notes)])
    assert answer.status == 200 and fake.requests[0].file.data == b"hello"


def test_url_entries_refuse_loopback_and_other_schemes(serve, fake, image_server):
    port = serve()
    entries = [f"{image_server.url}/a.png", image_server.url.replace("127.0.0.1", "localhost") + "/a.png",
               "http://[::1]/a.png", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/a.png",
               "ftp://example.com/a.png", "file:///etc/passwd"]  # fmt: skip
    answer = upload_json(port, entries)
    assert answer.status == 500
    errors = [item["error"] for item in answer.json["items"]]
    assert "127.0.0.1 is a loopback address" in errors[0]
    assert "localhost resolves to" in errors[1] and "loopback" in errors[1]
    assert "loopback" in errors[2] and "link-local" in errors[3] and "private" in errors[4]
    assert "refused" in errors[5] and "refused" in errors[6]
    assert fake.requests == []


def test_url_entries_with_allow_private_urls(serve, fake, image_server):
    port = serve(allow_private_urls=True, max_body=1024 * 1024)
    entries = [f"{image_server.url}/a.png", f"{image_server.url}/redirect?to=/b.png", f"{image_server.url}/notes.txt",
               f"{image_server.url}/big.png", f"{image_server.url}/missing.png"]  # fmt: skip
    answer = upload_json(port, entries)
    assert answer.status == 200, answer.body
    errors = [item["error"] for item in answer.json["items"]]
    assert errors[0] is None and errors[1] is None
    assert "not an image" in errors[2] and "over the server's limit" in errors[3] and "HTTP 404" in errors[4]
    sent = {request.file.filename: request.file.data for request in fake.requests}
    assert sent == {"a.png": png(6, 6, seed=77), "b.png": png(5, 5, seed=78)}
    # the URLs of one request share the size budget
    small = serve(allow_private_urls=True, max_body=len(png(6, 6, seed=77)) + 10)
    shared = upload_json(small, [f"{image_server.url}/a.png", f"{image_server.url}/b.png"]).json["items"]
    assert sum(1 for item in shared if item["error"] and "limit" in item["error"]) == 1


def test_address_policy():
    from picbeam.server import address_problem

    refused = ["127.0.0.1", "127.1.2.3", "::1", "0.0.0.0", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
               "fe80::1%eth0", "fc00::1", "::ffff:127.0.0.1", "2002:7f00:1::", "100.64.0.1", "224.0.0.1"]  # fmt: skip
    assert [text for text in refused if address_problem(text) is None] == []
    assert address_problem("93.184.215.14") is None and address_problem("2606:4700::6810:84e5") is None


def test_ipv6_carrying_a_private_ipv4_is_judged_by_that_address():
    from picbeam.server import address_problem

    # IPv4-compatible, NAT64 (well-known and local prefixes), SIIT: the packet reaches the IPv4 address inside
    for text in ("::127.0.0.1", "64:ff9b::7f00:1", "64:ff9b:1::7f00:1", "::ffff:0:7f00:1"):
        assert address_problem(text) == "a loopback address", text
    for text in ("::10.0.0.1", "64:ff9b::a00:1", "::ffff:0:c0a8:101"):
        assert address_problem(text) == "a private address", text
    assert address_problem("64:ff9b::a9fe:a9fe") == "a link-local address"  # the cloud metadata address
    assert address_problem("fec0::1") == address_problem("feff::1") == "a site-local address"
    assert address_problem("64:ff9b::808:808") is None  # NAT64 to a public address is public


def test_url_entries_with_embedded_ipv4_are_refused_each_with_its_own_reason(serve, fake, image_server):
    port = serve()
    local = image_server.url.replace("127.0.0.1", "localhost")
    literals = ["[::127.0.0.1]", "[64:ff9b::7f00:1]", "[::ffff:0:7f00:1]", "[fec0::1]"]
    # many at once: a name that resolves to loopback is refused while others fail for reasons of their own
    entries = [f"{local}/a.png", *(f"http://{literal}:1/a.png" for literal in literals), "http://nowhere.invalid/a.png"]
    answer = upload_json(port, entries * 4)
    errors = [item["error"] for item in answer.json["items"]]
    for number, error in enumerate(errors):
        position = number % 6
        if position == 0:
            assert "localhost resolves to" in error and "loopback" in error, (number, error)
        elif position == 5:
            assert error.startswith("cannot fetch the URL") and "resolves" not in error, (number, error)
        else:
            assert re.fullmatch(r"refused: \S+ is a (loopback|site-local) address \(see --allow-private-urls\)", error)
    assert fake.requests == []


async def test_every_redirect_hop_is_checked(monkeypatch, tmp_path):
    """A public-looking first hop that redirects to loopback is refused at the second hop."""
    from picbeam import server
    from picbeam.server import EntryError, UrlFetcher

    real = server.address_problem
    monkeypatch.setattr(server, "address_problem", lambda text: None if text == "127.0.0.2" else real(text))
    target = ImageServer(png(2, 2, seed=3), address="127.0.0.1")
    try:
        public = ImageServer(b"", address="127.0.0.2")
    except OSError:
        target.close()
        pytest.skip("cannot bind 127.0.0.2 here")
    try:
        async with UrlFetcher(allow_private=False, limit=1024 * 1024, timeout=10) as fetcher:
            path = await fetcher.fetch(f"{public.url}/redirect?to={public.url}/a.png", tmp_path)  # public to public
            assert path.name == "a.png"
            with pytest.raises(EntryError, match=r"127\.0\.0\.1 is a loopback address"):
                await fetcher.fetch(f"{public.url}/redirect?to={target.url}/a.png", tmp_path)
    finally:
        target.close()
        public.close()


def test_bodies_and_lists_are_bounded(serve, fake, images):
    [path] = images(1)
    port = serve(max_body=256 * 1024)
    too_many = upload_json(port, [str(path)] * 101)
    assert too_many.status == 413 and "at most 100" in too_many.json["message"]
    huge = request(port, body=json.dumps({"list": ["x" * (1024 * 1024 + 10)]}))
    assert huge.status == 413
    content_type, body = obsidian_multipart([("1.png", png(300, 300, seed=9))])
    assert len(body) > 256 * 1024
    assert request(port, body=body, headers={"Content-Type": content_type}).status == 413
    assert fake.requests == []


def test_deeply_nested_json_body_is_400(serve, fake):
    port = serve()
    for body in ("[" * 100_000 + "]" * 100_000, '{"list": ' + "[" * 100_000 + "]" * 100_000 + "}"):
        answer = request(port, body=body, headers={"Content-Type": "application/json"})
        assert answer.status == 400, answer.body[:200]
        assert answer.json["message"].startswith("the body is nested too deeply")
    assert request(port, "/heartbeat").status == 200 and fake.requests == []


def dribble_until_closed(connection: socket.socket, byte: bytes = b"X", limit: int = 100) -> bytes:
    """Send a byte every 0.1 s until the server closes the connection (at most ``limit`` bytes); what the
    server answered."""
    connection.settimeout(0.1)
    answer = b""
    for _ in range(limit):
        try:
            connection.sendall(byte)
        except OSError:  # reset: the server closed it
            return answer
        try:
            chunk = connection.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return answer
        if not chunk:
            return answer
        answer += chunk
    raise AssertionError(f"the server kept a dribbling connection open for {limit} bytes")


def test_slow_clients_are_cut_off_and_connections_are_capped(serve, fake):
    port = serve(header_timeout=0.5, body_timeout=0.5, max_connections=6)
    dribblers = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(6)]
    for connection in dribblers:
        connection.sendall(b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    time.sleep(0.2)  # let the server accept them all
    # over the cap: answered at once, before a byte is read
    with socket.create_connection(("127.0.0.1", port), timeout=10) as extra:
        busy = extra.recv(65536)
    assert busy.startswith(b"HTTP/1.1 503 ") and b"too many connections (at most 6)" in busy
    # headers sent a byte at a time never complete: each connection is closed, with no answer
    assert [dribble_until_closed(connection) for connection in dribblers] == [b""] * 6
    for connection in dribblers:
        connection.close()
    # a body sent a byte at a time: 408 and closed
    for content_type in ("application/json", "multipart/form-data; boundary=xyz"):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            slow.sendall(f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
                         "Content-Length: 100000\r\n\r\n--xyz\r\n".encode())  # fmt: skip
            answer = dribble_until_closed(slow, b" ")
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b"the body arrived too slowly" in answer
    # and the server still serves
    assert request(port, "/heartbeat").status == 200
    assert fake.requests == []


# -- the command ---------------------------------------------------------------------------------
def test_serve_command_contract(command, fake, images, tmp_path):
    [path] = images(1)
    server = command(env={"PICBEAM_SERVER_SECRET": SECRET})
    assert server.port, server.stderr
    assert upload_json(server.port, [str(path)]).status == 401
    answer = upload_json(server.port, [str(path)], headers={"Authorization": f"Bearer {SECRET}"})
    assert answer.status == 200 and answer.json["result"] == [fake.file_url(fake.requests[0])]
    code, stderr = server.stop()
    assert code == 0, stderr
    assert SECRET not in stderr and "secret required" in stderr
    assert "POST /upload 401" in stderr and "POST /upload 200 (1 uploaded, 0 failed)" in stderr
    assert "stopped" in stderr and "Traceback" not in stderr


def test_a_shadowed_multipart_library_is_one_line(fake, tmp_path):
    # python-multipart before 0.0.13 installed a `multipart` package of its own, over the library serve uses
    shadow = tmp_path / "old-python-multipart" / "multipart"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("class MultipartParser: ...\n")
    done = run_picbeam("serve", "--host", "fake", "--port", "0", env={"PYTHONPATH": str(shadow.parent)})
    assert done.returncode == 2, done.stderr
    assert "an old python-multipart (before 0.0.13)" in done.stderr and "pip install -U python-multipart" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_listen_beyond_loopback_needs_a_secret(fake):
    done = run_picbeam("serve", "--host", "fake", "--listen", "0.0.0.0:0", env={"PICBEAM_SERVER_SECRET": ""})
    assert done.returncode == 2
    assert "set a secret with --secret or PICBEAM_SERVER_SECRET" in done.stderr and "Traceback" not in done.stderr
    bad = run_picbeam("serve", "--allow-origin", "https://x.example/path")
    assert bad.returncode == 2 and "expected an origin" in bad.stderr


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_client(command, fake, images):
    first, second = images(2)
    server = command()
    url = f"http://127.0.0.1:{server.port}/upload"
    body = json.dumps({"list": [str(first)]})
    done = subprocess.run(["curl", "-s", "-X", "POST", "-H", "Content-Type: application/json", "--data", body, url],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert json.loads(done.stdout)["success"] is True
    done = subprocess.run(["curl", "-s", "-F", f"files=@{second}", "-F", f"files=@{first}", url],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    body = json.loads(done.stdout)
    assert body["success"] is True and len(body["result"]) == 2 and body["items"][1]["reused"] is True
    assert len(fake.requests) == 2
    assert server.stop()[0] == 0


NODE_CLIENT = r"""
const http = require("http");
const fs = require("fs");
const [port, image] = process.argv.slice(2);
const url = `http://127.0.0.1:${port}`;

function chunkedMultipart(name, file) {  // form-data style: streamed, chunked, no Content-Length
  return new Promise((resolve, reject) => {
    const boundary = "--------------------------" + Date.now();
    const request = http.request(`${url}/upload`, {method: "POST", headers: {
      "Content-Type": `multipart/form-data; boundary=${boundary}`}}, response => {
      let body = ""; response.on("data", d => body += d); response.on("end", () => resolve(JSON.parse(body)));
    });
    request.on("error", reject);
    request.write(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="node.png"\r\n`);
    request.write("Content-Type: image/png\r\n\r\n");
    request.write(fs.readFileSync(file));
    request.end(`\r\n--${boundary}--\r\n`);
  });
}

(async () => {
  const times = [];
  let started = Date.now();
  const beat = await (await fetch(`${url}/heartbeat`, {method: "POST"})).json();
  times.push(Date.now() - started);
  started = Date.now();
  const json = await (await fetch(`${url}/upload`, {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({list: [image]})})).json();
  times.push(Date.now() - started);
  started = Date.now();
  const form = await chunkedMultipart("files", image);
  times.push(Date.now() - started);
  started = Date.now();
  const keepAlive = await chunkedMultipart("list", image);
  times.push(Date.now() - started);
  console.log(JSON.stringify({beat, json, form, keepAlive, times}));
})().catch(error => { console.error(error); process.exit(1); });
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_client_fetch_and_streamed_multipart(command, fake, images, tmp_path):
    [path] = images(1)
    script = tmp_path / "client.js"
    script.write_text(NODE_CLIENT)
    server = command()
    done = subprocess.run(["node", str(script), str(server.port), str(path)], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    assert answers["beat"] == {"success": True, "result": "alive"}
    for name in ("json", "form", "keepAlive"):
        assert answers[name]["success"] is True, answers[name]
    assert max(answers["times"]) < 1000, answers["times"]  # no client stalls (PicGo 3.1 saw ~1.5 s per request)
    assert server.stop()[0] == 0


def test_a_plugin_format_shapes_the_result_entries(serve, fake, images):
    """--format NAME in serve: each entry of `result` is that format's text (here a plugin's format)."""
    import types

    from picbeam import hookimpl
    from picbeam.loader import load_plugins

    module = types.ModuleType("org_format")

    @hookimpl
    def register_formats(register):
        register("org", lambda result: f"[[{result.url}]]")

    module.register_formats = register_formats
    plugins = load_plugins(reload=True)
    plugins.add(module, "org_format")
    try:
        port = serve(format="org")
        paths = images(2)
        answer = upload_json(port, [str(p) for p in paths])
        assert answer.status == 200, answer.body
        entries = answer.json["result"]
        assert len(entries) == 2 and all(e.startswith(f"[[{fake.url}/files/") and e.endswith("]]") for e in entries)
        assert all(item["url"] for item in answer.json["items"])
    finally:
        load_plugins(reload=True)


def test_serve_and_a_command_at_once_over_one_ledger_send_a_file_once(serve, fake, tmp_path):
    """An editor posts a screenshot to the server while a `picbeam upload` of the same file runs: the
    server claims what it sends in the ledger like any run, so the command waits and reuses its upload."""
    from picbeam.testing import Reply

    fake.respond_with(lambda recorded, host: Reply(json=host.default_reply(recorded).json, delay=2.0))
    port = serve()
    shot = tmp_path / "shot.png"
    shot.write_bytes(png(9, 9, seed=91))
    content_type, body = obsidian_multipart([("shot.png", shot.read_bytes())])
    answers: list[Answer] = []
    poster = threading.Thread(target=lambda: answers.append(request(port, body=body,
                              headers={"Content-Type": content_type})))  # fmt: skip
    poster.start()
    deadline = time.monotonic() + 20
    while not fake.requests and time.monotonic() < deadline:  # the server's upload is on its way
        time.sleep(0.02)
    done = run_picbeam("upload", shot, "--host", "fake", "--format", "json")
    poster.join(30)
    assert done.returncode == 0, done.stderr
    assert [answer.status for answer in answers] == [200]
    assert len(fake.requests) == 1
    record = json.loads(done.stdout)
    assert record["reused"] and record["url"] == answers[0].json["result"][0]
