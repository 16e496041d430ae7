"""`picbeam hosts export NAME --as sxcu`: a ShareX custom uploader that sends what the host sends.

Round trips: export, import the result, and both hosts put the same request on the wire and read the
same URLs from the same answer."""

from __future__ import annotations

import json
import stat

import picbeam
import pytest
from picbeam import HostSpec, SpecHost
from picbeam.config import Config
from picbeam.exporters.sharex import export
from picbeam.importers import Imported, read_data
from picbeam.loader import load_plugins
from picbeam.redaction import ENV_REFERENCE
from picbeam.testing import Reply, run_picbeam, write_host

RICH = {
    "method": "POST", "file_field": "media",
    "query": {"key": "${RT_KEY}", "lang": "en"},
    "headers": {"Authorization": "Bearer ${RT_TOKEN}", "X-File": "{filename}"},
    "form": {"album": "blog", "caption": "{filename} {not-a-placeholder} a|b \\ $${literal}"},
    "url_path": "data.links[0].url", "thumbnail_path": "concat('https://t.example/', data.id, '.jpg')",
    "delete_path": "header('X-Delete')", "error_path": "error.message",
}  # fmt: skip
ANSWER = Reply(
    json={"data": {"links": [{"url": "https://i.example/1.png"}], "id": 7}}, headers={"X-Delete": "https://d/1"}
)


def wire(request) -> dict:
    """What two hosts must agree on for one request."""
    return {
        "method": request.method, "path": request.path, "query": request.query, "form": request.form,
        "headers": {k: v for k, v in request.headers.items() if k in ("Authorization", "X-File", "Content-Type")},
        "file": (request.files[0].field, request.files[0].filename, request.files[0].data) if request.files else None,
        "body": request.body,
    }  # fmt: skip


def both_send_the_same(original: HostSpec, imported: HostSpec, fake_host, image, reply: Reply) -> list:
    results = []
    for spec in (original, imported):
        fake_host.reply(reply)
        [result] = picbeam.upload([image], host=SpecHost(spec), force=True)
        results.append((result.url, result.thumbnail_url, result.delete_url, result.error))
    first, second = fake_host.requests[-2:]
    if first.headers.get("Content-Type", "").startswith("multipart/"):  # boundaries differ by design
        first.headers["Content-Type"] = second.headers["Content-Type"] = "multipart/form-data"
    assert wire(first) == wire(second)
    assert results[0] == results[1]
    return results[0]


def round_trip(spec: HostSpec) -> HostSpec:
    document, _ = export(spec)
    [imported] = read_data(json.loads(json.dumps(document)), where="exported.sxcu", name=f"{spec.name}-back")
    assert isinstance(imported, Imported), imported
    return HostSpec.from_mapping(imported.fields, source="exported.sxcu", name=imported.name)


def test_round_trip_through_the_command_line(fake_host, hosts_dir, tmp_path, images, monkeypatch):
    env = {"RT_KEY": "key-123456", "RT_TOKEN": "tok-abcdef"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    write_host(hosts_dir, "rich", endpoint=fake_host.endpoint("/api/upload"), **RICH)
    exported = tmp_path / "rich.sxcu"
    done = run_picbeam("hosts", "export", "rich", "--as", "sxcu", "-o", exported)
    assert done.returncode == 0 and done.stdout == f"wrote {exported}\n"
    assert "replace <RT_KEY>, <RT_TOKEN> in the file with your values (or export with --expand)" in done.stderr
    document = json.loads(exported.read_text())
    assert document["Parameters"] == {"key": "<RT_KEY>", "lang": "en"}
    assert document["Arguments"]["caption"] == "{filename} \\{not-a-placeholder\\} a\\|b \\\\ $\\{literal\\}"
    assert document["URL"] == "{json:data.links[0].url}"
    assert document["ThumbnailURL"] == "https://t.example/{json:data.id}.jpg"
    assert document["DeletionURL"] == "{header:X-Delete}"
    done = run_picbeam("hosts", "import", exported, "--name", "rich-back", "--dir", hosts_dir)
    assert done.returncode == 0, done.stderr
    # The <VAR> placeholders come back as the same variables.
    assert "export RT_KEY=<your value>" in done.stderr and "export RT_TOKEN=<your value>" in done.stderr
    registry = load_plugins().hosts(Config.load())
    [image] = images(1)
    result = both_send_the_same(registry.get("rich").spec, registry.get("rich-back").spec, fake_host, image, ANSWER)
    assert result == ("https://i.example/1.png", "https://t.example/7.jpg", "https://d/1", None)
    assert fake_host.requests[-1].form["caption"] == "img0000.png {not-a-placeholder} a|b \\ ${literal}"
    assert fake_host.requests[-1].query == {"key": "key-123456", "lang": "en"}


@pytest.mark.parametrize(
    ("fields", "reply", "url"),
    [
        ({"response": "text", "regex": ['href="(?P<u>[^"]+)"', r"id=(\d+)"], "url_path": "regex(`1`, 'u')",
          "thumbnail_path": "concat('https://t/', regex(`2`, `1`))", "delete_path": "response_url()"},
         Reply(text='<a href="https://f.example/a.png">a</a> id=9'), "https://f.example/a.png"),
        ({"response": "text", "url_prefix": "https://p.example/", "form": {"reqtype": "fileupload"}},
         Reply(text="abc.png\n"), "https://p.example/abc.png"),
        ({"body": "binary", "method": "PUT", "query": {"name": "{filename}"}, "url_path": "'https://fixed.example/'"},
         Reply(json={}), "https://fixed.example/"),
        ({"response": "xml", "url_path": "links.link[1].url", "thumbnail_path": "thumb"},
         Reply(text="<r><links><link><url>https://x/1</url></link><link><url>https://x/2</url></link></links>"
                    "<thumb>https://x/t</thumb></r>"), "https://x/2"),
    ],
)  # fmt: skip
def test_round_trips_of_answer_kinds(fields, reply, url, fake_host, images):
    original = HostSpec(name="kind", endpoint=fake_host.endpoint("/up"), **fields)
    [image] = images(1)
    assert both_send_the_same(original, round_trip(original), fake_host, image, reply)[0] == url


def test_export_of_the_smms_preset_says_what_sharex_cannot_do(fake_host, images, monkeypatch):
    done = run_picbeam("hosts", "export", "smms", "--as", "sxcu")
    assert done.returncode == 0
    document = json.loads(done.stdout)
    assert document["Headers"] == {"Authorization": "<SMMS_TOKEN>"} and document["FileFormName"] == "smfile"
    assert "url_path (data.url || images): ShareX has no alternatives; exported the first one" in done.stderr
    assert "success_path (success || code == 'image_repeated') has no ShareX equivalent" in done.stderr
    assert "max_bytes, delete_method: no ShareX equivalent, not exported" in done.stderr


def test_expand_fills_secrets_into_a_private_file_only(hosts_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("RT_TOKEN", "tok-secret-99")
    write_host(hosts_dir, "tok", endpoint="https://h.example/up", url_path="url",
               headers={"Authorization": "Bearer ${RT_TOKEN}"})  # fmt: skip
    refused = run_picbeam("hosts", "export", "tok", "--as", "sxcu", "--expand")
    assert refused.returncode == 2 and "tok-secret-99" not in refused.stdout + refused.stderr
    target = tmp_path / "tok.sxcu"
    done = run_picbeam("hosts", "export", "tok", "--as", "sxcu", "--expand", "-o", target)
    assert done.returncode == 0 and "tok-secret-99" not in done.stdout + done.stderr
    assert json.loads(target.read_text())["Headers"]["Authorization"] == "Bearer tok-secret-99"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["local", "--as", "sxcu"], "host 'local' is a LocalHost written in Python; only declarative hosts export"),
        (["smms", "--as", "json"], "--as 'json': picbeam exports sxcu (ShareX custom uploaders)"),
    ],
)
def test_export_refusals_are_one_line(args, message):
    done = run_picbeam("hosts", "export", *args)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_an_answer_path_sharex_cannot_express_is_an_error():
    spec = HostSpec(name="odd", endpoint="https://h.example/", url_path="data[?kind=='full'] | [0].url")
    with pytest.raises(picbeam.ConfigError, match=r"url_path \(.*\) cannot be written as a ShareX template"):
        export(spec)


@pytest.mark.parametrize("preset", ["chevereto", "lsky", "cloudinary", "imgur", "see", "freeimage"])
def test_presets_come_back_with_the_same_variables(preset):
    registry = load_plugins().hosts(Config.load())
    original = registry.get(preset).spec
    back = round_trip(original)
    # Equal once the variables are read: a ${VAR:-default} comes back as its default.
    references = ENV_REFERENCE.finditer(json.dumps(original.to_mapping()))
    variables = {m.group(1): f"https://value-of-{m.group(1)}" for m in references if m.group(2) is None}
    original, back = original.expanded(variables), back.expanded(variables)
    assert back.endpoint == original.endpoint
    assert (back.headers, back.form, back.query) == (original.headers, original.form, original.query)
    assert back.url_path == original.url_path
