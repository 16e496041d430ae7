"""`picbeam watch`: the real command in a subprocess, files written into the folder, stopped with Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from picbeam.samples import png
from picbeam.testing import write_host


class Watch:
    running: list[subprocess.Popen[str]] = []

    def __init__(self, folder: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "picbeam", "watch", str(folder), "--host", "fake", "--settle", "0.3", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        Watch.running.append(self.process)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        threading.Thread(target=self._read, args=(self.process.stdout, self.stdout), daemon=True).start()
        threading.Thread(target=self._read, args=(self.process.stderr, self.stderr), daemon=True).start()
        self.wait_for(lambda: any("watching" in line for line in self.stderr), "the watching line")

    @staticmethod
    def _read(stream, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def wait_for(self, condition, what: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"no {what}: stdout {self.stdout}, stderr {self.stderr}")
            time.sleep(0.05)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(20)
        time.sleep(0.1)  # let the readers drain
        return code


@pytest.fixture(autouse=True)
def no_watch_left_running():
    """A failed test must not leave a watcher behind."""
    yield
    while Watch.running:
        process = Watch.running.pop()
        if process.poll() is None:
            process.kill()
            process.wait(10)


@pytest.fixture
def watched(fake_host, hosts_dir, tmp_path):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def sent(fake_host) -> Counter[str]:
    return Counter(request.file.filename for request in fake_host.requests)


def test_each_file_is_uploaded_once_when_completely_written(watched, fake_host):
    watch = Watch(watched)
    quick = png(8, 8, seed=1)
    (watched / "quick.png").write_bytes(quick)
    slow = png(40, 40, seed=2)
    with open(watched / "slow.png", "wb") as handle:  # pauses longer than --settle: only the end marker tells
        for start in range(0, len(slow), len(slow) // 4 + 1):
            handle.write(slow[start : start + len(slow) // 4 + 1])
            handle.flush()
            time.sleep(0.5)
    (watched / "notes.txt").write_text("not an image")
    (watched / ".hidden.png").write_bytes(png(2, 2, seed=3))
    (watched / "download.png.part").write_bytes(png(2, 2, seed=4))
    os.rename(watched / "download.png.part", watched / "renamed.png")
    watch.wait_for(lambda: len(watch.stdout) >= 3, "three results")
    time.sleep(1.0)  # anything else would have landed by now
    assert watch.stop() == 0, watch.stderr
    assert sent(fake_host) == {"quick.png": 1, "slow.png": 1, "renamed.png": 1}
    data = {request.file.filename: request.file.data for request in fake_host.requests}
    assert data["quick.png"] == quick and data["slow.png"] == slow
    urls = {fake_host.file_url(request) for request in fake_host.requests}
    assert set(watch.stdout) == urls and len(watch.stdout) == 3  # each result printed as it landed
    assert "stopped: 3 uploaded, 0 already uploaded, 0 failed" in "\n".join(watch.stderr)
    assert not any("Traceback" in line for line in watch.stderr)


def test_a_changed_file_is_uploaded_again_and_a_restart_does_not_reupload(watched, fake_host):
    watch = Watch(watched, "--format", "markdown")
    (watched / "a.png").write_bytes(png(5, 5, seed=10))
    watch.wait_for(lambda: len(watch.stdout) >= 1, "a result")
    (watched / "a.png").write_bytes(png(5, 5, seed=11))  # new content: a new upload
    watch.wait_for(lambda: len(watch.stdout) >= 2, "the changed file's result")
    assert watch.stop() == 0
    assert all(line.startswith("![a](http://127.0.0.1") for line in watch.stdout)
    assert sent(fake_host) == {"a.png": 2}

    (watched / "b.png").write_bytes(png(5, 5, seed=12))  # written while nothing watched
    again = Watch(watched, "--existing")
    again.wait_for(lambda: len(again.stdout) >= 1, "b's result")
    os.utime(watched / "a.png")  # touched, same content: the ledger has it
    again.wait_for(lambda: len(again.stdout) >= 2, "a's reused result")
    assert again.stop() == 0
    assert sent(fake_host) == {"a.png": 2, "b.png": 1}
    assert "stopped: 1 uploaded, 2 already uploaded, 0 failed" in "\n".join(again.stderr)


def test_watch_needs_a_folder(tmp_path, fake_host, hosts_dir):
    from picbeam.testing import run_picbeam

    done = run_picbeam("watch", tmp_path / "nope")
    assert done.returncode == 2 and "not a folder" in done.stderr


def test_watch_takes_what_upload_takes(watched, fake_host):
    """Issue 13 item 11: --set, processing flags, --include/--exclude, --dry-run and --format in watch."""
    import json

    watch = Watch(watched, "--set", "form.album=shots", "--rename", "web/{name}{ext}", "--exclude", "skip*",
                  "--format", "json")  # fmt: skip
    (watched / "skip-me.png").write_bytes(png(8, 8, seed=11))
    (watched / "keep.png").write_bytes(png(8, 8, seed=12))
    watch.wait_for(lambda: watch.stdout, "a result line")
    watch.stop()
    [line] = watch.stdout
    record = json.loads(line)
    assert record["path"].endswith("keep.png") and record["url"]  # the json line says which file it is
    [request] = fake_host.requests
    assert request.file.filename == "web/keep.png" and request.form["album"] == "shots"

    dry = Watch(watched, "--dry-run", "--existing")
    dry.wait_for(lambda: len(dry.stdout) >= 1, "a dry-run line")
    dry.stop()
    assert all(line.startswith("would ") for line in dry.stdout) and len(fake_host.requests) == 1
