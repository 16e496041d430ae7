"""The schema extensions real hosts need: concat(), regex patterns, header(), response_url(), and
{filename}-style placeholders in the request, proven against a loopback host."""

from __future__ import annotations

import json

import picbeam
import pytest
from picbeam import ConfigError, HostSpec, SpecHost
from picbeam.testing import Reply, run_picbeam, write_host


def upload_one(spec: HostSpec, path) -> picbeam.UploadResult:
    [result] = picbeam.upload([path], host=SpecHost(spec), force=True)
    return result


def test_concat_builds_a_url_from_several_fields(fake_host, images):
    fake_host.reply(json={"data": {"code": "Ab3", "extension": "png", "n": 7}})
    spec = HostSpec(
        name="parts", endpoint=fake_host.endpoint(),
        url_path="concat('https://i.example/', data.code, '.', data.extension)",
        thumbnail_path="concat('https://i.example/t/', data.n)",
        delete_path="concat('https://i.example/d/', data.missing)",
    )  # fmt: skip
    [path] = images(1)
    result = upload_one(spec, path)
    assert result.url == "https://i.example/Ab3.png"
    assert result.thumbnail_url == "https://i.example/t/7"  # numbers read as written, not 7.0
    assert result.delete_url is None  # a missing piece gives no URL rather than a broken one


def test_concat_with_a_missing_piece_is_a_failure(fake_host, images):
    fake_host.reply(json={"data": {"code": "Ab3"}})
    spec = HostSpec(name="parts", endpoint=fake_host.endpoint(), url_path="concat('https://i/', data.code, data.ext)")
    [path] = images(1)
    result = upload_one(spec, path)
    assert not result.ok and "the answer has no URL at" in result.error


def test_regex_groups_by_number_and_name_from_a_text_answer(fake_host, images):
    fake_host.reply(text="ok\nhttps://f.example/abc.png\nsecret-del-key\n")
    spec = HostSpec(
        name="rx", endpoint=fake_host.endpoint(), response="text",
        regex=[r"(?P<url>https://\S+)\n(\S+)"],
        url_path="regex(`1`, 'url')", delete_path="concat('https://f.example/d/', regex(`1`, `2`))",
    )  # fmt: skip
    [path] = images(1)
    result = upload_one(spec, path)
    assert result.url == "https://f.example/abc.png"
    assert result.delete_url == "https://f.example/d/secret-del-key"


def test_regex_that_does_not_match_is_a_clear_failure(fake_host, images):
    fake_host.reply(text="<html><title>Upload failed</title></html>")
    spec = HostSpec(name="rx", endpoint=fake_host.endpoint(), response="text", regex=["href=\"(.+?)\""],
                    url_path="regex(`1`, `1`)")  # fmt: skip
    [path] = images(1)
    result = upload_one(spec, path)
    assert not result.ok and "no URL at 'regex(`1`, `1`)'" in result.error


def test_regex_reads_the_raw_text_of_a_json_answer(fake_host, images):
    fake_host.reply(json={"id": "5f0c", "url": "https://y.example/5f0c.gif"})
    spec = HostSpec(name="mixed", endpoint=fake_host.endpoint(), regex=[r"\.(?P<ext>png|gif)\""],
                    url_path="concat('https://y.example/api/', id, '.', regex(`1`, 'ext'))")  # fmt: skip
    [path] = images(1)
    assert upload_one(spec, path).url == "https://y.example/api/5f0c.gif"


def test_header_and_response_url(fake_host, images):
    fake_host.script(
        [
            Reply(status=303, headers={"Location": "/image/Zx9"}),
            Reply(text="<html>a page</html>", headers={"X-Id": "Zx9"}),
        ]
    )
    spec = HostSpec(name="redir", endpoint=fake_host.endpoint(), response="text", url_path="response_url()",
                    thumbnail_path="concat('https://t.example/', header('x-id'))")  # fmt: skip
    [path] = images(1)
    result = upload_one(spec, path)
    assert result.url == fake_host.url + "/image/Zx9"
    assert result.thumbnail_url == "https://t.example/Zx9"
    assert [r.method for r in fake_host.requests] == ["POST", "GET"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url_path": "concatenate(a)"}, "calls unknown function concatenate() (picbeam adds: concat, header"),
        ({"url_path": "response_url(a)"}, "response_url() takes 0 argument(s), not 1"),
        ({"url_path": "regex(`1`)"}, "calls regex() but the host has no 'regex' patterns"),
        ({"url_path": "regex(`2`)", "regex": ["a(b)"]}, "regex(2, ...) names no pattern; 'regex' has 1 (1-based)"),
        ({"url_path": "regex(`1`, 'id')", "regex": ["a(b)"]}, "pattern 1 of 'regex' has no group named 'id'"),
        ({"url_path": "regex(`1`, `2`)", "regex": ["a(b)"]}, "pattern 1 of 'regex' has only 1 group(s)"),
        ({"url_path": "@", "regex": ["a(b"]}, "field 'regex' pattern 1 is not a valid regular expression"),
    ],
)
def test_expression_mistakes_are_caught_when_the_host_loads(fields, message):
    with pytest.raises(ConfigError, match="host 'h'") as info:
        HostSpec(name="h", endpoint="https://x.example/", **fields)
    assert message in str(info.value)


def test_bad_regex_in_a_host_file_is_one_line_naming_the_file(hosts_dir, images):
    path = write_host(hosts_dir, "badrx", endpoint="https://x.example/", response="text", regex=["(?<n>x)"],
                      url_path="regex(`1`, 'n')")  # fmt: skip
    [image] = images(1)
    done = run_picbeam("upload", image, "--host", "badrx")
    assert done.returncode == 2
    assert f"{path}: host 'badrx': field 'regex' pattern 1 is not a valid regular expression" in done.stderr
    assert "Traceback" not in done.stderr


def test_file_placeholders_fill_the_request(fake_host, images):
    fake_host.reply(json={"url": "https://x.example/a.png"})
    spec = HostSpec(
        name="ph", endpoint=fake_host.endpoint("/store/{filename}"), body="binary", url_path="url",
        query={"filename": "{filename}", "literal": "{not_a_placeholder}"},
        headers={"X-Stem": "{name}{ext}"}, form={},
    )  # fmt: skip
    [path] = images(1)
    spaced = path.with_name("my shot.png")
    path.rename(spaced)
    assert upload_one(spec, spaced).ok
    [request] = fake_host.requests
    assert request.path == "/store/my shot.png"  # percent-encoded on the wire, decoded by the server
    assert request.query == {"filename": "my shot.png", "literal": "{not_a_placeholder}"}
    assert request.headers["X-Stem"] == "my shot.png"
    assert request.body == spaced.read_bytes()


def test_placeholders_in_form_fields_through_the_cli(fake_host, hosts_dir, images):
    write_host(hosts_dir, "caption", endpoint=fake_host.endpoint(), url_path="data.url",
               form={"content": "**{filename}**", "json": '{"a": 1}'})  # fmt: skip
    [path] = images(1)
    done = run_picbeam("upload", path, "--host", "caption", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["url"]
    assert fake_host.requests[0].form == {"content": "**img0000.png**", "json": '{"a": 1}'}


def test_set_regex_gives_one_pattern_and_the_field_round_trips(hosts_dir):
    spec = HostSpec(name="rx", endpoint="https://x.example/", response="text", regex=["a(b)"], url_path="regex(`1`)")
    changed = spec.derive({"regex": "id=(?P<id>\\d+)", "url_path": "regex(`1`, 'id')"}, source="--set")
    assert changed.regex == ["id=(?P<id>\\d+)"]
    path = write_host(hosts_dir, "rx", **{k: v for k, v in spec.to_mapping().items() if k != "name"})
    assert "regex = [" in path.read_text()
    done = run_picbeam("hosts", "show", "rx", "--set", "regex=id=(\\d+)")
    assert done.returncode == 0 and 'regex = ["id=(\\\\d+)"]' in done.stdout
