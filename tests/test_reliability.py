"""Nothing lost: faults, retries, throttling, interruption, and the ledger that makes re-runs safe."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from picbeam.testing import Reply, run_picbeam, write_host


@pytest.fixture
def fake(fake_host, hosts_dir, fast_retries):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url", timeout=2)
    return ["--host", "fake"]


def ledger_rows(home: Path) -> list[dict]:
    with sqlite3.connect(home / "data" / "picbeam" / "ledger.sqlite3") as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM uploads ORDER BY id")]


def test_300_files_with_30_percent_transient_faults_each_arrive_once(fake, fake_host, images, tmp_path, home):
    paths = images(300)
    # Answers fail a file at most twice; connection drops mid-body (5% of requests) are not capped,
    # so six retries make a file that still fails astronomically unlikely.
    injector = fake_host.inject_faults(0.3, per_file=2, seed=7)
    done = run_picbeam("upload", tmp_path / "images", *fake, "-j", "8", "--format", "json", "--retries", "6")
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in done.lines]
    assert [r["path"] for r in records] == [str(p) for p in paths]
    assert all(r["url"] and not r["error"] for r in records)
    accepted = fake_host.accepted()
    assert len(accepted) == 300 and set(accepted.values()) == {1}  # every file accepted exactly once
    rows = ledger_rows(home)
    assert sorted((r["path"], r["url"]) for r in rows) == sorted((r["path"], r["url"]) for r in records)
    faults = sum(injector.injected.values())
    assert faults >= 60
    print(
        f"\nfault suite: 300 files, {faults} injected faults {dict(injector.injected)}, "
        f"{len(fake_host.requests)} requests read in full, "
        f"{(len(fake_host.requests) + injector.injected['drop-mid-body']) / 300:.2f} requests per file"
    )


def test_permanent_faults_are_reported_and_a_rerun_sends_only_those(fake, fake_host, images, tmp_path, home):
    paths = images(40)
    broken = {p.name for p in paths[::7]}

    def refuse_some(request, host):
        if request.file.filename in broken:
            return Reply(status=400, json={"message": "unsupported image"})
        return host.default_reply(request)

    fake_host.respond_with(refuse_some)
    done = run_picbeam("upload", tmp_path / "images", *fake, "-j", "6")
    assert done.returncode == 1
    failed_lines = [line for line in done.stderr.splitlines() if "HTTP 400" in line and "unsupported image" in line]
    assert len(failed_lines) == len(broken)
    assert all(any(name in line for line in failed_lines) for name in broken)
    assert len(fake_host.requests) == 40  # a 4xx is not retried
    assert len(ledger_rows(home)) == 40 - len(broken)

    fake_host.respond_with(lambda request, host: host.default_reply(request))  # the host recovers
    before = len(fake_host.requests)
    done = run_picbeam("upload", tmp_path / "images", *fake, "--format", "json")
    assert done.returncode == 0
    sent = {r.file.filename for r in fake_host.requests[before:]}
    assert sent == broken
    reused = [json.loads(line)["reused"] for line in done.lines]
    assert reused.count(True) == 40 - len(broken)


def test_rerun_reuses_ledger_and_force_uploads_again(fake, fake_host, images, tmp_path):
    images(5)
    first = run_picbeam("upload", tmp_path / "images", *fake)
    second = run_picbeam("upload", tmp_path / "images", *fake, "--format", "json")
    assert first.returncode == second.returncode == 0
    assert len(fake_host.requests) == 5
    assert [json.loads(line)["url"] for line in second.lines] == first.lines
    assert all(json.loads(line)["reused"] for line in second.lines)
    assert run_picbeam("upload", tmp_path / "images", *fake, "--force").returncode == 0
    assert len(fake_host.requests) == 10
    assert run_picbeam("upload", tmp_path / "images", *fake, "--no-ledger").returncode == 0
    assert len(fake_host.requests) == 15


def test_same_content_to_another_endpoint_is_a_new_upload(fake, fake_host, images):
    [path] = images(1)
    assert run_picbeam("upload", path, *fake).returncode == 0
    assert run_picbeam("upload", path, *fake, "--set", f"endpoint={fake_host.endpoint('/mirror')}").returncode == 0
    assert [r.path for r in fake_host.requests] == ["/upload", "/mirror"]


def test_retry_after_pauses_the_whole_run(fake, fake_host, images, tmp_path):
    images(6)
    fake_host.script([Reply(status=429, json={"message": "slow down"}, headers={"Retry-After": "1"})])
    started = time.monotonic()
    done = run_picbeam("upload", tmp_path / "images", *fake, "-j", "3", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert len(fake_host.requests) == 7
    # the throttled request and every request started after it waited for the host's second
    first = fake_host.requests[0]
    later = [r for r in fake_host.requests[1:] if r.number > 3]
    assert later and time.monotonic() - started >= 1.0
    assert first.number == 1


def test_transient_status_gives_up_after_retries(fake, fake_host, images):
    fake_host.reply(Reply(status=503, text="busy"))
    [path] = images(1)
    done = run_picbeam("upload", path, *fake, "--retries", "2")
    assert done.returncode == 1
    assert len(fake_host.requests) == 3
    assert "HTTP 503: busy (after 3 attempts)" in done.stderr


def test_stalled_connection_is_detected_and_retried(fake, fake_host, images):
    fake_host.script([Reply(fault="stall", delay=30)])
    [path] = images(1)
    started = time.monotonic()
    done = run_picbeam("upload", path, *fake)
    assert done.returncode == 0, done.stderr
    assert len(fake_host.requests) == 2 and time.monotonic() - started < 15


def test_dropped_connections_are_retried(fake, fake_host, images):
    fake_host.script([Reply(fault="drop"), Reply(fault="drop-mid-body")])
    [path] = images(1, size=300)  # large enough that the drop lands mid-body
    done = run_picbeam("upload", path, *fake)
    assert done.returncode == 0, done.stderr
    assert fake_host.accepted()[hashlib.sha256(path.read_bytes()).hexdigest()] == 1


def test_rate_limit_spaces_requests(fake_host, hosts_dir, images, tmp_path, fast_retries):
    write_host(hosts_dir, "slowhost", endpoint=fake_host.endpoint(), url_path="data.url", rate_limit=10)
    images(6)
    started = time.monotonic()
    assert run_picbeam("upload", tmp_path / "images", "--host", "slowhost", "-j", "6").returncode == 0
    assert time.monotonic() - started >= 0.5  # 6 requests at 10/s


def test_sigkill_then_rerun_sends_nothing_twice_and_misses_nothing(fake, fake_host, images, tmp_path, home):
    paths = images(60)
    fake_host.reply(Reply(json=None, delay=0.05))
    fake_host.respond_with(lambda request, host: Reply(json={"data": {"url": host.file_url(request)}}, delay=0.05))
    env = {**os.environ}
    process = subprocess.Popen(
        [sys.executable, "-m", "picbeam", "upload", str(tmp_path / "images"), *fake, "-j", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    deadline = time.monotonic() + 20
    while len(fake_host.accepted()) < 15 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    recorded = {row["sha256"] for row in ledger_rows(home)}
    assert 0 < len(recorded) < 60
    before = len(fake_host.requests)
    done = run_picbeam("upload", tmp_path / "images", *fake, "-j", "4")
    assert done.returncode == 0, done.stderr
    resent = {hashlib.sha256(r.content).hexdigest() for r in fake_host.requests[before:]}
    assert not resent & recorded  # nothing recorded is sent twice
    assert {row["sha256"] for row in ledger_rows(home)} == {
        hashlib.sha256(p.read_bytes()).hexdigest() for p in paths
    }  # nothing missing


def test_first_ctrl_c_finishes_in_flight_and_exits_130(fake, fake_host, images, tmp_path, home):
    images(40)
    fake_host.respond_with(lambda request, host: Reply(json={"data": {"url": host.file_url(request)}}, delay=0.2))
    process = subprocess.Popen(
        [sys.executable, "-m", "picbeam", "upload", str(tmp_path / "images"), *fake, "-j", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while len(fake_host.requests) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "interrupted:" in stderr and "not started" in stderr
    assert "Traceback" not in stderr
    urls = [line for line in stdout.splitlines() if line]
    assert len(urls) == len(ledger_rows(home)) == len(fake_host.accepted()) < 40


def test_concurrent_processes_share_one_ledger(fake, fake_host, images, tmp_path, home):
    images(30, folder="a")
    images(30, folder="b")
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "picbeam", "upload", str(tmp_path / name), *fake, "-j", "4"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in ("a", "b")
    ]
    assert [p.wait(60) for p in processes] == [0, 0]
    assert len(ledger_rows(home)) == 60


def test_corrupt_ledger_is_a_clear_error_and_left_alone(fake, images, home):
    ledger = home / "data" / "picbeam" / "ledger.sqlite3"
    ledger.parent.mkdir(parents=True)
    ledger.write_bytes(b"this is not a database" * 100)
    done = run_picbeam("upload", images(1)[0], *fake)
    assert done.returncode == 2
    assert f"ledger {ledger} cannot be used" in done.stderr and "Traceback" not in done.stderr
    assert ledger.read_bytes() == b"this is not a database" * 100


def test_ledger_location_options(fake, images, tmp_path):
    [path] = images(1)
    elsewhere = tmp_path / "elsewhere.sqlite3"
    assert run_picbeam("upload", path, *fake, "--ledger", elsewhere).returncode == 0
    assert elsewhere.exists()
    assert run_picbeam("history", "--json", env={"PICBEAM_LEDGER": str(elsewhere)}).lines


def test_history_lists_and_exports(fake, images):
    paths = images(3)
    run_picbeam("upload", *paths, *fake)
    records = [json.loads(line) for line in run_picbeam("history", "--json").lines]
    assert sorted(r["path"] for r in records) == [str(p) for p in paths]  # in the order they finished
    assert records[0]["host"] == "fake" and records[0]["created"]
    assert len(run_picbeam("history", "--limit", "2", "--json").lines) == 2
    csv_lines = run_picbeam("history", "--export", "csv").lines
    assert csv_lines[0].startswith("id,sha256,size,path,host") and len(csv_lines) == 4
    assert len(json.loads(run_picbeam("history", "--export", "json").stdout)) == 3
    assert run_picbeam("history", "--host", "other", "--json").lines == []
    assert len(run_picbeam("history", "--since", "1h", "--json").lines) == 3
    assert run_picbeam("history", "--since", "2999-01-01", "--json").lines == []


def test_smms_delete_goes_to_the_mirror_it_was_uploaded_to(fake_host, images, monkeypatch, home):
    monkeypatch.setenv("SMMS_TOKEN", "smms-delete-token-123")
    answer = {
        "success": True,
        "data": {"url": "https://i.loli.net/x.png", "hash": "Q6vLIbCG", "delete": "https://sm.ms/delete/Q6vLIbCG"},
    }
    fake_host.respond_with(
        lambda request, host: Reply(
            json=answer if request.method == "POST" else {"success": True, "message": "File delete success."}
        )
    )
    [path] = images(1)
    mirror = ["--set", f"endpoint={fake_host.endpoint('/api/v2/upload')}"]
    assert run_picbeam("upload", path, "--host", "smms", *mirror).returncode == 0
    done = run_picbeam("delete", "https://i.loli.net/x.png")  # no flags: the ledger knows the endpoint
    assert done.returncode == 0, done.stderr
    assert done.lines == ["deleted https://i.loli.net/x.png"]
    request = fake_host.requests[-1]
    assert request.method == "GET" and request.path == "/api/v2/delete/Q6vLIbCG"
    assert request.headers["Authorization"] == "smms-delete-token-123"
    [row] = [json.loads(line) for line in run_picbeam("history", "--json").lines]
    assert row["deleted"]
    assert "nothing to delete" in run_picbeam("delete", "--last", "1").stderr  # nothing live left, and it says so


def test_delete_without_api_says_so(fake_host, hosts_dir, images, fast_retries):
    fake_host.reply(json={"data": {"url": "https://x/a.png", "delete_url": "https://x/delete/abc"}})
    write_host(hosts_dir, "nodelete", endpoint=fake_host.endpoint(), url_path="data.url", delete_path="data.delete_url")
    [path] = images(1)
    assert run_picbeam("upload", path, "--host", "nodelete").returncode == 0
    done = run_picbeam("delete", "--last", "1")
    assert done.returncode == 1
    assert "host 'nodelete' has no delete API; delete it by hand at https://x/delete/abc" in done.stderr


def test_local_delete_removes_the_file(images, home):
    [path] = images(1)
    url = run_picbeam("upload", path).lines[0]
    stored = Path(url.removeprefix("file://"))
    assert stored.exists()
    assert run_picbeam("delete", url).returncode == 0
    assert not stored.exists()


def test_token_never_appears_in_any_output_of_a_failing_run(fake_host, hosts_dir, images, fast_retries):
    token = "sk-live-0123456789abcdefSECRET"
    fake_host.reply(Reply(status=500, text=f"internal error while checking Bearer {token}"))
    write_host(
        hosts_dir,
        "leaky",
        endpoint=fake_host.endpoint(),
        url_path="data.url",
        headers={"Authorization": f"Bearer {token}"},
        form={"api_key": token},
    )
    [path] = images(1)
    outputs = [run_picbeam("upload", path, "--host", "leaky", "--retries", "1", "--format", f) for f in ("url", "json")]
    outputs.append(run_picbeam("hosts", "show", "leaky"))
    outputs.append(run_picbeam("hosts", "show", "leaky", "--json"))
    assert outputs[0].returncode == 1
    for done in outputs:
        assert token not in done.stdout + done.stderr
    assert "***" in outputs[0].stderr


def test_readable_host_file_with_a_literal_secret_warns(hosts_dir):
    path = write_host(hosts_dir, "plain", endpoint="https://x/", url_path="u", headers={"Authorization": "abc123456"})
    path.chmod(0o644)
    assert (
        "holds a literal secret (headers.Authorization) and other users can read it"
        in run_picbeam("hosts", "list").stderr
    )
    path.chmod(0o600)
    assert "literal secret" not in run_picbeam("hosts", "list").stderr


def test_authorization_is_not_sent_to_another_origin_on_redirect(fake_host, hosts_dir, images, fast_retries):
    from picbeam.testing import FakeHost

    with FakeHost() as other:
        fake_host.reply(Reply(status=307, headers={"Location": other.endpoint("/landing")}))
        write_host(
            hosts_dir,
            "redir",
            endpoint=fake_host.endpoint(),
            url_path="data.url",
            headers={"Authorization": "Bearer do-not-forward-me"},
        )
        done = run_picbeam("upload", images(1)[0], "--host", "redir")
        # A request with credentials is not redirected to another origin at all (test_audit_privacy.py).
        assert done.returncode == 1 and other.url in done.stderr
        assert fake_host.requests[0].headers["Authorization"] == "Bearer do-not-forward-me"
        assert other.requests == []


def test_bad_input_each_one_line_and_the_batch_goes_on(fake, fake_host, images, tmp_path, hosts_dir):
    folder = tmp_path / "images"
    images(2)
    (folder / "empty.png").write_bytes(b"")
    (folder / "loop").symlink_to(folder)  # a symlink loop in the tree
    odd = Path(os.fsdecode(bytes(folder) + b"/caf\xe9.png"))  # not UTF-8
    odd.write_bytes((folder / "img0000.png").read_bytes()[:-12] + b"\0" * 12)
    write_host(hosts_dir, "tiny", endpoint=fake_host.endpoint(), url_path="data.url", max_bytes=60)
    done = run_picbeam("upload", "-r", folder, folder / "empty.png", "--host", "tiny", "--format", "json")
    assert "Traceback" not in done.stderr
    records = {Path(r["path"]).name: r for r in map(json.loads, done.lines)}
    assert records["empty.png"]["error"] == "the file is empty"
    assert "over the host's limit" in records["img0000.png"]["error"]
    assert "caf\\xe9.png" in records
    assert "a symbolic link to a folder already walked" in done.stderr
    assert done.returncode == 1


def test_a_file_that_changes_while_streaming_is_not_recorded(fake, fake_host, tmp_path, home):
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(2 * 1024 * 1024))

    def rewrite_then_answer(request, host):
        time.sleep(0.01)
        big.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(2 * 1024 * 1024 + 5))
        return host.default_reply(request)

    fake_host.respond_with(rewrite_then_answer)
    done = run_picbeam("upload", big, "--keep-metadata", *fake)  # random bytes: sent as they are, streamed
    assert done.returncode == 1
    assert "the file changed while it was being uploaded" in done.stderr
    assert not (home / "data" / "picbeam" / "ledger.sqlite3").exists() or ledger_rows(home) == []


def test_identical_files_in_one_batch_go_up_once(fake, fake_host, images, tmp_path):
    [original] = images(1)
    for copy in ("copy1.png", "copy2.png", "copy3.png"):
        (tmp_path / "images" / copy).write_bytes(original.read_bytes())
    for flags in (["--no-ledger"], []):
        before = len(fake_host.requests)
        done = run_picbeam("upload", tmp_path / "images", *fake, "-j", "4", "--format", "json", *flags)
        assert done.returncode == 0, done.stderr
        records = [json.loads(line) for line in done.lines]
        assert len({r["url"] for r in records}) == 1 and len(records) == 4
        assert len(fake_host.requests) - before == 1


class BreakingHost:
    """A code host whose transport fails the first ``failures`` attempts with ``error`` (as an SSH
    connection does: a plain OSError, not an aiohttp one)."""

    def __new__(cls, error: OSError, failures: int):
        from picbeam import Host

        class Breaking(Host):
            name = "breaking"
            calls = 0

            async def upload(self, item, session):
                self.calls += 1
                if self.calls <= failures:
                    raise error
                return self.result(item, f"https://breaking.example/{item.sha256[:8]}")

        return Breaking()


def test_a_network_oserror_is_retried_and_never_blamed_on_the_file(images, fast_retries):
    import picbeam

    [path] = images(1)
    host = BreakingHost(BrokenPipeError(32, "Broken pipe"), failures=1)
    [result] = picbeam.upload([path], host=host, ledger=False, retries=2)
    assert result.ok and host.calls == 2, result.error
    host = BreakingHost(ConnectionResetError(104, "Connection reset by peer"), failures=9)
    [result] = picbeam.upload([path], host=host, ledger=False, retries=1)
    assert "connection to the host broke (Connection reset by peer)" in result.error, result.error
    assert "cannot read" not in result.error and host.calls == 2
    host = BreakingHost(FileNotFoundError(2, "No such file or directory", str(path)), failures=9)
    [result] = picbeam.upload([path], host=host, ledger=False, retries=2)
    assert result.error == f"cannot read {path}: No such file or directory" and host.calls == 1


def test_without_the_ledger_identical_files_under_their_own_names_are_each_stored(images, tmp_path, hosts_dir):
    """path = "{name}{ext}": the same bytes as a.png and b.png are two stored files with their own URLs."""
    [original] = images(1)
    folder = tmp_path / "images"
    for copy in ("a.png", "b.png"):
        (folder / copy).write_bytes(original.read_bytes())
    root = tmp_path / "www"
    write_host(hosts_dir, "named", extends="local", root=str(root), path="{name}{ext}", url_prefix="https://i.example/")
    for _ in range(3):  # the same answer every time, whichever upload finishes first
        done = run_picbeam("upload", folder, "--host", "named", "-j", "4", "--no-ledger")
        assert done.returncode == 0, done.stderr
        assert done.lines == [f"https://i.example/{name}" for name in ("a.png", "b.png", "img0000.png")]
    assert sorted(p.name for p in root.iterdir()) == ["a.png", "b.png", "img0000.png"]
