"""What every storage host shares: path templates, fields from hosts.d files and --set, the local host."""

from __future__ import annotations

import asyncio
import importlib.util
from datetime import datetime

import picbeam
import pytest
from picbeam import ConfigError, UploadError
from picbeam.samples import png
from picbeam.templates import TemplateContext, render_path, render_url
from picbeam.testing import run_picbeam, write_host
from storage_servers import prepared


def test_path_template_placeholders_and_safety():
    context = TemplateContext(name="My Photo (1).JPG", sha256="ab" * 32, now=datetime(2026, 5, 7, 8, 9, 10))
    assert (
        render_path("img/{year}/{month}/{day}/{name}-{sha256:6}{ext}", context)
        == "img/2026/05/07/My-Photo-1-ababab.jpg"
    )
    assert render_path("{hour}{minute}{second}/{timestamp}", context).startswith("080910/")
    assert len(render_path("{random:10}", context)) == 10 and len(render_path("{uuid}", context)) == 32
    assert render_path("{name}{ext}", TemplateContext(name="shot", mime="image/png")) == "shot.png"
    assert render_path("{name}{ext}", TemplateContext(name="notes", mime="")) == "notes"
    for bad in ("../{name}", "/abs/{name}", "a/../../b"):
        with pytest.raises(UploadError):
            render_path(bad, context)
    assert render_url("https://cdn.example/{repo}/{path}", "a b/c.png", context, {"repo": "me/x"}) == (
        "https://cdn.example/me/x/a%20b/c.png"
    )


def test_local_host_path_template_url_template_overwrite_and_delete(hosts_dir, tmp_path, monkeypatch):
    root = tmp_path / "www"
    write_host(
        hosts_dir,
        "blog",
        extends="local",
        root=str(root),
        path="{year}/{name}{ext}",
        url_template="https://img.example/{path}",
    )
    image = tmp_path / "a.png"
    image.write_bytes(png(4, 4, seed=1))
    year = datetime.now().strftime("%Y")
    done = run_picbeam("upload", image, "--host", "blog")
    assert done.lines == [f"https://img.example/{year}/a.png"], done.stderr
    image.write_bytes(png(4, 4, seed=2))  # the same name and size, other content: replaces the stored file
    assert run_picbeam("upload", image, "--host", "blog").returncode == 0
    stored = root / year / "a.png"
    assert stored.read_bytes() == image.read_bytes()

    host = prepared("blog")
    asyncio.run(host.delete({"url": "", "answer": {"path": f"{year}/a.png"}, "endpoint": str(root)}, None))
    assert not stored.exists()
    with pytest.raises(UploadError, match="escapes the root"):
        asyncio.run(host.delete({"answer": {"path": "../outside"}}, None))


def test_fields_are_typed_checked_and_required(hosts_dir, tmp_path, monkeypatch):
    image = tmp_path / "a.png"
    image.write_bytes(png(4, 4, seed=1))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    cases = [
        ("sftp", ["port=abc"], "field 'port' must be a positive whole number"),
        ("s3", ["path_style=maybe"], "field 'path_style' must be true or false"),
        ("s3", ["part_size=100"], "field 'part_size' must be at least"),
        ("github", ["cdn=fastly"], "field 'cdn' must be one of raw, jsdelivr"),
        ("webdav", ["path={nope}"], "field 'path': unknown placeholder '{nope}'"),
        ("webdav", [], "field 'endpoint' is required"),
        ("sftp", ["bogus=1"], "unknown field 'bogus'"),
        ("sftp", ["root=~alice/www"], "field 'root' may start with ~ only for your own login folder"),
    ]
    for host, overrides, expected in cases:
        with pytest.raises(ConfigError) as caught:
            picbeam.upload([image], host=host, overrides=overrides)
        assert expected in str(caught.value) and "\n" not in str(caught.value), (host, caught.value)
    done = run_picbeam("upload", image, "--host", "sftp", "--set", "port=abc")
    assert done.returncode == 2 and done.stderr == (
        "picbeam: error: --set: host 'sftp': field 'port' must be a positive whole number, not 'abc'\n"
    )


def test_hosts_show_keeps_env_references_and_masks_literals(hosts_dir):
    write_host(
        hosts_dir, "r2", extends="s3", bucket="b", endpoint="https://acct.r2.example", access_key_id="AKIALITERAL123"
    )
    shown = run_picbeam("hosts", "show", "r2").stdout
    assert 'secret_access_key = "${AWS_SECRET_ACCESS_KEY}"' in shown and 'access_key_id = "***"' in shown
    assert "AKIALITERAL123" not in shown


def test_a_missing_extra_is_one_line(monkeypatch):
    from picbeam.plugins.s3 import S3Host

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "botocore" else real(name, *a))
    with pytest.raises(ConfigError, match=r"install picbeam\[s3\]"):
        S3Host().prepared()


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_local_files_get_the_mode_the_umask_gives_as_cp_does(hosts_dir, tmp_path, umask, mode):
    """A web server serving the folder must be able to read what was stored (a temporary file's 0600
    would make it answer 403)."""
    import os
    import stat

    write_host(hosts_dir, "www", extends="local", root=str(tmp_path / "www"), path="{name}{ext}")
    image = tmp_path / "a.png"
    image.write_bytes(png(4, 4, seed=3))
    image.chmod(0o600)  # the copy's mode comes from the umask, not from the original
    saved = os.umask(umask)
    try:
        done = run_picbeam("upload", image, "--host", "www")
    finally:
        os.umask(saved)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE((tmp_path / "www" / "a.png").stat().st_mode) == mode
    assert [p.name for p in (tmp_path / "www").iterdir()] == ["a.png"]  # no temporary file left


def test_deleting_a_local_file_that_is_already_gone_marks_it_deleted(hosts_dir, tmp_path):
    write_host(hosts_dir, "www", extends="local", root=str(tmp_path / "www"), path="{name}{ext}")
    image = tmp_path / "a.png"
    image.write_bytes(png(4, 4, seed=4))
    [url] = run_picbeam("upload", image, "--host", "www").lines
    (tmp_path / "www" / "a.png").unlink()
    done = run_picbeam("delete", url)
    assert done.returncode == 0, done.stderr
    assert done.lines == [f"deleted {url}"]
    assert "already gone, marked deleted" in done.stderr and len(done.stderr.splitlines()) == 1
    assert "(deleted)" in run_picbeam("history").stdout
    again = run_picbeam("delete", url)
    assert again.returncode == 0 and "already deleted" in again.stderr
