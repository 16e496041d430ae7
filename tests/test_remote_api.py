"""Every remote-API field, proven on the wire against a loopback host."""

from __future__ import annotations

import json

from picbeam.testing import Reply, run_picbeam, write_host


def test_seed_fields_arrive_on_the_wire(fake_host, hosts_dir, images, monkeypatch):
    monkeypatch.setenv("MY_TOKEN", "tok-123456789")
    write_host(
        hosts_dir,
        "myhost",
        endpoint=fake_host.endpoint("/api/upload"),
        file_field="smfile",
        url_path="data.url",
        headers={"Authorization": "${MY_TOKEN}", "X-Client": "picbeam-test"},
        form={"format": "json", "album": "blog"},
        query={"lang": "en"},
    )
    [path] = images(1)
    done = run_picbeam("upload", path, "--host", "myhost")
    assert done.returncode == 0, done.stderr
    [request] = fake_host.requests
    assert request.method == "POST" and request.path == "/api/upload"
    assert request.query == {"lang": "en"}
    assert request.headers["Authorization"] == "tok-123456789"
    assert request.headers["X-Client"] == "picbeam-test"
    assert request.headers["User-Agent"].startswith("picbeam/")
    assert request.form == {"format": "json", "album": "blog"}
    assert request.file.field == "smfile"
    assert request.file.filename == "img0000.png"
    assert request.file.content_type == "image/png"
    assert request.file.data == path.read_bytes()
    assert done.lines == [fake_host.file_url(request)]


def test_jmespath_nested_arrays_and_alternatives(fake_host, hosts_dir, images):
    answer = {
        "status": True,
        "data": {"links": [{"kind": "thumb", "url": "https://x/t.png"}, {"kind": "full", "url": "https://x/full.png"}]},
    }
    fake_host.reply(json=answer)
    write_host(
        hosts_dir,
        "nested",
        endpoint=fake_host.endpoint(),
        url_path="data.links[?kind=='full'] | [0].url",
        thumbnail_path="data.links[0].url",
    )
    write_host(hosts_dir, "alt", endpoint=fake_host.endpoint(), url_path="data.missing || data.links[1].url")
    [path] = images(1)
    done = run_picbeam("upload", path, "--host", "nested", "--format", "json")
    record = json.loads(done.stdout)
    assert record["url"] == "https://x/full.png" and record["thumbnail_url"] == "https://x/t.png"
    assert run_picbeam("upload", path, "--host", "alt").lines == ["https://x/full.png"]


def test_url_prefix_is_prepended(fake_host, hosts_dir, images):
    fake_host.reply(json={"data": {"path": "2026/11/a.png"}})
    write_host(hosts_dir, "cdn", endpoint=fake_host.endpoint(), url_path="data.path", url_prefix="https://cdn.example/")
    [path] = images(1)
    assert run_picbeam("upload", path, "--host", "cdn").lines == ["https://cdn.example/2026/11/a.png"]


def test_text_response_is_the_url(fake_host, hosts_dir, images):
    fake_host.reply(text="  https://files.example/abc.png\n")
    write_host(
        hosts_dir,
        "plain",
        endpoint=fake_host.endpoint(),
        response="text",
        form={"reqtype": "fileupload"},
        file_field="fileToUpload",
    )
    [path] = images(1)
    done = run_picbeam("upload", path, "--host", "plain")
    assert done.lines == ["https://files.example/abc.png"]
    assert fake_host.requests[0].form == {"reqtype": "fileupload"}
    assert fake_host.requests[0].file.field == "fileToUpload"


def test_xml_response_with_jmespath(fake_host, hosts_dir, images):
    fake_host.reply(
        text="<?xml version='1.0'?><root><success>true</success><data><url>https://x/y.png</url>"
        "<hash>h1</hash></data></root>",
        headers={"Content-Type": "application/xml"},
    )
    write_host(
        hosts_dir,
        "xmlhost",
        endpoint=fake_host.endpoint(),
        response="xml",
        url_path="data.url",
        success_path="success == 'true'",
    )
    [path] = images(1)
    assert run_picbeam("upload", path, "--host", "xmlhost").lines == ["https://x/y.png"]


def test_xml_with_entities_is_refused(fake_host, hosts_dir, images):
    fake_host.reply(text='<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><r><url>&a;</url></r>')
    write_host(hosts_dir, "xmlbomb", endpoint=fake_host.endpoint(), response="xml", url_path="url")
    [path] = images(1)
    done = run_picbeam("upload", path, "--host", "xmlbomb")
    assert done.returncode == 1
    assert "instead of XML" in done.stderr


def test_binary_body_sends_the_raw_file(fake_host, hosts_dir, images):
    write_host(hosts_dir, "raw", endpoint=fake_host.endpoint("/put"), method="PUT", body="binary", url_path="data.url")
    fake_host.reply(json={"data": {"url": "https://x/raw.png"}})
    [path] = images(1)
    assert run_picbeam("upload", path, "--host", "raw").lines == ["https://x/raw.png"]
    [request] = fake_host.requests
    assert request.method == "PUT" and request.body == path.read_bytes()
    assert request.headers["Content-Type"] == "image/png"


def test_success_path_false_reports_error_path(fake_host, hosts_dir, images):
    fake_host.reply(json={"ok": False, "error": {"message": "quota exceeded"}, "data": {"url": "https://x/a.png"}})
    write_host(
        hosts_dir,
        "strict",
        endpoint=fake_host.endpoint(),
        url_path="data.url",
        success_path="ok",
        error_path="error.message",
    )
    [path] = images(1)
    done = run_picbeam("upload", path, "--host", "strict")
    assert done.returncode == 1
    assert done.lines == [""]
    assert f"{path}: strict: rejected: quota exceeded" in done.stderr


def test_http_error_uses_error_path_and_status(fake_host, hosts_dir, images):
    fake_host.reply(Reply(status=401, json={"message": "bad token"}))
    write_host(hosts_dir, "authy", endpoint=fake_host.endpoint(), url_path="data.url", error_path="message")
    [path] = images(1)
    done = run_picbeam("upload", path, "--host", "authy")
    assert done.returncode == 1
    assert "HTTP 401: bad token (check the host's token or key)" in done.stderr
    assert "Traceback" not in done.stderr


def test_set_overrides_fields_for_one_run(fake_host, hosts_dir, images):
    write_host(
        hosts_dir,
        "o",
        endpoint="https://unreachable.invalid/upload",
        url_path="data.url",
        headers={"Authorization": "old"},
    )
    [path] = images(1)
    done = run_picbeam(
        "upload",
        path,
        "--host",
        "o",
        "--set",
        f"endpoint={fake_host.endpoint('/mirror')}",
        "--set",
        "headers.Authorization=new-token",
        "--set",
        "form.extra=1",
    )
    assert done.returncode == 0, done.stderr
    [request] = fake_host.requests
    assert request.path == "/mirror" and request.headers["Authorization"] == "new-token"
    assert request.form == {"extra": "1"}


def test_extends_starts_from_another_host(fake_host, hosts_dir, images, monkeypatch):
    monkeypatch.setenv("SMMS_TOKEN", "smms-secret-token")
    write_host(
        hosts_dir,
        "mirror",
        extends="smms",
        endpoint=fake_host.endpoint("/api/v2/upload"),
        form={"format": "", "album": "x"},
    )
    [path] = images(1)
    done = run_picbeam("upload", path, "--host", "mirror")
    assert done.returncode == 0, done.stderr
    [request] = fake_host.requests
    assert request.file.field == "smfile" and request.headers["Authorization"] == "smms-secret-token"
    assert request.form == {"album": "x"}  # an empty value removes an inherited table entry


def test_later_hosts_folder_overrides_earlier(fake_host, hosts_dir, images, home):
    user_dir = home / "config" / "picbeam" / "hosts.d"
    write_host(user_dir, "layered", endpoint="https://unreachable.invalid/", url_path="data.url")
    write_host(hosts_dir, "layered", endpoint=fake_host.endpoint("/winner"), url_path="data.url")
    [path] = images(1)
    assert run_picbeam("upload", path, "--host", "layered").returncode == 0
    assert fake_host.requests[0].path == "/winner"


def test_file_names_arrive_as_browsers_send_them(fake_host, hosts_dir, tmp_path):
    from picbeam.samples import png

    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    path = tmp_path / "holiday photo é.png"
    path.write_bytes(png(2, 2, seed=99))
    assert run_picbeam("upload", path, "--host", "fake").returncode == 0
    assert fake_host.requests[0].file.filename == "holiday photo é.png"
