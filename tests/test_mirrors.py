"""Mirrors and failover: every file to every host, a fallback for what the primary fails on."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from picbeam.testing import FakeHost, Reply, run_picbeam, write_host


@pytest.fixture
def two_hosts(hosts_dir: Path) -> Iterator[tuple[FakeHost, FakeHost]]:
    with FakeHost() as a, FakeHost() as b:
        write_host(hosts_dir, "a", endpoint=a.endpoint(), url_path="data.url")
        write_host(hosts_dir, "b", endpoint=b.endpoint(), url_path="data.url")
        yield a, b


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_file_goes_to_every_host(two_hosts: tuple[FakeHost, FakeHost], images, tmp_path: Path) -> None:
    a, b = two_hosts
    files = images(3)
    result = run_picbeam("upload", *files, "--host", "a", "--host", "b")
    assert result.returncode == 0, result.stderr
    assert len(result.lines) == 3 and all(line.startswith(a.url) for line in result.lines)
    assert set(a.accepted()) == set(b.accepted()) == {sha(f) for f in files}
    assert "done: 3 uploaded, 0 already uploaded, 0 failed" in result.stderr  # counted per input
    # each host has its own ledger rows: a re-run sends nothing to either
    again = run_picbeam("upload", *files, "--host", "a", "--host", "b", "--format", "json")
    assert again.returncode == 0, again.stderr
    records = [json.loads(line) for line in again.lines]
    assert [r["path"] for r in records] == [str(f) for f in files]
    assert all([m["host"] for m in r["mirrors"]] == ["a", "b"] for r in records)
    assert all(r["mirrors"][1]["url"].startswith(b.url) for r in records)
    assert len(a.requests) == len(b.requests) == 3


def test_a_failing_mirror_is_reported_and_the_first_host_still_answers(
    two_hosts: tuple[FakeHost, FakeHost], images
) -> None:
    a, b = two_hosts
    b.reply(status=500, json={"success": False, "message": "mirror down"})
    files = images(2)
    result = run_picbeam("upload", *files, "--host", "a", "--host", "b", "--retries", "0", "--format", "json")
    assert result.returncode == 1
    records = [json.loads(line) for line in result.lines]
    assert [r["url"].startswith(a.url) for r in records] == [True, True]
    assert all(r["mirrors"] == [{"host": "a", "url": r["url"]}, {"host": "b", "url": None}] for r in records)
    assert result.stderr.count(": b: ") == 2 and "mirror down" in result.stderr
    assert "Traceback" not in result.stderr


def test_fallback_takes_what_the_primary_fails_on(two_hosts: tuple[FakeHost, FakeHost], images) -> None:
    a, b = two_hosts
    files = images(3)
    refused = sha(files[1])
    a.respond_with(
        lambda request, host: (
            host.default_reply(request)
            if hashlib.sha256(request.content).hexdigest() != refused
            else Reply(status=413, json={"success": False, "message": "too big"})
        )
    )
    result = run_picbeam("upload", *files, "--host", "a", "--fallback", "b", "--retries", "0")
    assert result.returncode == 0, result.stderr
    assert [line.split("/files/")[0] for line in result.lines] == [a.url, b.url, a.url]
    assert set(b.accepted()) == {refused}
    assert f"{files[1]}: a: " in result.stderr  # the primary's failure is still said


def test_a_hosts_mirrors_field_makes_them_permanent(hosts_dir: Path, images) -> None:
    with FakeHost() as a, FakeHost() as b:
        write_host(hosts_dir, "b", endpoint=b.endpoint(), url_path="data.url")
        write_host(hosts_dir, "a", endpoint=a.endpoint(), url_path="data.url", mirrors=["b"])
        files = images(2)
        result = run_picbeam("upload", *files, "--host", "a")
        assert result.returncode == 0, result.stderr
        assert all(line.startswith(a.url) for line in result.lines)
        assert set(b.accepted()) == {sha(f) for f in files}


def test_an_unknown_mirror_is_one_clear_line(hosts_dir: Path, images) -> None:
    write_host(hosts_dir, "a", endpoint="http://127.0.0.1:9/upload", url_path="data.url", mirrors=["nowhere"])
    result = run_picbeam("upload", *images(1), "--host", "a")
    assert result.returncode == 2
    assert "unknown host 'nowhere'" in result.stderr and "Traceback" not in result.stderr


def test_serve_mirrors_and_falls_back(two_hosts: tuple[FakeHost, FakeHost], images) -> None:
    from test_serve import InProcessServer, upload_json

    a, b = two_hosts
    first, second = images(2)
    with InProcessServer(host="a", mirrors=("b",)) as server:
        answer = upload_json(server.port, [str(first)])
    assert answer.status == 200, answer.body
    assert answer.json["result"][0].startswith(a.url)
    assert set(b.accepted()) == {sha(first)}

    a.reply(status=413, json={"success": False, "message": "too big"})  # not retried
    with InProcessServer(host="a", fallbacks=("b",)) as server:
        answer = upload_json(server.port, [str(second)])
    assert answer.status == 200, answer.body
    assert answer.json["result"][0].startswith(b.url)
    assert any(": a: " in line for line in server.lines)


def test_serve_and_watch_refuse_an_unknown_mirror_at_start(two_hosts, tmp_path: Path) -> None:
    for command in (("serve", "--port", "0"), ("watch", str(tmp_path))):
        result = run_picbeam(*command, "--host", "a", "--host", "nowhere", timeout=30)
        assert result.returncode == 2, result.stderr
        assert "unknown host 'nowhere'" in result.stderr


def test_watch_sends_each_file_to_every_host(
    two_hosts: tuple[FakeHost, FakeHost], hosts_dir: Path, tmp_path: Path
) -> None:
    from picbeam.samples import png
    from test_watch import Watch

    a, b = two_hosts
    write_host(hosts_dir, "fake", endpoint=a.endpoint(), url_path="data.url")  # the host Watch names first
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    watch = Watch(inbox, "--host", "b")
    try:
        data = png(6, 6, seed=9)
        (inbox / "shot.png").write_bytes(data)
        watch.wait_for(lambda: len(watch.stdout) >= 1, "a result")
    finally:
        assert watch.stop() == 0, watch.stderr
    assert watch.stdout[0].startswith(a.url)
    digest = hashlib.sha256(data).hexdigest()
    assert set(a.accepted()) == set(b.accepted()) == {digest}


def test_watch_with_many_mirrors_does_not_run_out_of_threads(hosts_dir: Path, tmp_path: Path) -> None:
    from picbeam.samples import png
    from test_watch import Watch

    hosts = [FakeHost().start() for _ in range(9)]
    try:
        write_host(hosts_dir, "fake", endpoint=hosts[0].endpoint(), url_path="data.url")
        names = []
        for number, host in enumerate(hosts[1:]):
            write_host(hosts_dir, f"m{number}", endpoint=host.endpoint(), url_path="data.url")
            names += ["--host", f"m{number}"]
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        watch = Watch(inbox, *names)
        try:
            for n in range(3):
                (inbox / f"shot{n}.png").write_bytes(png(4, 4, seed=40 + n))
            watch.wait_for(lambda: len(watch.stdout) >= 3, "three results")
        finally:
            assert watch.stop() == 0, watch.stderr
        assert all(len(host.accepted()) == 3 for host in hosts)
    finally:
        for host in hosts:
            host.stop()
