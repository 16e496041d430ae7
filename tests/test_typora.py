"""Typora's "Custom Command" uploader runs `COMMAND "path1" "path2"...` and takes the URLs from the last
lines of standard output: one per image, in order. Failures must look like failures, not like URLs."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

from picbeam.samples import png
from picbeam.testing import Reply, write_host


def typora(*paths: object, stderr_tty: bool = False) -> tuple[int, str]:
    """Run the command as Typora does: the paths as arguments, stdout captured (not a terminal)."""
    command = [sys.executable, "-m", "picbeam", "upload", "--host", "fake", *map(str, paths)]
    if not stderr_tty:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        return done.returncode, done.stdout
    controller, terminal = pty.openpty()  # stderr is a terminal: the progress bar is drawn, on stderr only
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=terminal, text=True, timeout=60)
    finally:
        os.close(terminal)
        os.close(controller)
    return done.returncode, done.stdout


def test_one_url_per_image_in_order_as_the_last_lines(fake_host, hosts_dir, tmp_path):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    paths = []
    for number, name in enumerate(["image-20261130142223949.png", "my image ü.png", "typora-icon2.png"]):
        path = tmp_path / name
        path.write_bytes(png(3, 3, seed=number))
        paths.append(path)
    code, stdout = typora(*paths, stderr_tty=True)
    assert code == 0
    by_content = {request.file.data: fake_host.file_url(request) for request in fake_host.requests}
    assert stdout.splitlines() == [by_content[path.read_bytes()] for path in paths]  # nothing but the URLs


def test_a_failure_is_a_failure_not_a_wrong_url(fake_host, hosts_dir, images, tmp_path):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    first, second = images(2)
    code, stdout = typora(first, tmp_path / "deleted.png", second)
    lines = stdout.splitlines()
    assert code == 1
    assert len(lines) == 3 and lines[1] == "" and lines[0].startswith(fake_host.url) and lines[2].startswith("http")
    fake_host.reply(Reply(status=400, json={"success": False, "message": "bad image"}))
    code, stdout = typora(*images(1, "more"))
    assert code == 1 and stdout.strip() == ""  # no URL at all
