"""`picbeam hosts import`: each format's representative files import into hosts that send, on the wire,
the request the original tool sends, and read its answers the way that tool does."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import picbeam
import pytest
from picbeam import ConfigError
from picbeam.importers import Imported, ImportRefused, read, read_data
from picbeam.importers.common import dotted_path, is_placeholder
from picbeam.importers.sharex import dotnet_regex_to_python, json_path_to_jmespath
from picbeam.spec import dump_toml
from picbeam.testing import Reply, run_picbeam

FILES = Path(__file__).parent / "data" / "importers"


def import_into(hosts_dir: Path, file: str, **options: str) -> str:
    """Import a test file into the hosts folder (the public API; the CLI has its own tests); its notes."""
    notes = []
    for result in read(FILES / file, **options):
        assert isinstance(result, Imported), result
        (hosts_dir / f"{result.name}.toml").write_text(dump_toml(result.fields), encoding="utf-8")
        notes.extend(result.notes)
    return "\n".join(notes)


def upload(host: str, path: Path, endpoint: str) -> dict:
    """Upload through the public API; the record `--format json` prints."""
    [result] = picbeam.upload([path], host=host, overrides=[f"endpoint={endpoint}"], force=True)
    return result.to_json()


def test_old_syntax_sxcu_with_regexlist_query_keys_and_placeholders(fake_host, hosts_dir, images):
    """The whole flow through the command line: import, then upload."""
    done = run_picbeam("hosts", "import", FILES / "old-regex.sxcu", "--dir", hosts_dir)
    assert done.returncode == 0 and done.stdout == f"wrote {hosts_dir / 'old-syntax-with-regexlist.toml'}\n"
    notes = done.stderr
    assert "query.key was a placeholder ('<API KEY HERE>'): export OLD_SYNTAX_WITH_REGEXLIST_KEY=" in notes
    assert "ShareX picks one at random of 2 ($random:eu|us$); the host uses 'eu'" in notes
    fake_host.reply(text='<p><a href="https://files.example/f/abc.png">abc</a></p> id=42;del=zz9\n')
    env = {"OLD_SYNTAX_WITH_REGEXLIST_KEY": "key-123456", "OLD_SYNTAX_WITH_REGEXLIST_AUTHORIZATION": "tok-abcdef"}
    [path] = images(1)
    done = run_picbeam("upload", path, "--host", "old-syntax-with-regexlist", "--format", "json",
                       "--set", f"endpoint={fake_host.endpoint('/api/upload.php')}", env=env)  # fmt: skip
    record = json.loads(done.stdout)
    assert record["url"] == "https://files.example/f/abc.png"  # $regex:1|url$ (a .NET named group)
    assert record["thumbnail_url"] == "https://files.example/thumb/42.jpg"  # $regex:2,1$
    assert record["delete_url"] == "https://files.example/delete/zz9"  # $regex:2|key$ ((?'key'...))
    [request] = fake_host.requests
    assert request.path == "/api/upload.php"
    assert request.query == {"key": "key-123456", "mode": "raw", "expires": "24"}  # RequestURL's query moved
    assert request.headers["Authorization"] == "Bearer tok-abcdef" and request.headers["X-Client"] == "sharex"
    assert request.form == {"album": "blog", "title": "img0000.png", "mirror": "eu", "note": ""}
    assert request.file.field == "upload[]" and request.file.data == path.read_bytes()


def test_old_syntax_error_message_is_the_answer_text(fake_host, hosts_dir, images, monkeypatch):
    import_into(hosts_dir, "old-regex.sxcu")
    fake_host.reply(Reply(status=403, text="Invalid key"))
    monkeypatch.setenv("OLD_SYNTAX_WITH_REGEXLIST_KEY", "key-123456")
    monkeypatch.setenv("OLD_SYNTAX_WITH_REGEXLIST_AUTHORIZATION", "tok-abcdef")
    [path] = images(1)
    record = upload("old-syntax-with-regexlist", path, fake_host.endpoint("/api/upload.php"))
    assert record["error"] == "HTTP 403: Invalid key (check the host's token, key or permissions)"


def test_binary_body_current_syntax_with_filename_everywhere(fake_host, hosts_dir, images, monkeypatch):
    import_into(hosts_dir, "binary.sxcu")
    monkeypatch.setenv("BINARY_PUT_CURRENT_SYNTAX_TOKEN", "tok-777777")
    fake_host.reply(json={"data": {"links": [{"url": "https://store.example/o/1.png"}], "thumb": "https://s.example/t"}},
                    headers={"X-Delete-Url": "https://store.example/o/1.png?delete=k"})  # fmt: skip
    [path] = images(1)
    shot = path.rename(path.with_name("my shot.png"))
    record = upload("binary-put-current-syntax", shot, fake_host.endpoint("/v1/objects/{filename}"))
    assert (record["url"], record["thumbnail_url"], record["delete_url"]) == (
        "https://store.example/o/1.png", "https://s.example/t?w=200", "https://store.example/o/1.png?delete=k",
    )  # fmt: skip
    [request] = fake_host.requests
    assert request.method == "PUT" and request.path == "/v1/objects/my shot.png"
    assert request.query == {"name": "my shot.png", "token": "tok-777777"}
    assert request.headers["X-Upload-Name"] == "my shot.png" and request.headers["X-Kind"] == "screenshot {raw}"
    assert request.headers["Content-Type"] == "image/png" and request.body == shot.read_bytes()


def test_empty_url_means_a_text_answer(fake_host, hosts_dir, images):
    notes = import_into(hosts_dir, "text.sxcu")
    assert "Arguments.expiry: ShareX asks which to use of 3" in notes
    fake_host.reply(text="https://paste.example/x1.png\n")
    [path] = images(1)
    record = upload("text", path, fake_host.endpoint("/"))
    assert record["url"] == "https://paste.example/x1.png"
    assert record["thumbnail_url"] == "https://paste.example/x1.png?thumb=1"
    assert fake_host.requests[0].form == {"reqtype": "fileupload", "expiry": "1h"}


def test_xml_answers_with_an_xpath(fake_host, hosts_dir, images):
    import_into(hosts_dir, "xml.sxcu")
    fake_host.reply(text="<upload><links><link><url>https://x/1</url></link><link><url>https://x/2</url></link>"
                         "</links><thumb>https://x/t</thumb></upload>")  # fmt: skip
    [path] = images(1)
    record = upload("xml-answers", path, fake_host.endpoint("/upload"))
    assert (record["url"], record["thumbnail_url"]) == ("https://x/2", "https://x/t")  # link[2]: XPath counts from 1


def test_picgo_web_uploader(fake_host, hosts_dir, images):
    notes = import_into(hosts_dir, "picgo-config.json")
    assert "headers.Content-Type ('multipart/form-data') left out" in notes
    fake_host.reply(json={"data": {"links": [{"url": "https://img.example/i/1.png"}]}})
    [path] = images(1)
    record = upload("picgo-web-uploader", path, fake_host.endpoint("/api/upload"))
    assert record["url"] == "https://img.example/i/1.png"  # jsonPath data.links.0.url
    [request] = fake_host.requests
    assert request.query == {"album": "notes"}
    assert request.headers["Authorization"] == "Bearer picgo-token-123456"
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert request.form == {"strategy_id": "2", "public": "true"}  # customBody's JSON values as JSON writes them
    assert request.file.field == "image"


def test_piclist_config_list_imports_every_named_config(fake_host, hosts_dir, images):
    import_into(hosts_dir, "piclist-config.json")
    assert sorted(p.name for p in hosts_dir.iterdir()) == [
        "picgo-web-uploader-archive.toml",
        "picgo-web-uploader-blog-cdn.toml",
    ]
    fake_host.script([Reply(text="2024/a.png"), Reply(json={"result": {"path": "/b/c.png"}})])
    [path] = images(1)
    assert (
        upload("picgo-web-uploader-blog-cdn", path, fake_host.endpoint())["url"] == "https://cdn.example/i/2024/a.png"
    )
    assert upload("picgo-web-uploader-archive", path, fake_host.endpoint())["url"] == "https://archive.example/b/c.png"
    # PicList sends "${ARCHIVE_KEY}" as written; it is not an environment variable there.
    assert fake_host.requests[1].headers["X-Key"] == "${ARCHIVE_KEY}" and fake_host.requests[1].file.field == "f"


def test_qexo_remote_api_settings(fake_host, hosts_dir, images):
    import_into(hosts_dir, "qexo.json", name="qexo-smms")
    fake_host.reply(json={"success": True, "data": {"url": "https://i.loli.net/a.png", "delete": "https://sm.ms/d/1"}})
    [path] = images(1)
    record = upload("qexo-smms", path, fake_host.endpoint("/api/v2/upload"))
    assert (record["url"], record["delete_url"]) == ("https://i.loli.net/a.png", "https://sm.ms/d/1")
    [request] = fake_host.requests
    assert request.headers["Authorization"] == "qexo-smms-token-999"
    assert request.form == {"format": "json"} and request.file.field == "smfile"


def test_upic_export_imports_custom_hosts_and_refuses_others(hosts_dir):
    done = run_picbeam("hosts", "import", FILES / "upic-export.json", "--dir", hosts_dir)
    assert done.returncode == 1  # one host written, one refused
    assert "upic-export.json: 'SM.MS' not imported: a uPic smms host; only custom hosts import" in done.stderr
    assert "Authorization holds a literal secret" in done.stderr
    assert [p.name for p in hosts_dir.iterdir()] == ["my-server.toml"]


@pytest.mark.parametrize("path", ["2024/a.png", "/2024/a.png"])
def test_upic_custom_host_joins_domain_and_suffix(path, fake_host, hosts_dir, images):
    [imported, refused] = read(FILES / "upic-export.json")
    assert isinstance(refused, ImportRefused)
    (hosts_dir / "my-server.toml").write_text(dump_toml(imported.fields), encoding="utf-8")
    fake_host.reply(json={"data": {"files": [{"path": path}]}})
    [image] = images(1)
    assert upload("my-server", image, fake_host.endpoint())["url"] == "https://cdn.up.example/2024/a.png!webp"
    [request] = fake_host.requests
    assert request.headers["Authorization"] == "Bearer upic-token-4242"
    assert request.headers["X-Name"] == "img0000.png"
    assert request.form == {"folder": "blog", "name": "img0000.png"} and request.file.field == "file"


def test_upic_json_body_mode_is_refused():
    host = {"url": "https://u.example/", "field": "file", "resultPath": '["url"]',
            "headers": json.dumps([{"key": "Content-Type", "value": "application/json"}])}  # fmt: skip
    [result] = read_data([json.dumps({"name": "J", "type": "custom", "data": json.dumps(host)})], where="x.json")
    assert isinstance(result, ImportRefused) and "base64-encoded in a JSON body" in str(result)


SXCU = {"Version": "13.0.0", "RequestMethod": "POST", "RequestURL": "https://h.example/up", "Body": "MultipartFormData",
        "FileFormName": "file", "URL": "$json:url$"}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "reason", "message"),
    [
        ({"DestinationType": "URLShortener", "Arguments": {"url": "$input$"}}, "url-shortener",
         "not imported: a URLShortener (ShareX sends it a link, not a file)"),
        ({"Arguments": {"text": "$input$"}}, "text-or-link",
         "it sends the text or link ShareX is given ($input$ in Arguments.text), not a file"),
        ({"Body": "JSON", "Data": '{"a": 1}'}, "no-file", "not imported: it sends a JSON body and no file"),
        ({"FileFormName": ""}, "no-file", "it has no FileFormName, so ShareX sends it no file"),
        ({"RequestMethod": "GET"}, "no-file", "a GET request carries no file"),
        ({"Arguments": {"tag": "$prompt:Tag$"}}, "unmappable", "Arguments.tag asks for a value at each upload"),
        ({"URL": "$foo:bar$"}, "unmappable", "URL: $foo:bar$ is not a ShareX function picbeam can read answers"),
        ({"URL": "$regex:1$", "RegexList": ["\\p{L}+"]}, "unmappable", "uses the Unicode category \\p{L}+"),
        ({"URL": "$regex:2$", "RegexList": ["a"]}, "unmappable", "names pattern 2, but RegexList has 1"),
        ({"URL": "$json:a..b$"}, "unmappable", "uses recursive descent '..' in its JSON path"),
        ({"URL": "$json:a$", "ThumbnailURL": "$xml:/r/t$"}, "unmappable", "reads the answer both as JSON and as XML"),
        ({"URL": "$json:a$/$filename$"}, "unmappable", "puts the file's name after a value read from the answer"),
    ],
)  # fmt: skip
def test_unmappable_uploaders_are_refused_with_one_specific_line(changes, reason, message):
    [result] = read_data({**SXCU, **changes}, where="u.sxcu")
    assert isinstance(result, ImportRefused), result
    assert result.reason == reason and message in str(result) and "\n" not in str(result)


def test_refusal_through_the_cli_is_one_line(tmp_path, hosts_dir):
    source = tmp_path / "short.sxcu"
    source.write_text(json.dumps({**SXCU, "DestinationType": "URLShortener"}))
    done = run_picbeam("hosts", "import", source, "--dir", hosts_dir)
    assert done.returncode == 2
    assert (
        done.stderr == "picbeam: error: short.sxcu: not imported: a URLShortener (ShareX sends it a link, not a file)\n"
    )
    assert list(hosts_dir.iterdir()) == []


def test_import_writes_0600_refuses_to_overwrite_and_takes_a_name(tmp_path, home):
    target = home / "config" / "picbeam" / "hosts.d" / "mine.toml"  # the user hosts folder by default
    first = run_picbeam("hosts", "import", FILES / "text.sxcu", "--name", "mine")
    assert first.returncode == 0 and first.stdout == f"wrote {target}\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    again = run_picbeam("hosts", "import", FILES / "text.sxcu", "--name", "mine")
    assert again.returncode == 2 and "exists; use --force to replace it" in again.stderr
    assert run_picbeam("hosts", "import", FILES / "text.sxcu", "--name", "mine", "--force").returncode == 0
    assert run_picbeam("hosts", "show", "mine").returncode == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "bad.json: not valid JSON (line 1: Expecting value)"),
        ('{"hello": 1}', "bad.json: not a configuration picbeam can import (it reads a ShareX custom uploader"),
    ],
)
def test_unreadable_files_are_one_line(content, message, tmp_path, hosts_dir):
    source = tmp_path / "bad.json"
    source.write_text(content)
    done = run_picbeam("hosts", "import", source, "--dir", hosts_dir)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_name_needs_a_single_host():
    [refused] = read(FILES / "piclist-config.json", name="one")
    assert isinstance(
        refused, ImportRefused
    ) and "holds 2 uploaders (picgo-web-uploader-blog-cdn, picgo-web-uploader-archive); pick one with --only" in str(
        refused
    )


def test_format_can_be_forced_and_must_fit():
    [result] = read(FILES / "text.sxcu", format="sharex")
    assert isinstance(result, Imported)
    with pytest.raises(ConfigError, match=r"text\.sxcu: not a PicGo/PicList config \(config\.json, data\.json\)"):
        read(FILES / "text.sxcu", format="picgo")


@pytest.mark.parametrize(
    ("dotnet", "python"),
    [
        ("(?<id>\\d+)", "(?P<id>\\d+)"),
        ("(?'id'\\d+)-\\k<id>", "(?P<id>\\d+)-(?P=id)"),
        ("(?<=a)b(?<!c)", "(?<=a)b(?<!c)"),  # look-behinds stay
        ("[(?<x>)]", "[(?<x>)]"),  # inside a class it is text
        ("\\(?<x>y", "\\(?<x>y"),  # an escaped parenthesis opens no group
        ("end\\z", "end\\Z"),
    ],
)
def test_dotnet_regex_to_python(dotnet, python):
    assert dotnet_regex_to_python(dotnet, ValueError) == python


@pytest.mark.parametrize(
    ("path", "jmespath"),
    [
        ("$.data.url", "data.url"),
        ("['attachments'][0]['url']", "attachments[0].url"),
        ("[0].src", "[0].src"),
        ("data['file-url']", 'data."file-url"'),
        ("files.url", "files.url"),
    ],
)
def test_newtonsoft_json_paths(path, jmespath):
    assert json_path_to_jmespath(path, ValueError) == jmespath


def test_dotted_paths_and_placeholders():
    assert dotted_path("data.0.url") == 'data."0".url || data[0].url' and dotted_path("a-b.c") == '"a-b".c'
    for text in ["Your API Token goes here", "<API KEY HERE>", "[insert user key here]", "YOUR_API_KEY",
                 "put_password_here", "YOURAPIKEY", "your-shlink-api-key"]:  # fmt: skip
        assert is_placeholder(text), text
    for text in ["6d207e02198a847aa98d0a2a901485a5", "json", "Bearer abc.def", "ShareX/12.4.1", "hourly"]:
        assert not is_placeholder(text), text
