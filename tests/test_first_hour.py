"""Issue 13, "the first hour": what a new user hit, through the installed command (and issue 11 items 11, 19)."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from picbeam.errors import ConfigError
from picbeam.spec import SPEC_FIELDS, HostSpec
from picbeam.testing import Reply, run_picbeam, write_host

BASE = {"endpoint": "https://img.example/upload", "url_path": "data.url"}


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    return lines[0]


# -- item 1: every field type-checked at load ----------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "wanted"),
    [
        ({"url_prefix": 5}, "field 'url_prefix' must be a string, not 5 (integer)"),
        ({"file_field": 3}, "field 'file_field' must be a string, not 3 (integer)"),
        ({"headers": "Authorization: Bearer tok-123456"}, "field 'headers' must be a table of strings"),
        ({"form": "a=b"}, "field 'form' must be a table of strings (form = { Name = \"value\" }), not a string of 3"),
        ({"query": 5}, "field 'query' must be a table of strings"),
        ({"max_bytes": "big"}, "field 'max_bytes' must be a whole number, not \"big\" (string)"),
    ],
)
def test_a_wrong_typed_field_is_one_line_naming_file_field_type_and_value(hosts_dir, images, fields, wanted):
    path = write_host(hosts_dir, "typo", **{**BASE, **fields})
    [image] = images(1)
    for command in (["upload", image, "--host", "typo"], ["hosts", "check", "typo"]):
        done = run_picbeam(*command)
        assert done.returncode == 2
        line = one_error_line(done.stderr)
        assert str(path) in line and wanted in line and "tok-123456" not in line, line


def test_an_unknown_field_says_did_you_mean(hosts_dir):
    write_host(hosts_dir, "typo", **BASE, urlprefix="https://cdn/")
    done = run_picbeam("hosts", "check", "typo")
    assert done.returncode == 2
    assert "unknown field 'urlprefix' (did you mean 'url_prefix'?)" in one_error_line(done.stderr)


WRONG_VALUES = {
    "string": st.text(max_size=8),
    "integer": st.integers(),
    "float": st.floats(allow_nan=False),
    "boolean": st.booleans(),
    "list": st.lists(st.one_of(st.integers(), st.text(max_size=3)), max_size=3),
    "table": st.dictionaries(
        st.text(min_size=1, max_size=4), st.one_of(st.integers(), st.lists(st.integers())), max_size=2
    ),
    "datetime": st.datetimes(),
}


@settings(max_examples=400, deadline=None)
@given(field=st.sampled_from([f for f in SPEC_FIELDS if f != "name"]), value=st.one_of(*WRONG_VALUES.values()))
def test_no_value_of_any_type_in_any_field_reaches_a_traceback(field: str, value: Any) -> None:
    """The property: whatever type a field is given, loading (and deriving, as --set and extends do) either
    works or raises one ConfigError line naming the source."""
    from picbeam.hosts import SpecHost

    try:
        spec = HostSpec.from_mapping({**BASE, field: value}, source="typo.toml", name="typo")
        host = SpecHost(spec)
        host.describe()
        spec.derive({"description": "x"}, source="--set")
        spec.expanded({})
    except ConfigError as exc:
        assert str(exc).startswith("typo.toml") and "\n" not in str(exc)


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:99999/x", "http://[::1:bad/x", "http://:80/x"])
def test_a_malformed_endpoint_is_a_configuration_error_naming_host_and_field(hosts_dir, images, endpoint):
    """Issue 11 item 11: found when the host loads, exit 2, one line; it used to be a traceback."""
    write_host(hosts_dir, "bad", endpoint=endpoint, url_path="u")
    [image] = images(1)
    done = run_picbeam("upload", image, "--host", "bad")
    assert done.returncode == 2
    line = one_error_line(done.stderr)
    assert "host 'bad'" in line and "field 'endpoint' is not a valid URL" in line, line
    listed = run_picbeam("hosts", "list")
    assert listed.returncode == 0 and "host 'bad' is unusable" in listed.stderr


def test_a_malformed_endpoint_given_with_set_is_a_usage_error(fake_host, hosts_dir, images):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    [image] = images(1)
    done = run_picbeam("upload", image, "--host", "fake", "--set", "endpoint=http://127.0.0.1:99999/x")
    assert done.returncode == 2 and "the port is out of range" in one_error_line(done.stderr)
    assert fake_host.requests == []


def test_method_get_is_refused(hosts_dir):
    write_host(hosts_dir, "get", **BASE, method="GET")
    done = run_picbeam("hosts", "check", "get")
    assert done.returncode == 2 and "field 'method' must be one of POST, PUT, PATCH, not 'GET'" in done.stderr


# -- item 2: hosts add takes the notation users paste ---------------------------------------------------
def test_hosts_add_takes_json_headers_and_forms_and_delete_options(fake_host, home, images):
    done = run_picbeam(
        "hosts", "add", "pasted", "--endpoint", fake_host.endpoint("/api/upload"), "--url-path", "data.url",
        "--header", '{"Authorization": "abcdefg123456", "X-Trace": "1"}', "--header", "Accept: application/json",
        "--form", '{"format": "json", "album": 7}', "--form", "strategy=2",
        "--delete-endpoint", "delete/{data.hash}", "--delete-method", "get",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = home / "config" / "picbeam" / "hosts.d" / "pasted.toml"
    shown = json.loads(run_picbeam("hosts", "show", "pasted", "--json").stdout)
    assert shown["headers"] == {"Authorization": "***", "X-Trace": "1", "Accept": "application/json"}
    assert shown["form"] == {"format": "json", "album": "7", "strategy": "2"}
    assert shown["delete_endpoint"] == "delete/{data.hash}" and shown["delete_method"] == "GET"
    assert written.exists()
    [image] = images(1)
    assert run_picbeam("upload", image, "--host", "pasted").returncode == 0
    request = fake_host.requests[0]
    assert request.headers["Authorization"] == "abcdefg123456"
    assert request.form == {"format": "json", "album": "7", "strategy": "2"}


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ('{"Authorization"', "not a JSON object"),
        ('"Authorization": "x"', "is not a valid header name"),
        ("Bad Name: x", '"Bad Name" is not a valid header name'),
        ('["a"]', "expected 'Name: value' or a JSON object"),
        ('{"A": {"b": 1}}', "must be text"),
    ],
)
def test_hosts_add_refuses_a_header_that_is_not_a_header(header, message, home):
    done = run_picbeam("hosts", "add", "bad", "--endpoint", "https://x.example/", "--url-path", "u", "--header", header)
    assert done.returncode == 2 and message in one_error_line(done.stderr)
    assert not (home / "config" / "picbeam" / "hosts.d" / "bad.toml").exists()


def test_a_header_value_with_a_line_break_is_refused(hosts_dir):
    write_host(hosts_dir, "crlf", **BASE, headers={"X-A": "1\r\nX-Injected: 2"})
    done = run_picbeam("hosts", "check", "crlf")
    assert done.returncode == 2 and "holds a line break" in one_error_line(done.stderr)


# -- item 14: the endpoint's query key replaces the query table's ----------------------------------------
def test_a_query_key_in_the_endpoint_overrides_the_query_table(fake_host, hosts_dir, images):
    fake_host.reply(text="https://files.example/a.png")
    write_host(hosts_dir, "txt", endpoint=fake_host.endpoint(), response="text", query={"output": "json", "k": "v"})
    [image] = images(1)
    done = run_picbeam(
        "upload", image, "--host", "txt", "--set", f"endpoint={fake_host.endpoint('/upload.php')}?output=text"
    )
    assert done.returncode == 0, done.stderr
    sent = fake_host.requests[0].query_string
    assert re.findall(r"output=[a-z]+", sent) == ["output=text"] and "k=v" in sent


# -- item 15: response=text on a JSON preset ------------------------------------------------------------
def test_switching_a_json_preset_to_text_names_the_inherited_paths_before_sending(fake_host, images):
    [image] = images(1)
    done = run_picbeam("upload", image, "--host", "uguu", "--set", f"endpoint={fake_host.endpoint()}",
                       "--set", "response=text")  # fmt: skip
    assert done.returncode == 2
    line = one_error_line(done.stderr)
    assert "url_path, error_path, success_path inherited from 'uguu'" in line and "--set success_path=" in line
    assert fake_host.requests == []
    fake_host.reply(text=fake_host.url + "/a.png")
    cleared = run_picbeam("upload", image, "--host", "uguu", "--set", f"endpoint={fake_host.endpoint()}",
                          "--set", "response=text", "--set", "url_path=", "--set", "error_path=",
                          "--set", "success_path=")  # fmt: skip
    assert cleared.returncode == 0, cleared.stderr
    assert cleared.stdout.strip() == fake_host.url + "/a.png"


# -- item 3: the Ctrl-C summary counts what never started ------------------------------------------------
def test_ctrl_c_summary_counts_the_files_discovery_had_not_reached(fake_host, hosts_dir, images, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    images(200)
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    fake_host.respond_with(lambda request, host: Reply(json={"data": {"url": host.file_url(request)}}, delay=0.1))
    process = subprocess.Popen(
        [sys.executable, "-m", "picbeam", "upload", str(tmp_path / "images"), "--host", "fake", "-j", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while len(fake_host.requests) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    counts = re.search(r"interrupted: (\d+) uploaded, (\d+) already uploaded, (\d+) failed, (\d+) not started", stderr)
    assert counts, stderr
    uploaded, reused, failed, not_started = map(int, counts.groups())
    assert uploaded == len(fake_host.requests) and uploaded + reused + failed + not_started == 200, stderr


# -- item 6: the small ones -----------------------------------------------------------------------------
def test_dry_run_force_says_nothing_was_sent(fake_host, hosts_dir, images, tmp_path):
    images(2)
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    done = run_picbeam("upload", tmp_path / "images", "--host", "fake", "--dry-run", "--force")
    assert (
        done.returncode == 0 and "dry run: 2 to upload, 0 already uploaded, 0 failed; nothing was sent" in done.stderr
    )
    assert "done:" not in done.stderr and fake_host.requests == []


def test_an_empty_folder_says_so(tmp_path):
    (tmp_path / "empty").mkdir()
    done = run_picbeam("upload", tmp_path / "empty")
    assert done.returncode == 0 and f"no files to upload in {tmp_path / 'empty'}" in done.stderr


def test_config_set_default_host_refuses_an_unknown_host(home):
    done = run_picbeam("config", "set", "default_host", "smsm")
    assert done.returncode == 2 and "unknown host 'smsm'; did you mean 'smms'?" in one_error_line(done.stderr)
    assert run_picbeam("config", "get", "default_host").returncode == 1  # nothing written
    assert run_picbeam("config", "set", "default_host", "catbox").returncode == 0


def test_delete_last_with_nothing_left_says_so(home, images):
    [image] = images(1)
    assert run_picbeam("upload", image).returncode == 0
    assert run_picbeam("delete", "--last", "1").stdout.startswith("deleted ")
    done = run_picbeam("delete", "--last", "1")
    assert (
        done.returncode == 0 and "nothing to delete: the ledger" in done.stderr and "has no upload left" in done.stderr
    )


def test_sxcu_export_writes_a_placeholder_for_a_literal_token(hosts_dir, tmp_path):
    write_host(hosts_dir, "mine", **BASE, headers={"Authorization": "Bearer abcdefg123456"})
    done = run_picbeam("hosts", "export", "mine", "--as", "sxcu")
    assert done.returncode == 0 and "abcdefg123456" not in done.stdout + done.stderr
    assert json.loads(done.stdout)["Headers"] == {"Authorization": "<MINE_AUTHORIZATION>"}
    assert "literal secrets not written: headers.Authorization as <MINE_AUTHORIZATION>" in done.stderr
    assert run_picbeam("hosts", "export", "mine", "--as", "sxcu", "--with-secrets").returncode == 2  # not to stdout
    target = tmp_path / "mine.sxcu"
    assert run_picbeam("hosts", "export", "mine", "--as", "sxcu", "--with-secrets", "-o", target).returncode == 0
    assert json.loads(target.read_text())["Headers"] == {"Authorization": "Bearer abcdefg123456"}


# -- item 7: the wordings -------------------------------------------------------------------------------
def test_setting_types_read_as_words(home):
    done = run_picbeam("config", "set", "jobs", "many")
    assert done.returncode == 2 and "option 'jobs' must be a whole number, not 'many'" in done.stderr


def test_one_retry_is_singular_and_reuse_has_one_wording(fake_host, hosts_dir, images, tmp_path):
    images(2)
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    fake_host.script(
        [Reply(status=503), *[lambda request, host: Reply(json={"data": {"url": host.file_url(request)}})] * 3]
    )
    done = run_picbeam("upload", tmp_path / "images", "--host", "fake", "-j", "1")
    assert done.returncode == 0, done.stderr
    assert re.search(r"done: 2 uploaded, 0 already uploaded, 0 failed in [\d.]+ s, 1 retry$", done.stderr.strip())
    again = run_picbeam("upload", tmp_path / "images", "--host", "fake", "--dry-run")
    assert (
        again.stdout.count(": already uploaded: http://") == 2
        and "dry run: 0 to upload, 2 already uploaded" in again.stderr
    )
    for text in (done.stderr, again.stdout, again.stderr):
        assert "reused" not in text and "already there" not in text


def test_an_invalid_jmespath_is_one_whole_sentence():
    done = run_picbeam("hosts", "add", "bad", "--endpoint", "https://x/", "--url-path", "data.[")
    line = one_error_line(done.stderr)
    assert line.endswith("is not a valid JMESPath expression 'data.[': it ends before the expression is complete")


def test_plugins_columns_never_run_together():
    done = run_picbeam("plugins")
    for line in done.stdout.splitlines():
        if not line.startswith(" "):
            assert re.match(r"^\S+ {2,}(ok|error) +\S+ \S+ {2,}hosts: ", line), line


def test_hosts_list_columns_never_run_together():
    for line in run_picbeam("hosts", "list").stdout.splitlines():
        assert re.match(r"^[* ] \S+ {2,}\S+ {2,}\S", line), line


def test_hosts_list_help_promises_only_what_it_prints():
    done = run_picbeam("hosts", "list", "--help", env={"COLUMNS": "200"})
    assert "where it is defined" not in done.stdout and "--json adds where each is defined" in done.stdout


# -- item 8: addresses and standard input -----------------------------------------------------------------
@pytest.fixture
def web():
    """A web server with an image behind a redirect, one named by Content-Disposition, a big file and a slow one."""
    from picbeam.samples import png
    from picbeam.testing import FakeHost

    image, other = png(6, 6, seed=99), png(6, 6, seed=98)

    def serve(request, host):
        if request.path == "/go":
            return Reply(status=302, headers={"Location": "/pics/photo.png"})
        if request.path == "/pics/photo.png":
            return Reply(body=image, headers={"Content-Type": "image/png"})
        if request.path == "/get":
            return Reply(body=other, headers={"Content-Disposition": 'attachment; filename="cat pic.png"'})
        if request.path == "/big":
            return Reply(body=b"\x89PNG" + b"x" * 5000, headers={"Content-Type": "image/png"})
        if request.path == "/slow":
            return Reply(body=image, delay=1.5)  # past the 0.5 s limit the test sets
        return Reply(status=404, text="not here")

    with FakeHost(serve) as server:
        server.image = image
        yield server


def test_upload_downloads_addresses_and_reads_stdin(fake_host, hosts_dir, images, web, home):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    [local] = images(1)
    done = run_picbeam(
        "upload", f"{web.url}/go", "-", "--host", "fake", "--format", "{filename} {url}",
        input=f"{web.url}/get\n\n{local}\n{web.url}/nothing\n",
    )  # fmt: skip
    assert done.returncode == 1  # the missing address
    sent = {r.file.filename: r.file.data for r in fake_host.requests}
    assert sorted(sent) == sorted(["photo.png", "cat pic.png", local.name]) and sent["photo.png"] == web.image
    lines = done.stdout.splitlines()
    assert lines[0].startswith("photo.png http://") and lines[1].startswith("cat pic.png http://")
    assert lines[2].startswith(f"{local.name} http://") and lines[3] == ""
    assert f"{web.url}/nothing: fake: cannot download: HTTP 404" in done.stderr
    history = run_picbeam("history", "--json").stdout
    assert f"{web.url}/go" in history and str(local) in history


def test_downloads_have_a_size_and_a_time_limit(fake_host, hosts_dir, web, home):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    assert run_picbeam("config", "set", "download_max_bytes", "1000").returncode == 0
    assert run_picbeam("config", "set", "download_timeout", "0.5").returncode == 0
    done = run_picbeam("upload", f"{web.url}/big", f"{web.url}/slow", "--host", "fake")
    assert done.returncode == 1 and fake_host.requests == []
    assert "cannot download: 5004 bytes is over the limit of 1000" in done.stderr
    assert "cannot download: no complete answer within 0.5 s" in done.stderr
    assert "Traceback" not in done.stderr


# -- item 9: custom link formats --------------------------------------------------------------------------
def test_a_format_with_braces_is_a_template_from_the_command_line_and_config(fake_host, hosts_dir, images):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url", delete_path="data.del")
    fake_host.respond_with(lambda r, h: Reply(json={"data": {"url": h.file_url(r), "del": "https://d/1"}}))
    [image] = images(1)
    template = "![{name}]({url}) {filename} {host} {delete_url} [{thumbnail_url}] {sha256} {{literal}}"
    done = run_picbeam("upload", image, "--host", "fake", "--format", template)
    assert done.returncode == 0, done.stderr
    url = fake_host.file_url(fake_host.requests[0])
    import hashlib

    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    assert done.stdout == f"![img0000]({url}) img0000.png fake https://d/1 [] {digest} {{literal}}\n"
    assert run_picbeam("config", "set", "format", "<{url}>").returncode == 0
    assert run_picbeam("upload", image, "--host", "fake").stdout == f"<{url}>\n"
    bad = run_picbeam("upload", image, "--host", "fake", "--format", "{link}")
    assert bad.returncode == 2 and "unknown placeholder '{link}'" in one_error_line(bad.stderr)
    assert run_picbeam("config", "set", "format", "{nope}").returncode == 2


# -- item 10: --dry-run shows the request -----------------------------------------------------------------
def test_dry_run_shows_the_request_with_secrets_masked(hosts_dir, images):
    write_host(
        hosts_dir, "mine", endpoint="https://img.example/api?v=2", url_path="data.url", file_field="smfile",
        query={"key": "${MINE_KEY}", "lang": "en"}, headers={"Authorization": "Bearer sekrit-123456", "X-A": "1"},
        form={"album": "blog", "token": "sekrit-123456"},
    )  # fmt: skip
    [image] = images(1)
    done = run_picbeam("upload", image, "--host", "mine", "--dry-run", env={"MINE_KEY": "qkey-abcdef"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"would upload {image} ({image.stat().st_size} bytes, image/png) to mine"]
    assert [line for line in done.stderr.splitlines() if line.startswith("  ")] == [
        "  POST https://img.example/api?v=2&key=***&lang=en",
        "  multipart body: file field 'smfile', file name 'img0000.png', type image/png",
        "  form album: blog",
        "  form token: ***",
        "  header Authorization: ***",
        "  header X-A: 1",
    ]
    as_json = run_picbeam("upload", image, "--host", "mine", "--dry-run", "-f", "json", env={"MINE_KEY": "qkey-abcdef"})
    request = json.loads(as_json.stdout)["request"]
    assert request["method"] == "POST" and request["file_field"] == "smfile" and request["mime"] == "image/png"
    for text in (done.stdout, done.stderr, as_json.stdout):
        assert "sekrit" not in text and "qkey-abcdef" not in text


# -- item 12: shell completion completes values ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("picbeam upload --host sm", ["smms"]),
        ("picbeam upload -H lit", ["litterbox"]),
        ("picbeam hosts show imgur", ["imgur", "imgur-bearer"]),
        ("picbeam hosts check cat", ["catbox"]),
        ("picbeam hosts export chev", ["chevereto"]),
        ("picbeam upload --format ma", ["markdown"]),
        ("picbeam upload --convert a", ["avif"]),
    ],
)
def test_shell_completion_completes_values(words, expected):
    done = run_picbeam(
        env={"_PICBEAM_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)}
    )
    assert done.returncode == 0 and done.stdout.split() == expected, done.stderr


# -- item 13: history keeps absolute paths ----------------------------------------------------------------
def test_history_stores_absolute_paths(images, tmp_path):
    import subprocess
    import sys

    images(1)
    subprocess.run([sys.executable, "-m", "picbeam", "upload", "images/img0000.png"], cwd=tmp_path, check=True,
                   capture_output=True)  # fmt: skip
    [row] = json.loads(run_picbeam("history", "--export", "json").stdout)
    assert row["path"] == str(tmp_path / "images" / "img0000.png")


# -- issue 11 item 19: watch uploads a stable PNG with bytes after IEND ------------------------------------------
def test_watch_uploads_a_png_with_bytes_after_its_end(fake_host, hosts_dir, tmp_path):
    from picbeam.samples import png
    from test_watch import Watch  # the watcher harness: a subprocess stopped with Ctrl-C

    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    folder = tmp_path / "inbox"
    folder.mkdir()
    watch = Watch(folder, "--settle", "0.1")
    try:
        short = png(8, 8, seed=1) + b"trailer"  # IEND still in the last 4 KB: uploaded on settling
        long = png(8, 8, seed=2) + os.urandom(10_000)  # IEND far from the end: uploaded after the grace
        (folder / "short.png").write_bytes(short)
        (folder / "long.png").write_bytes(long)
        watch.wait_for(lambda: len(watch.stdout) >= 2, "two results")
    finally:
        assert watch.stop() == 0, watch.stderr
    # Both sent (strip_metadata, on by default, drops what follows IEND: the pixels arrive as they were).
    assert sorted(request.file.filename for request in fake_host.requests) == ["long.png", "short.png"]
    assert all(
        request.file.data == png(8, 8, seed=n)
        for n, request in zip(
            (1, 2), sorted(fake_host.requests, key=lambda r: r.file.filename != "short.png"), strict=True
        )
    )
    assert any("long.png: no end marker, but unchanged for 2 s: uploading it as it is" in line for line in watch.stderr)
    assert not any("short.png: no end marker" in line for line in watch.stderr)


# -- item 4: the progress bar counts ahead, shows the rate and the time left -----------------------------------
def test_progress_bar_total_is_counted_ahead_with_rate_and_eta(fake_host, hosts_dir, images, tmp_path):
    """stderr on a real pseudo-terminal, as a person sees it; stdout a pipe."""
    import fcntl
    import pty
    import struct
    import subprocess
    import sys
    import termios

    images(12)
    (tmp_path / "images" / "notes.txt").write_text("not an image: never counted")
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    fake_host.respond_with(lambda request, host: Reply(json={"data": {"url": host.file_url(request)}}, delay=0.25))
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "picbeam", "upload", str(tmp_path / "images"), "--host", "fake", "-j", "1"],
        stdout=subprocess.PIPE, stderr=follower, env={**os.environ, "TERM": "xterm", "COLUMNS": "120"},
    )  # fmt: skip
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process has ended
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert process.wait(30) == 0
    screen = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", seen).decode("utf-8", "replace")
    assert re.search(r"\b([1-9]|1[01])/12 files", screen), screen  # the whole total while uploads go on
    assert not re.search(r"/1[3-9]\+? files", screen)  # the text file is not counted
    assert re.search(r"[\d.]+ (bytes|[kMG]B)/s", screen) and "?" not in screen, screen
    assert re.search(r"ETA \d+:\d\d", screen), screen


@pytest.mark.parametrize("command", [["upload"], ["watch"], ["hosts", "add"], ["hosts", "export"], ["delete"]])
def test_help_at_80_columns_cuts_no_option_name(command):
    done = run_picbeam(*command, "--help", env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    assert done.returncode == 0 and "…" not in done.stdout, done.stdout
    if command == ["upload"]:
        for name in ("--apply-orientation", "--watermark-position", "--watermark-opacity", "--strip-metadata"):
            assert name in done.stdout


def test_dry_run_masks_secrets_written_in_the_endpoint(hosts_dir, images):
    write_host(
        hosts_dir, "inurl", endpoint="https://me:hunter2-pass@img.example/api?api_key=lit-abcdef&v=1", url_path="u"
    )
    [image] = images(1)
    done = run_picbeam("upload", image, "--host", "inurl", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "  POST https://me:***@img.example/api?api_key=***&v=1" in done.stderr.splitlines()
    assert "hunter2" not in done.stdout + done.stderr and "lit-abcdef" not in done.stdout + done.stderr
