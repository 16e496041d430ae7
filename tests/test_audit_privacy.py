"""Nothing leaked: secrets on redirects, secrets in every encoding, answers without a limit."""

from __future__ import annotations

from pathlib import Path

import pytest
from picbeam.testing import FakeHost, Reply, run_picbeam, write_host


@pytest.fixture(scope="module")
def elsewhere():
    """Another origin, where a hostile endpoint redirects uploads."""
    with FakeHost() as other:
        yield other


@pytest.mark.parametrize(("where", "status"), [("headers", 307), ("form", 302), ("query", 308), ("userinfo", 307)])
def test_a_request_with_a_secret_is_not_redirected_to_another_origin(
    fake_host, elsewhere, hosts_dir, images, fast_retries, status, where
):
    before = len(elsewhere.requests)
    fake_host.reply(Reply(status=status, headers={"Location": elsewhere.endpoint("/landing?from=redirect")}))
    secret = "QQQsecretQ+/=9z"
    fields: dict = {"endpoint": fake_host.endpoint(), "url_path": "data.url"}
    if where == "userinfo":
        fields["endpoint"] = fake_host.endpoint().replace("http://", f"http://uploader:{secret.replace('/', '%2F')}@")
    else:
        fields[where] = {"X-API-Key" if where == "headers" else "api_key": secret}
    write_host(hosts_dir, "hostile", **fields)
    done = run_picbeam("upload", images(1)[0], "--host", "hostile")
    assert done.returncode == 1
    assert len(elsewhere.requests) == before  # nothing reached the other origin
    [line] = [line for line in done.stderr.splitlines() if "redirect" in line]
    assert elsewhere.url in line and "endpoint" in line, line
    assert "Traceback" not in done.stderr
    assert len(fake_host.requests) == 1  # not retried


def test_a_same_origin_redirect_is_followed(fake_host, hosts_dir, images, fast_retries):
    def moved(request, host):
        if request.path == "/upload":
            return Reply(status=307, headers={"Location": "/v2/upload"})
        return host.default_reply(request)

    fake_host.respond_with(moved)
    write_host(hosts_dir, "moved", endpoint=fake_host.endpoint(), url_path="data.url", headers={"X-API-Key": "k" * 20})
    done = run_picbeam("upload", images(1)[0], "--host", "moved")
    assert done.returncode == 0, done.stderr
    assert [r.path for r in fake_host.requests] == ["/upload", "/v2/upload"]
    assert fake_host.requests[1].headers["X-API-Key"] == "k" * 20
    assert fake_host.requests[1].file.data


SECRET = "QQQsecretQ+/=9z"  # characters that every encoding changes
PASSWORD = "pw-Zx9+/hunter2"
KEY = "QKEYqueryvalue42"


def encodings(value: str) -> list[str]:
    import base64
    import json
    import re
    from urllib.parse import quote, quote_plus

    lower_hex = re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(value, safe=""))
    forms = [value, quote(value), quote(value, safe=""), lower_hex, quote_plus(value)]
    forms += [json.dumps(value)[1:-1].replace("/", "\\/")]
    if value == PASSWORD:  # the Basic credential aiohttp makes of the URL's userinfo
        forms.append(base64.b64encode(f"uploader:{value}".encode()).decode())
    return forms


def leaks(text: str) -> list[str]:
    return [form for value in (SECRET, PASSWORD, KEY) for form in encodings(value) if form in text]


@pytest.fixture
def echoing(fake_host, hosts_dir):
    """A host configured with a secret header, form field, URL password and ?api_key=, whose answers
    echo every one of them in every encoding."""
    from urllib.parse import quote

    def echo(request, host):
        echoed = " ".join(encodings(SECRET) + encodings(PASSWORD) + encodings(KEY))
        if request.form.get("fail"):
            return Reply(status=400, json={"error": f"bad key {echoed}"})
        return Reply(json={"data": {"url": host.file_url(request), "debug": echoed, "echo": dict(request.query)}})

    fake_host.respond_with(echo)
    endpoint = fake_host.endpoint().replace("http://", f"http://uploader:{quote(PASSWORD, safe='')}@")
    write_host(
        hosts_dir,
        "echo",
        endpoint=f"{endpoint}?api_key={KEY}",
        url_path="data.url",
        error_path="error",
        headers={"X-API-Key": SECRET},
        form={"token": SECRET},
    )
    return ["--host", "echo"]


def test_secrets_are_masked_in_every_encoding_everywhere(echoing, fake_host, images, home, hosts_dir):
    [ok, bad] = images(2)
    outputs = [run_picbeam("upload", ok, *echoing, "--format", "json")]
    assert outputs[0].returncode == 0, outputs[0].stderr
    # The credentials did reach the host, where they belong.
    arrived = fake_host.requests[0]
    assert arrived.headers["X-API-Key"] == SECRET and arrived.query["api_key"] == KEY
    outputs.append(run_picbeam("upload", bad, *echoing, "--set", "form.fail=1", "--retries", "0"))
    assert outputs[1].returncode == 1 and "***" in outputs[1].stderr
    outputs += [run_picbeam("hosts", "show", "echo"), run_picbeam("hosts", "show", "echo", "--json")]
    outputs += [run_picbeam("history"), run_picbeam("history", "--json")]
    outputs += [run_picbeam("history", "--export", kind) for kind in ("csv", "json")]
    for done in outputs:
        assert not leaks(done.stdout + done.stderr), (done.stdout + done.stderr)[-1500:]
    assert "uploader:***@" in outputs[2].stdout
    ledger = home / "data" / "picbeam"
    stored = b"".join(path.read_bytes() for path in ledger.iterdir() if path.name.startswith("ledger.sqlite3"))
    assert not leaks(stored.decode("utf-8", errors="replace"))


def test_results_of_the_python_api_carry_no_secret(echoing, fake_host, images, hosts_dir):
    import picbeam

    [path] = images(1)
    [result] = picbeam.upload([path], "echo", hosts_dirs=[hosts_dir])
    assert result.ok
    assert not leaks(repr(result)) and not leaks(str(result.answer))


def test_a_redirect_loop_with_a_secret_query_is_masked(fake_host, hosts_dir, images, fast_retries):
    from urllib.parse import quote

    fake_host.reply(Reply(status=302, headers={"Location": f"/upload?api_key={quote(SECRET, safe='')}"}))
    write_host(hosts_dir, "loop", endpoint=f"{fake_host.endpoint()}?api_key={SECRET}", url_path="data.url")
    done = run_picbeam("upload", images(1)[0], "--host", "loop", "--retries", "0")
    assert done.returncode == 1
    assert "redirect" in done.stderr.lower() and not leaks(done.stdout + done.stderr), done.stderr


def test_a_sharex_import_with_userinfo_is_masked_in_hosts_show(tmp_path, hosts_dir):
    import json

    sxcu = tmp_path / "mine.sxcu"
    sxcu.write_text(
        json.dumps(
            {
                "Version": "16.1.0",
                "Name": "mine",
                "RequestMethod": "POST",
                "RequestURL": f"https://uploader:{PASSWORD}@img.example/upload",
                "Body": "MultipartFormData",
                "FileFormName": "file",
                "URL": "{json:url}",
            }
        ),
        encoding="utf-8",
    )
    done = run_picbeam("hosts", "import", sxcu)
    assert done.returncode == 0, done.stderr
    shown = [run_picbeam("hosts", "show", "mine"), run_picbeam("hosts", "show", "mine", "--json"), done]
    for output in shown:
        assert not leaks(output.stdout + output.stderr), output.stdout + output.stderr
    assert "uploader:***@img.example" in shown[0].stdout


@pytest.fixture(scope="module")
def flood():
    """A host whose answers are huge: /mb/N answers N MB of JSON with a URL in it, /endless never ends."""
    from aiohttp import web
    from picbeam.testing import serving

    async def answer(request: web.Request) -> web.StreamResponse:
        await request.read()
        endless = request.match_info["kind"] == "endless"
        megabytes = 0 if endless else int(request.match_info["size"])
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"data": {"url": "http://127.0.0.1/x.png", "pad": "')
        chunk, sent = b"x" * 1024 * 1024, 0
        try:
            while endless or sent < megabytes:
                await response.write(chunk)
                sent += 1
            await response.write(b'"}}')
        except (ConnectionError, RuntimeError):
            pass  # the client stopped reading: what picbeam should do
        return response

    app = web.Application(client_max_size=1024**3)
    app.router.add_post("/{kind}/{size}", answer)
    with serving(app) as url:
        yield url


# The child reads its own high-water mark (VmHWM) as it exits: ru_maxrss from wait4 also counts the
# parent's pages at fork/vfork time, so it reported pytest's own memory instead of picbeam's.
PEAK_REPORTER = """
import sys
from picbeam.cli import main
try:
    main(sys.argv[2:])
finally:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(sys.argv[1], "w").write(line.split()[1])
"""


def run_measured(*args: str) -> tuple[int, str, str, int]:
    """Run picbeam; its exit status, output and peak memory (RSS, KB) as the kernel accounted it."""
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        peak = Path(folder) / "peak"
        done = subprocess.run(
            [sys.executable, "-c", PEAK_REPORTER, str(peak), *args], capture_output=True, text=True, check=False
        )
        return done.returncode, done.stdout, done.stderr, int(peak.read_text())


@pytest.mark.parametrize("path", ["/mb/100", "/endless/0"])
def test_a_huge_answer_fails_the_file_with_flat_memory(flood, hosts_dir, images, fast_retries, path):
    write_host(hosts_dir, "flood", endpoint=flood + path, url_path="data.url", timeout=60)
    code, _, stderr, peak_kb = run_measured("upload", str(images(1)[0]), "--host", "flood")
    print(f"\n{path}: peak RSS {peak_kb / 1024:.0f} MB")
    assert code == 1
    lines = [line for line in stderr.splitlines() if "answer" in line]
    assert len(lines) == 1 and "the host's answer is larger than 10 MB" in lines[0], stderr
    assert "attempts" not in lines[0]  # not retried
    assert peak_kb < 100 * 1024


def test_a_host_may_raise_the_answer_limit(flood, hosts_dir, images):
    write_host(hosts_dir, "big", endpoint=flood + "/mb/12", url_path="data.url", max_answer_size=20 * 1024 * 1024)
    done = run_picbeam("upload", images(1)[0], "--host", "big")
    assert done.returncode == 0, done.stderr
    assert done.lines == ["http://127.0.0.1/x.png"]


def test_a_storage_host_url_with_a_password_is_masked(hosts_dir):
    write_host(hosts_dir, "dav", extends="webdav", endpoint=f"https://me:{PASSWORD}@dav.example/files/me")
    for done in (run_picbeam("hosts", "show", "dav"), run_picbeam("hosts", "show", "dav", "--json")):
        assert done.returncode == 0, done.stderr
        assert not leaks(done.stdout + done.stderr) and "me:***@dav.example" in done.stdout, done.stdout
