"""Bad input gives one clear line and the right exit status, never a traceback."""

from __future__ import annotations

import os

import pytest
from picbeam.testing import Reply, run_picbeam, write_host


@pytest.fixture
def fake(fake_host, hosts_dir):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    return ["--host", "fake"]


def no_traceback(done):
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_missing_path_fails_alone(fake, images, tmp_path):
    [good] = images(1)
    done = no_traceback(run_picbeam("upload", tmp_path / "nope.png", good, *fake))
    assert done.returncode == 1
    assert done.lines[0] == "" and done.lines[1].startswith("http://127.0.0.1")
    assert f"{tmp_path / 'nope.png'}: fake: no such file or folder" in done.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(fake, images):
    [path] = images(1)
    path.chmod(0)
    done = no_traceback(run_picbeam("upload", path, *fake))
    assert done.returncode == 1 and "cannot read: Permission denied" in done.stderr


def test_special_file_is_refused(fake, tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    done = no_traceback(run_picbeam("upload", fifo, *fake))
    assert done.returncode == 1 and "not a regular file" in done.stderr


def test_dangling_symlink(fake, tmp_path):
    link = tmp_path / "gone.png"
    link.symlink_to(tmp_path / "never-there.png")
    done = no_traceback(run_picbeam("upload", link, *fake))
    assert done.returncode == 1 and "cannot read: No such file or directory" in done.stderr


def test_non_image_in_folder_is_skipped_but_named_file_is_sent(fake, fake_host, images, tmp_path):
    images(1)
    notes = tmp_path / "images" / "notes.txt"
    notes.write_text("hello")
    done = no_traceback(run_picbeam("upload", tmp_path / "images", *fake))
    assert done.returncode == 0 and len(done.lines) == 1
    assert "skipped 1 non-image file(s)" in done.stderr
    done = run_picbeam("upload", notes, *fake)
    assert done.returncode == 0
    assert fake_host.requests[-1].file.content_type == "text/plain"


def test_empty_file(fake, tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    done = no_traceback(run_picbeam("upload", empty, *fake))
    assert done.returncode == 1 and "the file is empty" in done.stderr


def test_bad_jmespath_in_a_host_file_names_file_and_field(hosts_dir, images):
    bad = write_host(hosts_dir, "broken", endpoint="https://x/", url_path="data.url[")
    [path] = images(1)
    done = no_traceback(run_picbeam("upload", path, "--host", "broken"))
    assert done.returncode == 2
    assert str(bad) in done.stderr and "field 'url_path'" in done.stderr
    # the other hosts keep working, and list names the broken one
    listed = run_picbeam("hosts", "list")
    assert "smms" in listed.stdout and "host 'broken' is unusable" in listed.stderr


def test_unknown_field_names_file_and_field(hosts_dir, images):
    write_host(hosts_dir, "typo", endpoint="https://x/", url_path="data.url", file_feild="smfile")
    done = no_traceback(run_picbeam("upload", images(1)[0], "--host", "typo"))
    assert done.returncode == 2 and "unknown field 'file_feild'" in done.stderr


def test_invalid_toml(hosts_dir, images):
    (hosts_dir / "garbled.toml").write_text("endpoint = 'x\n")
    done = no_traceback(run_picbeam("upload", images(1)[0], "--host", "garbled"))
    assert done.returncode == 2 and "garbled.toml: not valid TOML" in done.stderr


def test_unknown_host_suggests_a_name(images):
    done = no_traceback(run_picbeam("upload", images(1)[0], "--host", "smmss"))
    assert done.returncode == 2 and "unknown host 'smmss'; did you mean 'smms'?" in done.stderr


def test_html_instead_of_json(fake, fake_host, images):
    fake_host.reply(
        Reply(
            text="<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head></html>",
            headers={"Content-Type": "text/html"},
        )
    )
    done = no_traceback(run_picbeam("upload", images(1)[0], *fake))
    assert done.returncode == 1
    assert "the host answered HTML instead of JSON (HTTP 200): page titled '502 Bad Gateway'" in done.stderr


def test_json_without_the_url(fake, fake_host, images):
    fake_host.reply(json={"data": {}})
    done = no_traceback(run_picbeam("upload", images(1)[0], *fake))
    assert done.returncode == 1 and "the answer has no URL at 'data.url'" in done.stderr


def test_connection_refused(hosts_dir, images):
    write_host(hosts_dir, "dead", endpoint="http://127.0.0.1:9/upload", url_path="data.url")
    done = no_traceback(run_picbeam("upload", images(1)[0], "--host", "dead", "--retries", "0"))
    assert done.returncode == 1 and "cannot connect to 127.0.0.1:9" in done.stderr


def test_bad_format_and_bad_set(fake, images):
    [path] = images(1)
    assert run_picbeam("upload", path, *fake, "--format", "yaml").returncode == 2
    done = no_traceback(run_picbeam("upload", path, *fake, "--set", "nonsense"))
    assert done.returncode == 2 and "expected FIELD=VALUE" in done.stderr
    done = no_traceback(run_picbeam("upload", path, *fake, "--set", "colour=red"))
    assert done.returncode == 2 and "unknown field 'colour'" in done.stderr
