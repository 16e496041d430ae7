"""The web app at `/` of `picbeam serve`, in a real browser (Debian's chromium, driven by Playwright) and
by plain HTTP for the checks a browser would not let a test get wrong on purpose.

The screenshots in docs/screenshots/ (shown in the README) are taken here when PICBEAM_SCREENSHOTS=1 is set;
a normal run writes nothing into the checkout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from picbeam.samples import png
from picbeam.testing import write_host
from test_serve import ImageServer, InProcessServer, request

try:
    from playwright.sync_api import expect
except ImportError:  # the browser tests skip (see the browser fixture)
    expect = None  # type: ignore[assignment]

CHROMIUM = os.environ.get("PICBEAM_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
TAKE_SCREENSHOTS = os.environ.get("PICBEAM_SCREENSHOTS") == "1"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    # The page's CSP forbids eval: the tests wait with locators, which need none.
    playwright_api.expect.set_options(timeout=15_000)
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def fake(fake_host, hosts_dir):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url",
               delete_endpoint=fake_host.endpoint("/remove"), description="The test host")  # fmt: skip
    write_host(hosts_dir, "keyed", endpoint=fake_host.endpoint(), url_path="data.url",
               headers={"X-API-Key": "hunter2-secret-value"})  # fmt: skip
    return fake_host


@pytest.fixture
def server(fake) -> Iterator[InProcessServer]:
    with InProcessServer() as running:
        yield running


@pytest.fixture
def page(browser, server):
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"], viewport={"width": 1200,
                                  "height": 800})  # fmt: skip
    opened = context.new_page()
    opened.goto(f"http://127.0.0.1:{server.port}/")
    opened.wait_for_selector("body[data-ready=true]")
    yield opened
    context.close()


def api(port: int, path: str, token: str | None, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    sent = {**({"X-Picbeam-Token": token} if token else {}), **(headers or {})}
    if body is None:
        return request(port, path, None, sent, method="GET")
    return request(port, path, json.dumps(body), {"Content-Type": "application/json", **sent})


def page_token(port: int) -> str:
    match = re.search(r'name="picbeam-token" content="([^"]+)"', request(port, "/", None, method="GET").body.decode())
    assert match
    return match.group(1)


def drop_files(page: Any, files: list[tuple[str, bytes]]) -> None:
    """A drop of files on the drop zone, as a user dragging them from a file manager makes it."""
    transfer = page.evaluate_handle(
        """(files) => { const transfer = new DataTransfer();
             for (const [name, bytes] of files) transfer.items.add(new File([new Uint8Array(bytes)], name,
                                                                             {type: "image/png"}));
             return transfer; }""",
        [[name, list(data)] for name, data in files],
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})


def screenshot(page: Any, name: str, ready: str | None = None) -> None:
    """The README's picture of this state, only when asked (PICBEAM_SCREENSHOTS=1): parallel workers and normal
    runs must not rewrite files in the checkout. ``ready``: a JS condition to wait for first (thumbnails)."""
    if not TAKE_SCREENSHOTS:
        return
    for _ in range(100 if ready else 0):  # polled: the page's CSP forbids the eval wait_for_function needs
        if page.evaluate(f"() => {ready}"):
            break
        time.sleep(0.05)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


# -- in the browser -------------------------------------------------------------------------------
def test_upload_copy_gallery_search_delete(page, server, fake, tmp_path):
    picked = tmp_path / "picked-cat.png"
    picked.write_bytes(png(40, 30, seed=1))
    # the file picker
    page.set_input_files("#picker", str(picked))
    page.wait_for_selector(".item.ok .url")
    [sent] = fake.requests
    assert sent.file.filename == "picked-cat.png" and sent.file.data == picked.read_bytes()
    url = fake.file_url(sent)
    assert page.inner_text(".item.ok .url") == url
    # drag and drop
    drop_files(page, [("dropped-dog.png", png(30, 40, seed=2))])
    expect(page.locator(".item.ok")).to_have_count(2)
    assert fake.requests[1].file.filename == "dropped-dog.png" and fake.requests[1].file.data == png(30, 40, seed=2)
    screenshot(page, "upload.png")
    # copy, as chosen in "Copy as"
    page.click(".item.ok:has-text('picked-cat.png') .copy")
    assert page.evaluate("navigator.clipboard.readText()") == url
    page.select_option("#format", "markdown")
    drop_files(page, [("third.png", png(20, 20, seed=3))])
    expect(page.locator(".item.ok")).to_have_count(3)
    page.click(".item.ok:has-text('third.png') .copy")
    assert page.evaluate("navigator.clipboard.readText()") == f"![third]({fake.file_url(fake.requests[2])})"

    # the gallery, after a reload
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    page.click(".tab[data-view=gallery]")
    expect(page.locator(".card")).to_have_count(3)
    assert page.inner_text("#gallery-status") == "3 uploads"
    assert page.locator(".card .name").all_inner_texts() == ["third.png", "dropped-dog.png", "picked-cat.png"]
    thumbnails = "[...document.querySelectorAll('.card img')].every(i => i.complete && i.naturalWidth)"
    screenshot(page, "gallery.png", ready=thumbnails)
    card = page.locator(".card", has_text="picked-cat.png")
    card.locator("button[data-format=html]").click()
    assert page.evaluate("navigator.clipboard.readText()") == f'<img src="{url}" alt="picked-cat">'
    card.locator("button[data-format=bbcode]").click()
    assert page.evaluate("navigator.clipboard.readText()") == f"[img]{url}[/img]"
    page.fill("#template", "{name} -> {url}")
    card.locator("button[data-format=custom]").click()
    assert page.evaluate("navigator.clipboard.readText()") == f"picked-cat.png -> {url}"
    # search
    page.fill("#search", "cat")
    expect(page.locator(".card")).to_have_count(1)
    assert page.inner_text(".card .name") == "picked-cat.png"
    # delete, confirmed
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(".card .delete")
    page.wait_for_selector(".card.deleted")
    assert [(r.method, r.path) for r in fake.requests[3:]] == [("DELETE", "/remove")]
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    page.click(".tab[data-view=gallery]")
    expect(page.locator(".card.deleted")).to_have_count(1)
    assert page.inner_text(".card.deleted .name") == "picked-cat.png"


def test_a_folder_by_the_folder_picker(page, fake, tmp_path):
    folder = tmp_path / "album"
    (folder / "inner").mkdir(parents=True)
    (folder / "one.png").write_bytes(png(6, 6, seed=21))
    (folder / "inner" / "two.png").write_bytes(png(6, 6, seed=22))
    page.set_input_files("#folder-picker", str(folder))
    expect(page.locator(".item.ok")).to_have_count(2)
    assert sorted(r.file.data for r in fake.requests) == sorted([png(6, 6, seed=21), png(6, 6, seed=22)])


def test_paste_and_host_options(page, fake):
    # Ctrl+V of a screenshot: a paste event carrying an image file
    page.evaluate(
        """(bytes) => { const transfer = new DataTransfer();
        transfer.items.add(new File([new Uint8Array(bytes)], "image.png", {type: "image/png"}));
        document.dispatchEvent(new ClipboardEvent("paste", {clipboardData: transfer})); }""",
        list(png(5, 5, seed=9)),
    )
    page.wait_for_selector(".item.ok")
    assert fake.requests[0].file.data == png(5, 5, seed=9)
    # the host's processing options are shown, and what is chosen is sent
    assert page.is_checked("#strip")
    page.fill("#max-width", "10")
    page.select_option("#convert", "jpeg")
    drop_files(page, [("wide.png", png(40, 20, seed=10))])
    expect(page.locator(".item.ok")).to_have_count(2)
    assert fake.requests[1].file.data[:3] == b"\xff\xd8\xff"  # a JPEG
    page.click(".tab[data-view=hosts]")
    page.wait_for_selector(".host[data-host=fake]")
    keyed = page.locator(".host[data-host=keyed]")
    assert "X-API-Key" in keyed.inner_text() and "hunter2-secret-value" not in page.content()
    assert "The test host" in page.inner_text(".host[data-host=fake]")
    page.click(".host[data-host=fake] .check")
    page.wait_for_selector(".host[data-host=fake] .check-result.ok")
    assert page.inner_text(".host[data-host=fake] .check-result").startswith("fake: configuration OK")
    screenshot(page, "hosts.png")


def test_a_cross_origin_page_cannot_drive_the_api(browser, server, fake, images):
    [path] = images(1)
    port = server.port
    token = page_token(port)
    uploaded = api(port, "/api/state", token)
    assert uploaded.status == 200
    other = ImageServer(png(2, 2))
    context = browser.new_context()
    evil = context.new_page()
    evil.goto(other.url + "/notes.txt")  # a page of another origin (another port)
    outcomes = evil.evaluate(
        """async ([api, path]) => {
            const tries = {
              "simple POST to /api/delete": () => fetch(api + "/api/delete", {method: "POST", mode: "no-cors",
                  body: JSON.stringify({id: 1}), headers: {"Content-Type": "text/plain"}}),
              "GET /api/uploads with a token": () => fetch(api + "/api/uploads", {headers: {"X-Picbeam-Token": "x"}}),
              "GET /api/uploads": () => fetch(api + "/api/uploads"),
              "POST /upload of a path": () => fetch(api + "/upload", {method: "POST", mode: "no-cors",
                                                   body: JSON.stringify({list: [path]})}),
            };
            const out = {};
            for (const [name, attempt] of Object.entries(tries)) {
              try { const answer = await attempt(); out[name] = answer.type + " " + answer.status; }
              catch (error) { out[name] = "blocked"; }
            }
            return out;
        }""",
        [f"http://127.0.0.1:{port}", str(path)],
    )
    context.close()
    other.close()
    # nothing readable came back, and the server refused every one of them
    assert outcomes == {"simple POST to /api/delete": "opaque 0", "GET /api/uploads with a token": "blocked",
                        "GET /api/uploads": "blocked", "POST /upload of a path": "opaque 0"}  # fmt: skip
    refused = [line for line in server.lines if " 403 " in line]
    assert any(line.startswith("POST /api/delete 403") for line in refused), server.lines
    assert any(line.startswith("OPTIONS /api/uploads 403") for line in refused), server.lines
    assert any(line.startswith("GET /api/uploads 403") for line in refused), server.lines
    assert any(line.startswith("POST /upload 403") for line in refused), server.lines
    assert fake.requests == []


def test_gallery_with_10000_uploads(browser, server, fake, capsys):
    from picbeam.config import Config
    from picbeam.items import UploadResult
    from picbeam.ledger import Ledger, ledger_path

    with Ledger(ledger_path(None, Config.load([]))) as ledger:
        results = [UploadResult(path=f"/photos/holiday-{n:05d}.png", host="fake", url=f"{fake.url}/files/{n}/x.png",
                                sha256=f"{n:064x}", bytes=1000 + n) for n in range(10_000)]  # fmt: skip
        ledger.record_many(results, "fake", lambda text: text)
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    opened = context.new_page()
    started = time.perf_counter()
    opened.goto(f"http://127.0.0.1:{server.port}/#gallery")
    expect(opened.locator(".card")).to_have_count(60)
    first = time.perf_counter() - started
    assert opened.inner_text("#gallery-status") == "10000 uploads"
    assert opened.inner_text("#page-info") == "page 1 of 167"
    timings = {"first page (navigation to 60 cards)": first, "API + render": int(opened.get_attribute("body",
               "data-gallery-ms") or 0) / 1000}  # fmt: skip
    for action, check in (("#next", "page 2 of 167"), ("#search", None)):
        started = time.perf_counter()
        if check:
            opened.click(action)
            expect(opened.locator("#page-info")).to_have_text(check)
        else:
            opened.fill(action, "holiday-0999")
            expect(opened.locator(".card")).to_have_count(10)
        timings[f"{action} ({check or 'search'})"] = time.perf_counter() - started
    context.close()
    with capsys.disabled():
        print("\ngallery with 10,000 ledger rows: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in timings.items()))


# -- by plain HTTP ---------------------------------------------------------------------------------
def test_page_headers_and_refusals(server, fake, images):
    port = server.port
    page = request(port, "/", None, method="GET")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert "Access-Control-Allow-Origin" not in page.headers and page.headers["X-Frame-Options"] == "DENY"
    assert b"<script>" not in page.body and b"http" not in page.body.split(b"<body>")[0].replace(b"http-equiv", b"")
    token = page_token(port)
    assert request(port, "/static/app.js", None, method="GET").headers["Content-Type"].startswith("text/javascript")
    for path in ("/static/..%2fserver.py", "/static/index.html", "/static/.hidden.js", "/static/nope.js"):
        assert request(port, path, None, method="GET").status == 404, path
    assert request(port, "/", None, {"Host": "evil.example"}, method="GET").status == 403  # DNS rebinding
    assert request(port, "/", None, {"Sec-Fetch-Site": "cross-site"}, method="GET").status == 403
    assert api(port, "/api/state", None).status == 403
    assert api(port, "/api/state", "wrong").status == 403
    assert api(port, "/api/state", token, headers={"Origin": "http://evil.example"}).status == 403
    assert api(port, "/api/state", token, headers={"Sec-Fetch-Site": "same-site"}).status == 403
    assert api(port, "/api/state", token, headers={"Origin": f"http://127.0.0.1:{port}",
                                                   "Sec-Fetch-Site": "same-origin"}).status == 200  # fmt: skip
    preflight = request(port, "/api/upload", None, {"Origin": "http://evil.example",
                        "Access-Control-Request-Method": "POST"}, method="OPTIONS")  # fmt: skip
    assert preflight.status == 403 and "Access-Control-Allow-Origin" not in preflight.headers
    # the page's upload takes bytes, never a path
    [path] = images(1)
    by_path = api(port, "/api/upload", token, {"list": [str(path)]})
    assert by_path.status == 400 and "multipart" in by_path.json["message"]
    assert api(port, "/api/delete", token, {"id": "1; DROP TABLE"}).status == 400
    assert api(port, "/api/delete", token, {"id": 12345}).status == 404
    assert request(port, "/api/delete", "[" * 100_000, {"X-Picbeam-Token": token}).status == 400
    assert fake.requests == []


def test_the_secret_guards_the_page(fake):
    with InProcessServer(secret="s3cret-for-the-page-0123") as running:
        assert request(running.port, "/", None, method="GET").status == 401
        assert request(running.port, "/?secret=s3cret-for-the-page-0123", None, method="GET").status == 200


def test_the_wheel_ships_and_serves_the_web_app(tmp_path, fake):
    """The static files are package data: a wheel built from this checkout serves them (the editable
    install serves them in every other test)."""
    import subprocess
    import sys
    import zipfile

    root = Path(__file__).resolve().parent.parent
    # Built from a copy: an in-tree build writes build/ and *.egg-info into the checkout.
    source = tmp_path / "source"
    for name in ("core", "plugins", "hosts.d"):
        shutil.copytree(root / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(root / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
               str(tmp_path / "dist"), str(source)]  # fmt: skip
    built = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = (tmp_path / "dist").glob("picbeam-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert {"picbeam/web/index.html", "picbeam/web/app.js", "picbeam/web/style.css"} <= set(archive.namelist())
        archive.extractall(tmp_path / "installed")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "installed")}
    where = subprocess.run([sys.executable, "-c", "import picbeam; print(picbeam.__file__)"], env=env,
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert where.stdout.startswith(str(tmp_path / "installed"))
    from test_serve import Subprocess

    server = Subprocess("--host", "fake", env=env)
    try:
        assert server.port, server.stderr
        page = request(server.port, "/", None, method="GET")
        assert page.status == 200 and b'src="/static/app.js"' in page.body
        script = request(server.port, "/static/app.js", None, method="GET")
        assert script.status == 200 and script.body == (root / "core" / "web" / "app.js").read_bytes()
    finally:
        server.stop()
