"""Output integrity: URLs a host answers, file names with control characters, output formats, deep answers."""

from __future__ import annotations

import json

import pytest
from picbeam.samples import png
from picbeam.testing import Reply, run_picbeam, write_host

HOSTILE_URLS = {
    "esc": "http://img.example/a\x1b[2J\x1b]0;owned\x07.png",
    "nul": "http://img.example/a\x00b.png",
    "del": "http://img.example/a\x7fb.png",
    "bidi": "http://img.example/\u202egnp.exe",
    "c1": "http://img.example/a\x9bb.png",
    "file": "file:///etc/passwd",
    "javascript": "javascript:alert(document.cookie)//x",
    "data": "data:text/html;base64,PHNjcmlwdD4=",
    "ftp": "ftp://img.example/a.png",
}


@pytest.fixture
def hostile(fake_host, hosts_dir):
    def answer(request, host):
        kind = request.files[0].filename.removesuffix(".png")
        return Reply(json={"data": {"url": HOSTILE_URLS.get(kind, host.file_url(request))}})

    fake_host.respond_with(answer)
    write_host(hosts_dir, "hostile", endpoint=fake_host.endpoint(), url_path="data.url")
    return ["--host", "hostile"]


def test_a_url_with_a_control_or_bidi_character_or_another_scheme_fails_that_file(hostile, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for seed, kind in enumerate([*HOSTILE_URLS, "fine"]):
        (folder / f"{kind}.png").write_bytes(png(4, 4, seed=seed + 1))
    done = run_picbeam("upload", *sorted(folder.iterdir()), *hostile, "--format", "json")
    assert done.returncode == 1
    records = {json.loads(line)["path"].rsplit("/", 1)[1]: json.loads(line) for line in done.lines}
    assert records["fine.png"]["url"] and not records["fine.png"]["error"]
    for kind in HOSTILE_URLS:
        assert records[f"{kind}.png"]["url"] is None and records[f"{kind}.png"]["error"], kind
    output = done.stdout + done.stderr
    for bad in ("\x1b", "\x00", "\x7f", "\u202e", "\x9b", "\x07"):
        assert bad not in output
    errors = [line for line in done.stderr.splitlines() if "hostile:" in line]
    assert len(errors) == len(HOSTILE_URLS), done.stderr
    text = run_picbeam("upload", folder / "esc.png", *hostile, "--no-ledger")
    assert text.stdout == "\n" and "\\x1b[2J" in text.stderr


def test_markdown_html_and_bbcode_escape_what_their_syntax_needs(fake_host, hosts_dir, tmp_path):
    url = "http://img.example/x)y](z[w<b>\"q'.png"
    fake_host.reply(json={"data": {"url": url}})
    write_host(hosts_dir, "odd", endpoint=fake_host.endpoint(), url_path="data.url")
    path = tmp_path / "a]b[c*_`<i>\\.png"
    path.write_bytes(png(4, 4, seed=3))
    lines = {
        fmt: run_picbeam("upload", path, "--host", "odd", "--format", fmt, "--no-ledger").stdout.rstrip("\n")
        for fmt in ("markdown", "html", "bbcode")
    }
    from markdown_it import MarkdownIt

    rendered = MarkdownIt().render(lines["markdown"])
    assert rendered.count("<img") == 1 and "<i>" not in rendered, rendered
    assert 'alt="a]b[c*_`&lt;i&gt;\\"' in rendered, rendered
    assert "<b>" not in lines["html"] and lines["html"].count("<img") == 1
    bbcode = lines["bbcode"]
    assert bbcode.startswith("[img]") and bbcode.endswith("[/img]") and bbcode.count("[") == 2, bbcode


@pytest.mark.parametrize("name", ["a\nb.png", "a\x1b[31mred.png", "a\u2028b.png", "a\u2029b.png", "a\x85b.png"])
def test_a_file_name_with_control_characters_is_sent_cleaned_and_printed_escaped(fake_host, hosts_dir, tmp_path, name):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / name).write_bytes(png(4, 4, seed=5))
    missing = folder / f"gone{name}"
    done = run_picbeam("upload", folder / name, missing, "--host", "fake", "--format", "json")
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    [sent] = fake_host.requests
    assert sent.file.filename and not any(ord(c) < 32 or c in "\x85\u2028\u2029" for c in sent.file.filename)
    assert (folder / name).exists()  # the local name stays as it is
    # One line per file on stdout and on stderr, whatever the name holds.
    assert len(done.stdout.split("\n")) == 3 and len(done.stdout.splitlines()) == 2
    assert all("\u2028" not in line and "\u2029" not in line and "\x85" not in line for line in done.lines)
    record = json.loads(done.lines[0])
    assert record["url"] and "\\" in record["path"]
    [error] = done.stderr.splitlines()[:1]
    assert "gone" in error and "no such file" in error and "\\" in error


DEEP = 100_000


@pytest.mark.parametrize(
    ("response", "body"),
    [
        ("json", "[" * DEEP + "]" * DEEP),
        ("json", '{"a":' * 900 + "1" + "}" * 900),
        ("xml", "<a>" * DEEP + "</a>" * DEEP),
        ("xml", "<a>" * 5000 + "</a>" * 5000),
    ],
    ids=["json-100k", "json-900", "xml-100k", "xml-5000"],
)
def test_a_deeply_nested_answer_is_a_clear_error_for_that_file(fake_host, hosts_dir, images, response, body):
    fake_host.reply(body=body.encode(), headers={"Content-Type": f"application/{response}"})
    write_host(hosts_dir, "deep", endpoint=fake_host.endpoint(), url_path="data.url", response=response)
    done = run_picbeam("upload", images(1)[0], "--host", "deep", "--retries", "0")
    assert done.returncode == 1
    assert "RecursionError" not in done.stderr and "internal error" not in done.stderr, done.stderr[-500:]
    [line] = done.stderr.splitlines()[:1]
    assert "nested too deeply" in line, line


def test_serve_answers_400_to_a_deeply_nested_json_body(fake_host, hosts_dir):
    from test_serve import InProcessServer, request

    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    with InProcessServer() as server:
        answer = request(server.port, body='{"list": ' + "[" * DEEP + "]" * DEEP + "}")
    assert answer.status == 400
    assert "nested too deeply" in answer.json["message"]
    assert fake_host.requests == []
