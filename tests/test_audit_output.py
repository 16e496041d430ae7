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


NAMES = ["a\nb.png", "a\x1b[31mred.png", "a\u2028b.png", "a\u2029b.png", "a\x85b.png"]


def test_file_names_with_control_characters_are_sent_cleaned_and_printed_escaped(fake_host, hosts_dir, tmp_path):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    folder = tmp_path / "odd"
    folder.mkdir()
    for seed, name in enumerate(NAMES):
        (folder / name).write_bytes(png(4, 4, seed=seed + 5))
    # Each name as a file that uploads, then as one that is missing (its error goes to stderr).
    inputs = [path for name in NAMES for path in (folder / name, folder / f"gone{name}")]
    done = run_picbeam("upload", *inputs, "--host", "fake", "--format", "json")
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    assert len(fake_host.requests) == len(NAMES)
    for sent in fake_host.requests:
        assert sent.file.filename and not any(ord(c) < 32 or c in "\x85\u2028\u2029" for c in sent.file.filename)
    assert all((folder / name).exists() for name in NAMES)  # the local names stay as they are
    # One line per file on stdout and on stderr, whatever the name holds.
    assert len(done.stdout.split("\n")) == len(inputs) + 1 and len(done.stdout.splitlines()) == len(inputs)
    assert not any(c in done.stdout + done.stderr for c in "\x85\u2028\u2029\x1b")
    records = [json.loads(line) for line in done.lines]
    assert all(r["url"] and "\\" in r["path"] for r in records[::2])
    errors = [line for line in done.stderr.splitlines() if "no such file" in line]
    assert len(errors) == len(NAMES) and all("gone" in line and "\\" in line for line in errors)


DEEP = 100_000


DEEP_ANSWERS = {
    "json": {"100k.png": "[" * DEEP + "]" * DEEP, "900.png": '{"a":' * 900 + "1" + "}" * 900},
    "xml": {"100k.png": "<a>" * DEEP + "</a>" * DEEP, "5000.png": "<a>" * 5000 + "</a>" * 5000},
}


@pytest.mark.parametrize("response", ["json", "xml"])
def test_a_deeply_nested_answer_is_a_clear_error_for_that_file(fake_host, hosts_dir, tmp_path, response):
    answers = DEEP_ANSWERS[response]
    fake_host.respond_with(
        lambda request, host: Reply(
            body=answers[request.file.filename].encode(), headers={"Content-Type": f"application/{response}"}
        )
    )
    write_host(hosts_dir, "deep", endpoint=fake_host.endpoint(), url_path="data.url", response=response)
    for seed, name in enumerate(answers):
        (tmp_path / name).write_bytes(png(4, 4, seed=seed + 30))
    done = run_picbeam("upload", *(tmp_path / name for name in answers), "--host", "deep", "--retries", "0")
    assert done.returncode == 1
    assert "RecursionError" not in done.stderr and "internal error" not in done.stderr, done.stderr[-500:]
    lines = [line for line in done.stderr.splitlines() if "deep:" in line]
    assert len(lines) == len(answers) and all("nested too deeply" in line for line in lines), lines


def test_serve_answers_400_to_a_deeply_nested_json_body(fake_host, hosts_dir):
    from test_serve import InProcessServer, request

    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    with InProcessServer() as server:
        answer = request(server.port, body='{"list": ' + "[" * DEEP + "]" * DEEP + "}")
    assert answer.status == 400
    assert "nested too deeply" in answer.json["message"]
    assert fake_host.requests == []
