"""The cfimgbed host (CloudFlare ImgBed) against a loopback site that checks the bearer token and keeps
files: upload with a templated folder, the URL from [0].src, delete through `picbeam delete`."""

from __future__ import annotations

import time
from urllib.parse import unquote

from picbeam.testing import Reply, run_picbeam, write_host

TOKEN = "imgbed-token-7777"


def site(fake_host, files):
    def respond(request, host):
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return Reply(status=401, json={"error": "Unauthorized"})
        if request.method == "POST" and request.path == "/upload":
            folder = request.query.get("uploadFolder", "")
            name = f"{folder}/{request.file.filename}" if folder else request.file.filename
            files[name] = request.file.data
            return Reply(json=[{"src": f"/file/{name}"}])
        if request.method == "DELETE" and request.path.startswith("/api/manage/delete/"):
            name = unquote(request.path.removeprefix("/api/manage/delete/"))
            return Reply(json={"success": True}) if files.pop(name, None) else Reply(status=404, text="not found")
        return Reply(status=404, text="no route")

    fake_host.respond_with(respond)


def test_upload_to_a_folder_and_delete(fake_host, hosts_dir, images):
    files: dict[str, bytes] = {}
    site(fake_host, files)
    write_host(hosts_dir, "bed", extends="cfimgbed", site=fake_host.url, path="blog/{year}", name_type="origin")
    [path] = images(1)
    env = {"CFIMGBED_TOKEN": TOKEN}
    done = run_picbeam("upload", path, "--host", "bed", env=env)
    assert done.returncode == 0, done.stderr
    year = time.strftime("%Y")
    assert done.lines == [f"{fake_host.url}/file/blog/{year}/img0000.png"]
    assert files == {f"blog/{year}/img0000.png": path.read_bytes()}
    assert fake_host.requests[0].query == {"uploadFolder": f"blog/{year}", "uploadNameType": "origin"}
    deleted = run_picbeam("delete", done.lines[0], env=env)
    assert deleted.returncode == 0, deleted.stderr
    assert files == {}


def test_wrong_token_and_custom_domain(fake_host, hosts_dir, images):
    files: dict[str, bytes] = {}
    site(fake_host, files)
    write_host(hosts_dir, "bed", extends="cfimgbed", site=fake_host.url, url_prefix="https://cdn.example")
    [path] = images(1)
    done = run_picbeam("upload", path, "--host", "bed", "--retries", "0", env={"CFIMGBED_TOKEN": "wrong-token-1"})
    assert done.returncode == 1 and "HTTP 401" in done.stderr and "check api_token (CFIMGBED_TOKEN)" in done.stderr
    assert "wrong-token-1" not in done.stderr
    done = run_picbeam("upload", path, "--host", "bed", env={"CFIMGBED_TOKEN": TOKEN})
    assert done.lines == ["https://cdn.example/file/img0000.png"], done.stderr
