"""Nothing lost: a ledger that cannot be written, a plugin that raises, two processes over one ledger."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from picbeam.testing import Reply, run_picbeam, write_host

needs_root_unshare = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare(1) to mount a small tmpfs"
)


@pytest.fixture
def fake(fake_host, hosts_dir, fast_retries):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url", timeout=5)
    return ["--host", "fake"]


def accepted_urls(fake_host) -> list[str]:
    return [fake_host.file_url(request) for request in fake_host.requests]


@needs_root_unshare
def test_a_full_ledger_stops_the_run_and_every_accepted_url_is_still_printed(fake, fake_host, images, tmp_path):
    paths = images(200)
    # Large answers fill the 160 KB ledger after a few dozen rows.
    fake_host.respond_with(
        lambda request, host: Reply(json={"success": True, "data": {"url": host.file_url(request), "pad": "x" * 3000}})
    )
    small = tmp_path / "small"
    small.mkdir()
    ledger = small / "ledger.sqlite3"
    command = [sys.executable, "-m", "picbeam", "upload", str(tmp_path / "images"), *fake, "-j", "4"]
    script = 'mount -t tmpfs -o size=160k tmpfs "$1" && shift && exec "$@"'
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", str(small), *command, "--ledger", str(ledger)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert "rollback" not in done.stderr
    full = [line for line in done.stderr.splitlines() if "ledger" in line]
    assert len(full) == 1 and f"ledger {ledger}: database or disk is full" in full[0], done.stderr
    printed = [line for line in done.stdout.splitlines() if line]
    # Every upload the host accepted is printed, in input order, recorded or not.
    assert sorted(printed) == sorted(accepted_urls(fake_host))
    names = [url.rsplit("/", 1)[1] for url in printed]
    assert names == sorted(names) == [p.name for p in paths[: len(names)]]
    # Nothing new started after the first failed commit: only the uploads then in flight followed it.
    assert 0 < len(fake_host.requests) < 40
    print(done.stderr)
    print(f"\nfull ledger: the host saw {len(fake_host.requests)} of 200 requests; {len(printed)} URLs printed")


@needs_root_unshare
def test_serve_with_a_full_ledger_says_so_once_and_uploads_nothing_it_cannot_record(fake, fake_host, tmp_path):
    """picbeam serve's long-lived batch: the request during which the ledger fills gets its URLs (the host
    has the files), the log says so in one line, and later requests are refused with that line, not
    uploaded unrecorded; the server still answers."""
    import http.client
    import json
    import re
    import threading
    import time

    from picbeam.samples import png

    fake_host.respond_with(
        lambda request, host: Reply(json={"success": True, "data": {"url": host.file_url(request), "pad": "x" * 3000}})
    )
    small = tmp_path / "small"
    small.mkdir()
    ledger = small / "ledger.sqlite3"
    script = 'mount -t tmpfs -o size=160k tmpfs "$1" && shift && exec "$@"'
    command = [sys.executable, "-m", "picbeam", "serve", "--port", "0", *fake, "--ledger", str(ledger)]
    server = subprocess.Popen(["unshare", "-m", "sh", "-c", script, "sh", str(small), *command],
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(server.stderr or []), daemon=True).start()
    try:
        for _ in range(600):
            if port := re.search(r"127\.0\.0\.1:(\d+)/upload", "".join(lines)):
                break
            time.sleep(0.05)
        assert port, lines

        def post(number: int) -> tuple[int, dict]:
            connection = http.client.HTTPConnection("127.0.0.1", int(port.group(1)), timeout=30)
            body = (f'--b\r\nContent-Disposition: form-data; name="files"; filename="{number}.png"\r\n\r\n'.encode()
                    + png(4, 4, seed=number) + b"\r\n--b--\r\n")  # fmt: skip
            form = {"Content-Type": "multipart/form-data; boundary=b"}
            connection.request("POST", "/upload", body=body, headers=form)
            answer = connection.getresponse()
            return answer.status, json.loads(answer.read())

        answers = [post(number) for number in range(80)]
        heartbeat = http.client.HTTPConnection("127.0.0.1", int(port.group(1)), timeout=30)
        heartbeat.request("GET", "/heartbeat")
        assert heartbeat.getresponse().status == 200
    finally:
        server.send_signal(2)
        server.wait(30)
        time.sleep(0.1)
    log = "".join(lines)
    assert "Traceback" not in log and "internal error" not in log, log
    full = [line for line in log.splitlines() if "database or disk is full" in line and "/upload" not in line]
    assert len(full) == 1 and f"ledger {ledger}: database or disk is full" in full[0], log
    uploaded = [body["result"][0] for status, body in answers if status == 200]
    refused = [body["message"] for status, body in answers if status != 200]
    # Every file the host accepted went back to its client; nothing was sent after the ledger filled.
    assert sorted(uploaded) == sorted(accepted_urls(fake_host))
    assert 0 < len(uploaded) < 60 and len(refused) == 80 - len(uploaded)
    assert all(f"ledger {ledger}: database or disk is full" in message and "restart picbeam serve" in message
               for message in refused), refused[:1]  # fmt: skip


def install_plugin(folder: Path, name: str, source: str) -> dict[str, str]:
    """A real third-party plugin: a module and its distribution metadata on PYTHONPATH (an entry point)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(source, encoding="utf-8")
    info = folder / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[picbeam]\n{name} = {name}\n", encoding="utf-8")
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}


def ledger_rows(home: Path) -> list[dict]:
    with sqlite3.connect(home / "data" / "picbeam" / "ledger.sqlite3") as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM uploads ORDER BY id")]


def test_after_upload_raising_never_undoes_an_upload(fake, fake_host, images, tmp_path, home):
    env = install_plugin(
        tmp_path / "site",
        "grumpy",
        "from picbeam import hookimpl\n\n@hookimpl\ndef after_upload(result):\n    raise RuntimeError('boom')\n",
    )
    paths = images(5)
    done = run_picbeam("upload", *paths, *fake, env=env)
    assert done.returncode == 0, done.stderr
    assert len(done.lines) == 5 and all(line.startswith(fake_host.url) for line in done.lines)
    assert sorted(done.lines) == sorted(accepted_urls(fake_host))
    assert len(ledger_rows(home)) == 5
    reports = [line for line in done.stderr.splitlines() if "after_upload" in line]
    assert reports == ["picbeam: plugin 'grumpy' (grumpy): after_upload failed: RuntimeError: boom"], done.stderr
    # Re-run: all five are in the ledger, none is sent again.
    again = run_picbeam("upload", *paths, *fake, env=env)
    assert again.returncode == 0 and len(fake_host.requests) == 5


def test_two_runs_at_once_over_one_ledger_send_each_content_once(fake, fake_host, images, tmp_path, home):
    paths = images(600)
    # A host that takes a few milliseconds per file keeps both runs busy at the same time.
    fake_host.respond_with(lambda request, host: Reply(json=host.default_reply(request).json, delay=0.005))
    command = [sys.executable, "-m", "picbeam", "upload", str(tmp_path / "images"), *fake, "-j", "4"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-1000:] for _, err in outputs]
    for stdout, _ in outputs:  # each run prints a URL for every file, in input order
        names = [line.rsplit("/", 1)[1] for line in stdout.splitlines()]
        assert names == [p.name for p in paths]
    accepted = fake_host.accepted()
    print(f"\ntwo runs over one ledger: the host saw {len(fake_host.requests)} requests for 600 files")
    assert len(accepted) == 600 and set(accepted.values()) == {1}
    assert len(fake_host.requests) == 600
    assert len(ledger_rows(home)) == 600
    with sqlite3.connect(home / "data" / "picbeam" / "ledger.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM claims").fetchone()[0] == 0  # every claim released


def test_a_claim_left_by_a_process_that_died_is_void(fake, fake_host, images, home):
    import hashlib
    import socket
    import time

    [path] = images(1)
    from picbeam.ledger import Ledger

    Ledger(home / "data" / "picbeam" / "ledger.sqlite3").close()  # an empty ledger of this schema
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with sqlite3.connect(home / "data" / "picbeam" / "ledger.sqlite3") as db:
        db.execute(
            "INSERT INTO claims VALUES (?, 'fake', ?, 'strip', ?, ?, ?)",
            (
                hashlib.sha256(path.read_bytes()).hexdigest(),
                fake_host.endpoint(),
                socket.gethostname(),
                int(dead.stdout),
                time.time() + 3600,
            ),
        )
    done = run_picbeam("upload", path, *fake, timeout=30)
    assert done.returncode == 0, done.stderr
    assert len(fake_host.requests) == 1
    with sqlite3.connect(home / "data" / "picbeam" / "ledger.sqlite3") as db:  # the dead claim was taken over
        assert db.execute("SELECT count(*) FROM claims").fetchone()[0] == 0
