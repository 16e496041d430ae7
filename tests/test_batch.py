"""Batches: whole trees, concurrency, order, and the Python API."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import picbeam
from picbeam.testing import run_picbeam, write_host


def test_200_images_arrive_complete_unaltered_and_in_order(fake_host, hosts_dir, images, tmp_path):
    paths = images(120, folder="tree/a") + images(80, folder="tree/b/c")
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    done = run_picbeam("upload", "-r", tmp_path / "tree", "--host", "fake", "-j", "8", "--format", "json")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.lines]
    assert [r["path"] for r in records] == [str(p) for p in sorted(paths)]
    assert len(fake_host.requests) == 200
    for record, path in zip(records, sorted(paths), strict=True):
        with urllib.request.urlopen(record["url"]) as answer:  # the bytes the host stored for this URL
            assert answer.read() == path.read_bytes()
        assert record["bytes"] == path.stat().st_size


def test_jobs_bound_concurrency(fake_host, hosts_dir, images, tmp_path):
    from picbeam.testing import Reply

    in_flight = {"now": 0, "max": 0}

    def slow(request, host):
        return Reply(json={"data": {"url": host.file_url(request)}}, delay=0.05)

    fake_host.respond_with(slow)
    original = fake_host._record

    async def counting(request, number):
        in_flight["now"] += 1
        in_flight["max"] = max(in_flight["max"], in_flight["now"])
        try:
            await asyncio.sleep(0.02)
            return await original(request, number)
        finally:
            in_flight["now"] -= 1

    fake_host._record = counting
    images(24)
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url", concurrency=3)
    done = run_picbeam("upload", tmp_path / "images", "--host", "fake", "-j", "8")
    assert done.returncode == 0, done.stderr
    assert 1 < in_flight["max"] <= 3


def test_python_api_sync_and_async(fake_host, hosts_dir, images, tmp_path):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    paths = images(5)
    results = picbeam.upload(paths, host="fake", jobs=2)
    assert [r.path for r in results] == [str(p) for p in paths]
    assert all(r.ok for r in results)
    results = asyncio.run(picbeam.upload_async([tmp_path / "images"], host="fake"))
    assert len(results) == 5 and all(r.url for r in results)


def test_python_api_reports_failures_as_results(fake_host, hosts_dir, images, tmp_path):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    [good] = images(1)
    results = picbeam.upload([good, tmp_path / "missing.png"], host="fake")
    assert results[0].ok and results[1].error == "no such file or folder"


def test_default_host_is_local_and_needs_no_network(home):
    from pathlib import Path

    sample = Path(__file__).parent / "data" / "images"
    done = run_picbeam("upload", sample)
    assert done.returncode == 0, done.stderr
    assert len(done.lines) == 3 and all(line.startswith("file://") for line in done.lines)
    assert "skipped 1 non-image file(s)" in done.stderr
    stored = list((home / "data" / "picbeam" / "images").iterdir())
    assert len(stored) == 3


def test_local_host_with_url_prefix_via_extends(hosts_dir, images, tmp_path):
    write_host(hosts_dir, "blog", extends="local", root=str(tmp_path / "www"), url_prefix="https://img.example/")
    [path] = images(1)
    done = run_picbeam("upload", path, "--host", "blog", "--format", "markdown")
    assert done.returncode == 0, done.stderr
    [line] = done.lines
    assert line.startswith("![img0000](https://img.example/") and line.endswith(".png)")
    name = line.split("/")[-1].rstrip(")")
    assert (tmp_path / "www" / name).read_bytes() == path.read_bytes()


def test_output_formats(fake_host, hosts_dir, images):
    fake_host.reply(json={"data": {"url": "https://x/a b(1).png"}})
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    [path] = images(1)
    expect = {
        "url": "https://x/a%20b(1).png",
        "markdown": "![img0000](https://x/a%20b%281%29.png)",
        "html": '<img src="https://x/a%20b(1).png" alt="img0000">',
        "bbcode": "[img]https://x/a%20b(1).png[/img]",
    }
    for fmt, line in expect.items():
        assert run_picbeam("upload", path, "--host", "fake", "--format", fmt).lines == [line]


def test_dry_run_sends_nothing(fake_host, hosts_dir, images):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    [path] = images(1)
    done = run_picbeam("upload", path, "--host", "fake", "--dry-run")
    assert done.returncode == 0
    assert done.lines == [f"would upload {path} ({path.stat().st_size} bytes, image/png) to fake"]
    assert f"  POST {fake_host.endpoint()}" in done.stderr.splitlines()  # the request (issue 13 item 10)
    assert fake_host.requests == []


def test_include_and_exclude(fake_host, hosts_dir, images, tmp_path):
    images(3)
    (tmp_path / "images" / "skip-me.png").write_bytes((tmp_path / "images" / "img0000.png").read_bytes())
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    done = run_picbeam("upload", tmp_path / "images", "--host", "fake", "--exclude", "skip-*", "--include", "*.png")
    assert done.returncode == 0
    assert len(done.lines) == 3
    assert "skipped 1 file(s) by --include/--exclude" in done.stderr
