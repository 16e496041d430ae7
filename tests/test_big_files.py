"""Big files: sent with sendfile, hashed in a thread while they are sent, and still deduped exactly.

A file of HASH_WHILE_SENDING_FROM bytes or more, sent to a remote-API host, starts its upload before its
hash is known; until then it is known by its size. These tests hold that to the same promises as any
other file: the ledger records the real hash, a copy is never sent twice (in one run, in a later run, in
two runs at once), other content of the same size is never mistaken for it, and a plugin reading
``item.sha256`` sees the real digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from picbeam.loading import HASH_WHILE_SENDING_FROM
from picbeam.testing import Reply, run_picbeam, write_host
from test_audit_ledger import install_plugin
from test_audit_ledger import ledger_rows as rows

BIG = HASH_WHILE_SENDING_FROM + 1024 * 1024


def chunk(kind: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def big_png(path: Path, seed: int, size: int = BIG, text: bool = True) -> Path:
    """A PNG of ``size`` bytes whose bulk is one IDAT chunk of bytes that differ with ``seed``; with a tEXt
    chunk for the default settings to strip (so what is sent differs from what is hashed)."""
    head = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", (1).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0]))
    head += chunk(b"tEXt", b"Comment\x00secret place") if text else b""
    tail = chunk(b"IEND", b"")
    filler = hashlib.sha256(str(seed).encode()).digest() * ((size - len(head) - len(tail) - 12) // 32 + 1)
    path.write_bytes(head + chunk(b"IDAT", filler[: size - len(head) - len(tail) - 12]) + tail)
    assert path.stat().st_size == size
    return path


@pytest.fixture
def fake(fake_host, hosts_dir):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url", timeout=30)
    return ["--host", "fake"]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("settings", [[], ["--keep-metadata"]], ids=["strip", "keep-metadata"])
def test_a_big_file_is_recorded_with_its_real_hash_and_reused_next_time(fake, fake_host, home, tmp_path, settings):
    path = big_png(tmp_path / "big.png", seed=1)
    done = run_picbeam("upload", path, *fake, *settings, "--format", "json")
    assert done.returncode == 0, done.stderr
    [record] = [json.loads(line) for line in done.lines]
    assert record["sha256"] == digest(path) and record["bytes"] > 0 and not record["reused"]
    [request] = fake_host.requests
    sent = request.file.data
    if settings:  # sent as it is, byte for byte
        assert sent == path.read_bytes()
    else:  # streamed through the stripper: everything but the tEXt chunk
        assert b"secret place" not in sent and len(sent) == BIG - len(chunk(b"tEXt", b"Comment\x00secret place"))
    [row] = rows(home)
    assert row["sha256"] == digest(path)
    again = run_picbeam("upload", path, *fake, *settings, "--format", "json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["reused"] and len(fake_host.requests) == 1


@pytest.mark.parametrize("ledger", [[], ["--no-ledger"]], ids=["ledger", "no-ledger"])
def test_big_files_of_one_size_are_each_sent_once(fake, fake_host, home, tmp_path, ledger):
    first = big_png(tmp_path / "a.png", seed=1)
    other = big_png(tmp_path / "b.png", seed=2)  # the same size, other content
    (tmp_path / "c.png").write_bytes(first.read_bytes())  # a copy of the first
    done = run_picbeam("upload", first, other, tmp_path / "c.png", *fake, *ledger, "--format", "json", "-j", "3")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.lines]
    assert [r["sha256"] for r in records] == [digest(first), digest(other), digest(first)]
    assert len(fake_host.requests) == 2
    assert sorted(r.file.filename for r in fake_host.requests) == ["a.png", "b.png"] or sorted(
        r.file.filename for r in fake_host.requests
    ) == ["b.png", "c.png"]
    assert records[0]["url"] == records[2]["url"] != records[1]["url"]
    assert [r["reused"] for r in records].count(True) == 1


def test_a_size_already_recorded_is_hashed_first_and_other_content_is_sent(fake, fake_host, home, tmp_path):
    first = big_png(tmp_path / "a.png", seed=1)
    assert run_picbeam("upload", first, *fake).returncode == 0
    other = big_png(tmp_path / "b.png", seed=2)
    done = run_picbeam("upload", other, first, *fake, "--format", "json")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.lines]
    assert [r["reused"] for r in records] == [False, True]
    assert [r["sha256"] for r in records] == [digest(other), digest(first)]
    assert len(fake_host.requests) == 2 and [row["sha256"] for row in rows(home)] == [digest(first), digest(other)]


def test_two_runs_at_once_send_one_big_file_once(fake, fake_host, home, tmp_path):
    path = big_png(tmp_path / "big.png", seed=3)
    # The host answers slowly, so the second run starts while the first is still sending.
    fake_host.respond_with(lambda request, host: Reply(json=host.default_reply(request).json, delay=1.0))
    command = [sys.executable, "-m", "picbeam", "upload", str(path), *fake, "--format", "json"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-1000:] for _, err in outputs]
    records = [json.loads(stdout) for stdout, _ in outputs]
    assert len(fake_host.requests) == 1
    assert records[0]["url"] == records[1]["url"] and sorted(r["reused"] for r in records) == [False, True]
    assert [row["sha256"] for row in rows(home)] == [digest(path)]
    with sqlite3.connect(home / "data" / "picbeam" / "ledger.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM claims").fetchone()[0] == 0  # every claim released


def test_a_plugin_reading_the_hash_of_a_big_file_gets_the_real_one(fake, fake_host, home, tmp_path):
    peeked = tmp_path / "peeked.txt"
    env = install_plugin(
        tmp_path / "site",
        "peek",
        "import os\nfrom picbeam import hookimpl\n\n@hookimpl\ndef prepare_upload(item):\n"
        "    with open(os.environ['PEEKED'], 'a') as out:\n        out.write(item.sha256 + '\\n')\n",
    )
    path = big_png(tmp_path / "big.png", seed=4)
    done = run_picbeam("upload", path, *fake, env={**env, "PEEKED": str(peeked)})
    assert done.returncode == 0, done.stderr
    assert peeked.read_text().split() == [digest(path)]


def test_a_big_file_cut_short_while_it_is_sent_fails_in_one_line_and_is_not_recorded(hosts_dir, home, tmp_path):
    from aiohttp import web
    from picbeam.testing import serving

    path = big_png(tmp_path / "big.png", seed=5, size=4 * BIG, text=False)
    arrived: list[int] = []

    async def upload(request: web.Request) -> web.Response:
        os.truncate(path, BIG)  # as soon as the upload starts, the file loses three quarters of itself
        arrived.append(len(await request.read()))
        return web.json_response({"data": {"url": "http://127.0.0.1/never.png"}})

    app = web.Application(client_max_size=1024**3)
    app.router.add_post("/upload", upload)
    with serving(app) as url:
        write_host(hosts_dir, "cut", endpoint=url + "/upload", url_path="data.url", body="binary", timeout=30)
        done = run_picbeam("upload", path, "--host", "cut", "--keep-metadata", "--retries", "0")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if "big.png" in line]
    assert len(lines) == 1 and ("changed" in lines[0] or "shorter" in lines[0]), done.stderr
    assert not (home / "data" / "picbeam" / "ledger.sqlite3").exists() or rows(home) == []


@pytest.fixture(scope="module")
def tls_host(tmp_path_factory):
    """A loopback host over HTTPS with its own certificate, which records the file bytes of each upload:
    over TLS a file cannot go out with sendfile, so it is read and written as aiohttp does."""
    import shutil
    import ssl

    from aiohttp import web
    from picbeam.testing import serving

    if shutil.which("openssl") is None:
        pytest.skip("needs openssl(1) to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", folder / "key.pem",
                    "-out", folder / "cert.pem", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    received: list[bytes] = []

    async def upload(request: web.Request) -> web.Response:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if part.filename:
                received.append(bytes(await part.read()))
        return web.json_response({"data": {"url": f"https://127.0.0.1/{len(received)}.png"}})

    app = web.Application(client_max_size=1024**3)
    app.router.add_post("/upload", upload)
    with serving(app, ssl_context=context) as url:
        yield {"endpoint": url + "/upload", "cert": folder / "cert.pem", "received": received}


@pytest.mark.parametrize("settings", [[], ["--keep-metadata"]], ids=["strip", "keep-metadata"])
def test_over_tls_big_and_small_files_arrive_intact(tls_host, hosts_dir, home, tmp_path, settings):
    write_host(hosts_dir, "tls", endpoint=tls_host["endpoint"], url_path="data.url", timeout=30)
    big = big_png(tmp_path / "big.png", seed=6)
    small = big_png(tmp_path / "small.png", seed=7, size=2 * 1024 * 1024)
    tls_host["received"].clear()
    done = run_picbeam("upload", big, small, "--host", "tls", *settings, "--format", "json", "-j", "1",
                       env={"SSL_CERT_FILE": str(tls_host["cert"])})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["sha256"] for line in done.lines] == [digest(big), digest(small)]
    text = chunk(b"tEXt", b"Comment\x00secret place")
    expected = [p.read_bytes() if settings else p.read_bytes().replace(text, b"") for p in (big, small)]
    assert sorted(tls_host["received"]) == sorted(expected)  # in whichever order they were sent


@pytest.mark.parametrize("size", [512 * 1024, BIG], ids=["streamed", "hashed-while-sent"])
def test_copies_named_on_the_command_line_never_wait_on_each_other(fake, fake_host, tmp_path, size):
    """Copies of one file, each loaded by its own worker, meet in flight: the one that claimed the content
    in the ledger first is sent, the others reuse it. (A copy once waited on its twin's ledger claim while
    the twin waited on the copy's upload: the run hung.) The race is timing-dependent, so it runs a few times."""
    first = big_png(tmp_path / "a.png", seed=8, size=size)
    copies = [first]
    for name in ("b.png", "c.png", "d.png"):
        copies.append(tmp_path / name)
        copies[-1].write_bytes(first.read_bytes())
    for attempt in range(5):
        fake_host.requests.clear()
        done = run_picbeam("upload", *copies, *fake, "--ledger", tmp_path / f"ledger-{attempt}.sqlite3",
                           "--format", "json", "-j", "4", timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        records = [json.loads(line) for line in done.lines]
        assert len(fake_host.requests) == 1 and len({r["url"] for r in records}) == 1
        assert sorted(r["reused"] for r in records) == [False, True, True, True]


def test_a_big_file_removed_before_it_is_hashed_fails_in_one_line(hosts_dir, home, tmp_path):
    """Three big files hashed by two threads: the third waits its turn, and the host removes it as soon as
    the first upload starts. That file fails in one clear line; the others are sent and recorded."""
    from aiohttp import web
    from picbeam.testing import serving

    paths = []
    for number, size in enumerate((300, 301, 302)):  # MB, sparse on disk: hashing each takes a while
        path = tmp_path / f"f{number}.png"
        with open(path, "wb") as handle:
            handle.write(b"\x89PNG\r\n\x1a\n" + bytes([number]) * 64)
            handle.truncate(size * 1024 * 1024)
        paths.append(path)

    async def upload(request: web.Request) -> web.Response:
        paths[2].unlink(missing_ok=True)
        await request.read()
        return web.json_response({"data": {"url": f"http://127.0.0.1/{request.headers['Content-Length']}.png"}})

    app = web.Application(client_max_size=1024**3)
    app.router.add_post("/upload", upload)
    with serving(app) as url:
        write_host(hosts_dir, "gone", endpoint=url + "/upload", url_path="data.url", body="binary", timeout=60)
        done = run_picbeam("upload", *paths, "--host", "gone", "--keep-metadata", "--retries", "0", "-j", "3")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if "f2.png" in line]
    assert len(lines) == 1 and ("disappeared" in lines[0] or "cannot read" in lines[0]), done.stderr
    assert sorted(Path(row["path"]).name for row in rows(home)) == ["f0.png", "f1.png"]
