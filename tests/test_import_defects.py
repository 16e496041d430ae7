"""Importer behaviour found side by side with ShareX's, Qexo's and PicGo's own code on the wire: ordinary
values are not placeholders, literal braces are sent as written, a number step matches an object key or
a list index, ShareX's first-match XPath, {outputbox}, name patterns, and control characters refused."""

from __future__ import annotations

import json
import time

from picbeam.importers import Imported, ImportRefused, read_data
from picbeam.testing import Reply, run_picbeam


def imported(tmp_path, hosts_dir, document, name="x.sxcu"):
    source = tmp_path / name
    source.write_text(json.dumps(document), encoding="utf-8")
    done = run_picbeam("hosts", "import", source, "--dir", hosts_dir)
    return done


def sxcu(fake_host, **more):
    return {
        "Version": "15.0.0", "Name": "defects", "DestinationType": "ImageUploader", "RequestMethod": "POST",
        "RequestURL": fake_host.endpoint("/up"), "Body": "MultipartFormData", "FileFormName": "file", **more,
    }  # fmt: skip


def test_sharex_xml_first_match_outputbox_and_name_patterns(tmp_path, hosts_dir, fake_host, images):
    arguments = {"name": "shot-%y-%mo-%d", "tags": "\\{year\\} [blog]", "album": "Your Photos"}
    document = sxcu(fake_host, Arguments=arguments, Headers={"X-Note": "sent from here"},
                    URL="{xml:/files/file/url}{outputbox:Uploaded|done}")  # fmt: skip
    done = imported(tmp_path, hosts_dir, document)
    assert done.returncode == 0, done.stderr
    assert "{outputbox:Uploaded|done} shows a box in ShareX and adds nothing to the URL; left out" in done.stderr
    fake_host.reply(text="<files><file><url>https://x.example/1.png</url></file>"
                         "<file><url>https://x.example/2.png</url></file></files>")  # fmt: skip
    [path] = images(1)
    done = run_picbeam("upload", path, "--host", "defects")
    assert done.lines == ["https://x.example/1.png"], done.stderr  # SelectSingleNode: the first
    [request] = fake_host.requests
    assert request.form["name"] == time.strftime("shot-%Y-%m-%d")
    assert request.form["tags"] == "{year} [blog]" and request.form["album"] == "Your Photos"
    assert request.headers["X-Note"] == "sent from here"


def test_recognisable_placeholders_still_become_variables(tmp_path, hosts_dir, fake_host):
    document = sxcu(
        fake_host, Arguments={"key": "<API KEY HERE>", "token": "Your API Token goes here"}, URL="{json:url}"
    )
    done = imported(tmp_path, hosts_dir, document)
    assert "form.key was a placeholder ('<API KEY HERE>')" in done.stderr
    assert "form.token was a placeholder ('Your API Token goes here')" in done.stderr


def test_control_characters_are_refused_at_import(tmp_path, hosts_dir, fake_host):
    document = sxcu(fake_host, Headers={"X-Evil": "a\r\nX-Injected: 1"}, URL="{json:url}")
    done = imported(tmp_path, hosts_dir, document)
    assert done.returncode == 2 and not list(hosts_dir.glob("*.toml"))
    [line] = done.stderr.strip().splitlines()
    # Refused before anything is written, in one line naming the header (the host-file check or the importer's).
    assert "X-Evil" in line and ("holds a control character" in line or "holds a line break" in line), line


def test_number_steps_match_object_keys_and_list_indices(tmp_path, hosts_dir, fake_host, images):
    settings = {"api": fake_host.endpoint("/up"), "post_params": "file", "json_path": "data.0.url"}
    [result] = read_data(settings, where="qexo.json", name="q")
    assert isinstance(result, Imported) and result.fields["url_path"] == 'data."0".url || data[0].url'
    (hosts_dir / "q.toml").write_text('endpoint = "x"\n', encoding="utf-8")
    done = run_picbeam("hosts", "import", _write(tmp_path, settings), "--dir", hosts_dir, "--name", "q", "--force")
    assert done.returncode == 0, done.stderr
    fake_host.script([Reply(json={"data": {"0": {"url": "https://o.example/a.png"}}}),
                      Reply(json={"data": [{"url": "https://l.example/b.png"}]})])  # fmt: skip
    paths = images(2)
    assert run_picbeam("upload", paths[0], "--host", "q").lines == ["https://o.example/a.png"]
    assert run_picbeam("upload", paths[1], "--host", "q").lines == ["https://l.example/b.png"]


def test_refusals_name_the_field_in_one_line():
    [refused] = read_data({"url": "https://a.example/up", "paramName": "f", "customHeader": '{"A\\nB": "x"}'},
                          where="config.json")  # fmt: skip
    assert isinstance(refused, ImportRefused) and "headers.A\\nB holds a control character" in str(refused)


def _write(tmp_path, data):
    path = tmp_path / "qexo.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_sharex_put_uploader_prints_the_address_with_the_file_name(tmp_path, hosts_dir, fake_host, images):
    document = sxcu(fake_host, RequestMethod="PUT", RequestURL=fake_host.endpoint("/dav/{filename}"), Body="Binary",
                    URL="https://files.example/\\{x\\}/{filename}")  # fmt: skip
    document.pop("FileFormName")
    done = imported(tmp_path, hosts_dir, document)
    assert done.returncode == 0, done.stderr
    fake_host.reply(Reply(status=201, text=""))
    [path] = images(1)
    shot = path.rename(path.with_name("my shot.png"))
    done = run_picbeam("upload", shot, "--host", "defects")
    assert done.lines == ["https://files.example/{x}/my%20shot.png"], done.stderr
    assert fake_host.requests[0].path == "/dav/my shot.png"
