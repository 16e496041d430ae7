"""picbeam migrate: a Hexo blog and an Obsidian vault moved to a new host, every other byte unchanged."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from blogs import SHARED_POSTS, OldHost, Post, hexo_blog, obsidian_vault
from picbeam.testing import FakeHost, run_picbeam, write_host


@pytest.fixture
def old_host() -> Iterator[OldHost]:
    with OldHost() as host:
        yield host


@pytest.fixture
def new_host(hosts_dir: Path) -> Iterator[FakeHost]:
    with FakeHost() as host:
        write_host(hosts_dir, "new", endpoint=host.endpoint(), url_path="data.url")
        yield host


def new_url(host: FakeHost) -> bytes:
    return re.escape(host.url.encode()) + rb"/files/\d+/[^\s\"'()<>,]+"


def snapshot(root: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def assert_migrated(posts: list[Post], host: FakeHost, moved: bool = True) -> None:
    for post in posts:
        data = post.path.read_bytes()
        assert post.expected(new_url(host), moved).fullmatch(data), f"{post.path.name}:\n{data.decode(post.encoding)}"


def test_hexo_blog_moves_every_image_and_nothing_else(tmp_path: Path, old_host: OldHost, new_host: FakeHost) -> None:
    blog = tmp_path / "blog"
    posts, images = hexo_blog(blog, old_host)
    before = snapshot(blog)

    dry = run_picbeam("migrate", blog, "--host", "new", "--remote", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"+++ {posts[0].path}" in dry.stdout and "-Intro with ![logo](/images/logo.png" in dry.stdout
    assert snapshot(blog) == before, "a dry run changed a file"
    assert not new_host.requests, "a dry run uploaded"

    old_host.served, old_host.serve_only = 0, 1  # the old host dies after one download
    first = run_picbeam("migrate", blog, "--host", "new", "--remote")
    assert first.returncode == 1, first.stderr
    left = [line for line in first.stderr.splitlines() if "/files/" in line and "remote" in line]
    assert len(left) == 1, first.stderr
    where = re.match(r"picbeam: (.+):(\d+): (http://\S+): (.+)$", left[0])
    assert where, left[0]
    # file:line names the line that holds the URL
    lines = Path(where[1]).read_bytes().decode("utf-8").splitlines()
    assert where[3] in lines[int(where[2]) - 1]
    assert_migrated(posts, new_host, moved=False)

    old_host.serve_only = None  # back again: the re-run moves what was left
    second = run_picbeam("migrate", blog, "--host", "new", "--remote")
    assert second.returncode == 0, second.stderr
    assert_migrated(posts, new_host)
    # an image used by 52 files went up once; each distinct image once
    accepted = new_host.accepted()
    assert accepted[hashlib.sha256(images["shared"]).hexdigest()] == 1
    assert {hashlib.sha256(data).hexdigest() for data in images.values()} == set(accepted)
    assert all(count == 1 for count in accepted.values())

    after = snapshot(blog)
    requests = len(new_host.requests)
    again = run_picbeam("migrate", blog, "--host", "new", "--remote")
    assert again.returncode == 0, again.stderr
    assert snapshot(blog) == after and len(new_host.requests) == requests
    assert "0 changed" in again.stderr
    assert f"{len(posts)} files scanned" in second.stderr
    assert not list(blog.rglob("*.picbeam-tmp")) and not list(blog.rglob("*.orig"))
    assert len(posts) == 5 + SHARED_POSTS


def test_obsidian_vault(tmp_path: Path, old_host: OldHost, new_host: FakeHost) -> None:
    vault = tmp_path / "vault"
    posts, _ = obsidian_vault(vault, old_host)
    settings = (vault / ".obsidian" / "workspace.md").read_bytes()
    result = run_picbeam("migrate", vault, "--host", "new", "--from-domain", "127.0.0.1", "--backup")
    assert result.returncode == 0, result.stderr
    assert_migrated(posts, new_host)
    assert (vault / ".obsidian" / "workspace.md").read_bytes() == settings
    daily = posts[0]
    assert (daily.path.parent / (daily.path.name + ".orig")).read_bytes() == daily.original()
    assert not (vault / "Other note.md.orig").exists(), "an unchanged file got a backup"


def test_local_only_by_default_and_failures_are_reported(tmp_path: Path, old_host: OldHost, new_host: FakeHost) -> None:
    post = tmp_path / "post.md"
    remote = old_host.add(1, "r.png", b"\x89PNG\r\n\x1a\n")
    post.write_text(f"![gone](missing.png)\n\n![r]({remote})\n\n![text](notes.txt)\n")
    (tmp_path / "notes.txt").write_text("not an image")
    before = post.read_bytes()
    result = run_picbeam("migrate", post, "--host", "new")
    assert result.returncode == 1
    assert f"{post}:1: missing.png: no such file" in result.stderr
    assert f"{post}:5: notes.txt: not an image" in result.stderr
    assert remote not in result.stderr  # remote images move only with --remote or --from-domain
    assert post.read_bytes() == before and not new_host.requests
    assert "1 files scanned, 0 changed" in result.stderr


def test_a_failing_host_leaves_the_links(tmp_path: Path, new_host: FakeHost) -> None:
    new_host.reply(status=500, json={"success": False, "message": "disk full"})
    from picbeam.samples import png

    (tmp_path / "a.png").write_bytes(png(3, 3, seed=1))
    post = tmp_path / "post.md"
    post.write_text("![a](a.png)\n")
    result = run_picbeam("migrate", tmp_path, "--host", "new", "--retries", "0")
    assert result.returncode == 1
    assert re.search(rf"{re.escape(str(post))}:1: a.png: new: .*500", result.stderr), result.stderr
    assert post.read_text() == "![a](a.png)\n"


def test_symlinked_post_keeps_its_link(tmp_path: Path, new_host: FakeHost) -> None:
    from picbeam.samples import png

    real = tmp_path / "real"
    real.mkdir()
    (real / "a.png").write_bytes(png(3, 3, seed=2))
    (real / "post.md").write_text("![a](a.png)\n")
    (tmp_path / "link.md").symlink_to(real / "post.md")
    result = run_picbeam("migrate", tmp_path / "link.md", "--host", "new")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "link.md").is_symlink()
    assert (real / "post.md").read_text().startswith(f"![a]({new_host.url}/files/")


def test_hostile_remote_images_fail_one_line_each(tmp_path: Path, new_host: FakeHost) -> None:
    from picbeam.samples import png
    from picbeam.testing import Reply

    def answer(request, host):  # type: ignore[no-untyped-def]
        if request.path == "/big.png":
            return Reply(body=png(64, 64, seed=1) + b"\0" * 5000)
        if request.path == "/page.png":
            return Reply(text="<html>not found, but 200</html>", headers={"Content-Type": "text/html"})
        if request.path == "/loop.png":
            return Reply(status=302, headers={"Location": "/loop.png"})
        if request.path == "/stall.png":
            return Reply(fault="stall", delay=3)
        return Reply(status=404)

    with FakeHost(answer) as old:
        post = tmp_path / "post.md"
        post.write_text(
            f"![a]({old.url}/big.png)\n![b]({old.url}/page.png)\n![c]({old.url}/loop.png)\n"
            f"![d]({old.url}/stall.png)\n![e]({old.url}/gone.png)\n"
        )
        before = post.read_bytes()
        result = run_picbeam("migrate", post, "--host", "new", "--remote", "--max-download", "4000", "--timeout", "1")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert f"picbeam: {post}:1: {old.url}/big.png: over the download limit of 4000 bytes" in lines
    assert f"picbeam: {post}:2: {old.url}/page.png: not an image (by its content)" in lines
    assert f"picbeam: {post}:3: {old.url}/loop.png: more than 10 redirects" in lines
    assert f"picbeam: {post}:4: {old.url}/stall.png: download took more than 1 s" in lines
    assert f"picbeam: {post}:5: {old.url}/gone.png: HTTP 404" in lines
    assert post.read_bytes() == before and not new_host.requests
    assert "Traceback" not in result.stderr


def test_odd_files_are_one_line_each(tmp_path: Path, new_host: FakeHost) -> None:
    import os

    os.mkfifo(tmp_path / "pipe.md")
    (tmp_path / "binary.md").write_bytes(b"\x00\xff\xfe garbage ![x](nothing.png) \x80\x81")
    (tmp_path / "red\x1b[31m.md").write_text("![x](missing.png)\n")
    result = run_picbeam("migrate", tmp_path, "--host", "new", timeout=60)
    assert result.returncode == 1
    assert f"{tmp_path / 'pipe.md'}: cannot read: not a regular file" in result.stderr
    assert f"{tmp_path / 'binary.md'}:1: nothing.png: no such file" in result.stderr
    assert "\x1b" not in result.stderr and f"{tmp_path}/red\\x1b[31m.md:1: missing.png: no such" in result.stderr
    assert "Traceback" not in result.stderr


def test_markdown_edge_cases_are_scanned_as_commonmark_does(tmp_path: Path) -> None:
    from picbeam.markdown_links import read_document

    post = tmp_path / "edge.md"
    post.write_bytes(
        b"![a [nested] alt](a.png)\n"
        b"![b](<b b.png> 'title')\n"
        b"![c](c\\(1\\).png)\n"
        b"`code ![no](no1.png)` and ``double `tick` ![no](no2.png)``\n"
        b"\\![escaped](no3.png)\n"
        b"[![inside a link](d.png)](http://example.com)\n"
        b"    ![a paragraph's continuation, not code](p.png)\n"
        b"\n"
        b"    ![indented code](no5.png)\n"
        b"\n"
        b"- list\n\n      ![in list code](no6.png)\n"
        b"\n"
        b'<div>\n<img src="e.png">\n</div>\n'
        b"\n"
        b"~~~~\n```\n![x](no7.png)\n```\n~~~~\n"
    )
    document = read_document(post)
    found = [(link.line, document.text[link.start : link.end]) for link in document.links]
    assert found == [(1, "a.png"), (2, "b b.png"), (3, "c\\(1\\).png"), (6, "d.png"), (7, "p.png"), (16, "e.png")]
    assert document.links[2].target == "c(1).png"


def test_processing_applies_to_migrated_images(tmp_path: Path, new_host: FakeHost) -> None:
    from pictures import png_with_text

    data = png_with_text()
    (tmp_path / "drawing.png").write_bytes(data)
    (tmp_path / "post.md").write_text("![d](drawing.png)\n")
    result = run_picbeam("migrate", tmp_path, "--host", "new")
    assert result.returncode == 0, result.stderr
    sent = new_host.requests[0].file.data
    assert sent != data and b"Author" in data and b"Author" not in sent  # metadata stripped, as upload does


def test_hugo_and_jekyll_conventions(tmp_path: Path, new_host: FakeHost) -> None:
    from picbeam.samples import png

    hugo = tmp_path / "hugo"
    (hugo / "static" / "images").mkdir(parents=True)
    (hugo / "static" / "images" / "a.png").write_bytes(png(3, 3, seed=1))
    (hugo / "content" / "posts" / "bundle").mkdir(parents=True)
    (hugo / "content" / "posts" / "bundle" / "b.png").write_bytes(png(3, 3, seed=2))
    (hugo / "content" / "posts" / "bundle" / "index.md").write_text(
        '+++\ntitle = "x"\nfeatured_image = "/images/a.png"\n+++\n![a](/images/a.png) ![b](b.png)\n'
    )
    jekyll = tmp_path / "jekyll"
    (jekyll / "assets").mkdir(parents=True)
    (jekyll / "assets" / "c.png").write_bytes(png(3, 3, seed=3))
    (jekyll / "_posts").mkdir()
    (jekyll / "_posts" / "2024-01-01-x.md").write_text("![c]({{ site.baseurl }}/assets/c.png)\n")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "img").mkdir(parents=True)
    (elsewhere / "img" / "d.png").write_bytes(png(3, 3, seed=4))
    (jekyll / "page.html").write_text('<img src="/img/d.png">\n')

    result = run_picbeam("migrate", hugo, jekyll / "_posts", "--host", "new")
    assert result.returncode == 0, result.stderr
    url = rf"{re.escape(new_host.url)}/files/\d+/"
    index = (hugo / "content" / "posts" / "bundle" / "index.md").read_text()
    assert re.fullmatch(
        rf'\+\+\+\ntitle = "x"\nfeatured_image = "{url}a.png"\n\+\+\+\n!\[a\]\({url}a.png\) !\[b\]\({url}b.png\)\n',
        index,
    ), index
    assert re.fullmatch(rf"!\[c\]\({url}c.png\)\n", (jekyll / "_posts" / "2024-01-01-x.md").read_text())
    # an absolute path found under --root only
    assert run_picbeam("migrate", jekyll / "page.html", "--host", "new").returncode == 1
    assert run_picbeam("migrate", jekyll / "page.html", "--host", "new", "--root", elsewhere).returncode == 0
    assert re.fullmatch(rf'<img src="{url}d.png">\n', (jekyll / "page.html").read_text())


def test_a_post_edited_during_the_run_is_left_to_the_editor(tmp_path: Path, new_host: FakeHost) -> None:
    from picbeam.samples import png

    (tmp_path / "a.png").write_bytes(png(3, 3, seed=5))
    post = tmp_path / "post.md"
    post.write_text("![a](a.png)\n")

    def edit_then_answer(request, host):  # type: ignore[no-untyped-def]
        post.write_text("![a](a.png)\nA line the author added while the upload ran.\n")
        return host.default_reply(request)

    new_host.respond_with(edit_then_answer)
    result = run_picbeam("migrate", post, "--host", "new")
    assert result.returncode == 1
    assert f"{post}:1: not rewritten: the file changed while its images were moved; run again" in result.stderr
    assert post.read_text() == "![a](a.png)\nA line the author added while the upload ran.\n"
    again = run_picbeam("migrate", post, "--host", "new")  # the ledger has the image: nothing is sent again
    assert again.returncode == 0, again.stderr
    assert post.read_text().startswith(f"![a]({new_host.url}/files/1/a.png)\nA line the author added")
    assert len(new_host.requests) == 1
