"""`picbeam upload --clipboard` and `--copy`, on a real X11 clipboard (Xvfb + xclip)."""

from __future__ import annotations

from conftest import get_clipboard, set_clipboard
from picbeam.samples import png
from picbeam.testing import run_picbeam, write_host


def test_upload_the_clipboard_image_and_copy_the_result(x_display, fake_host, hosts_dir):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    image = png(7, 5, seed=42)
    set_clipboard(image, "image/png")
    done = run_picbeam("upload", "--clipboard", "--copy", "--host", "fake", env=x_display)
    assert done.returncode == 0, done.stderr
    [request] = fake_host.requests
    assert request.file.data == image and request.file.content_type == "image/png"
    assert request.file.filename.startswith("clipboard-") and request.file.filename.endswith(".png")
    assert done.lines == [fake_host.file_url(request)]
    assert get_clipboard() == done.lines[0]


def test_clipboard_with_files_and_markdown_copy(x_display, fake_host, hosts_dir, images):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    set_clipboard(png(3, 3, seed=1), "image/png")
    [path] = images(1)
    done = run_picbeam("upload", "--clipboard", path, "--host", "fake", "-f", "markdown", "--copy", env=x_display)
    assert done.returncode == 0, done.stderr
    assert len(done.lines) == 2 and done.lines[0].startswith("![clipboard-") and done.lines[1].startswith("![img0000]")
    assert get_clipboard() == "\n".join(done.lines)


def test_clipboard_without_an_image_is_a_clear_error(x_display, fake_host, hosts_dir):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    set_clipboard(b"just some text", "UTF8_STRING")
    done = run_picbeam("upload", "--clipboard", "--host", "fake", env=x_display)
    assert done.returncode == 1
    assert done.stderr.strip() == "picbeam: error: the clipboard holds no image"
    assert done.stdout == "" and fake_host.requests == []


def test_no_clipboard_tool(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    done = run_picbeam("upload", "--clipboard", env={"PATH": str(empty), "DISPLAY": ":99", "WAYLAND_DISPLAY": ""})
    assert done.returncode == 1
    assert done.stderr.strip() == "picbeam: error: no clipboard tool: install xclip"
    headless = run_picbeam("upload", "--clipboard", env={"DISPLAY": "", "WAYLAND_DISPLAY": ""})
    assert "no graphical session" in headless.stderr and "Traceback" not in headless.stderr


def test_copy_without_a_clipboard_warns_but_keeps_the_result(fake_host, hosts_dir, images):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    [path] = images(1)
    done = run_picbeam("upload", path, "--host", "fake", "--copy", env={"DISPLAY": "", "WAYLAND_DISPLAY": ""})
    assert done.returncode == 0 and done.lines == [fake_host.file_url(fake_host.requests[0])]
    assert "picbeam: --copy: no clipboard" in done.stderr


def test_upload_needs_paths_or_clipboard():
    done = run_picbeam("upload", "--format", "url")
    assert done.returncode == 2 and "name the files or folders to upload, or use --clipboard" in done.stderr
