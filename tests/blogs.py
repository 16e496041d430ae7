"""Blog fixtures for migrate and links: a Hexo-style blog and an Obsidian vault, written by the tests.

Each post is a template in which ``⟦m:URL⟧`` marks a link that must move (the file holds URL) and
``⟦e:NAME⟧`` an Obsidian embed that must move (the file holds ``![[NAME]]``). From a template come
the file's bytes (in the post's encoding and line endings) and a pattern that the migrated file must
match exactly: the same bytes everywhere, a new host URL at each mark.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from picbeam.samples import png
from picbeam.testing import FakeHost

MARK = re.compile(r"⟦([me]):([^⟧]*)⟧")


@dataclass
class Post:
    path: Path
    template: str
    encoding: str = "utf-8"
    newline: str = "\n"

    def text(self) -> str:
        return self.template.replace("\n", self.newline)

    def original(self) -> bytes:
        return MARK.sub(lambda m: m.group(2) if m.group(1) == "m" else f"![[{m.group(2)}]]", self.text()).encode(
            self.encoding
        )

    def marks(self) -> int:
        return len(MARK.findall(self.template))

    def expected(self, new_url: str, moved: bool = True) -> re.Pattern[bytes]:
        """The migrated file, byte for byte; ``new_url`` is a pattern for a URL on the new host. With
        ``moved=False`` a remote mark may also still hold its old URL (a host stopped half-way)."""
        parts, last = [], 0
        text = self.text()
        for match in MARK.finditer(text):
            parts.append(re.escape(text[last : match.start()].encode(self.encoding)))
            kind, value = match.groups()
            if kind == "e":
                name, _, width = value.partition("|")
                new = re.escape(f"![{name}{'|' + width if width else ''}](".encode()) + new_url + rb"\)"
            else:
                new = new_url
            if not moved and value.startswith("http"):
                new = b"(?:" + new + b"|" + re.escape(value.encode()) + b")"
            parts.append(new)
            last = match.end()
        parts.append(re.escape(text[last:].encode(self.encoding)))
        return re.compile(b"".join(parts), re.DOTALL)


class OldHost(FakeHost):
    """The blog's old image host: serves ``files`` at /files/N/NAME; after ``serve_only`` answers it
    drops every connection (a host that went away half-way through)."""

    def __init__(self) -> None:
        super().__init__()
        self.serve_only: int | None = None
        self.served = 0

    async def _serve_file(self, request: web.Request) -> web.StreamResponse:
        if self.serve_only is not None and self.served >= self.serve_only:
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=599)
        self.served += 1
        return await super()._serve_file(request)

    def add(self, number: int, name: str, data: bytes) -> str:
        self.stored[f"{number}/{name}"] = data
        return f"{self.url}/files/{number}/{name}"


HEXO_POST = """---
title: Hello world
date: 2024-01-01 10:00:00
cover: ⟦m:/images/cover.png⟧
thumbnail: "⟦m:/images/wide.png⟧"
description: "an image: /images/logo.png"
---
Intro with ![logo](⟦m:/images/logo.png⟧ "The logo") and a reference-style ![shared][Shared Image].

<img src="⟦m:/images/shared.png⟧" alt="shared" width="300">

<picture><source srcset="⟦m:/images/wide.png⟧ 2x, ⟦m:/images/logo.png⟧ 1x"><img src='⟦m:/images/wide.png⟧'></picture>

From the post's asset folder: ![asset](⟦m:asset.png⟧); from the old host: ![remote](⟦m:{remote1}⟧).
A relative one with a query: ![q](⟦m:../images/logo.png?v=2⟧) and spaces: ![s](<⟦m:../images/with space.png⟧>)

Inline code `![not](/images/logo.png)` and ``<img src="/images/logo.png">`` stay as they are.

```markdown
![fenced](/images/logo.png)
<img src="/images/logo.png">
```

    ![indented](/images/logo.png)

~~~
![[tilde.png]]
~~~

<!-- ![commented](/images/logo.png) -->

A link, not an image: [logo](/images/logo.png). Escaped: \\![no](/images/logo.png).
Data: ![d](data:image/png;base64,AAAA)

| Table | Image |
|-------|-------|
| one   | ![t](⟦m:/images/logo.png⟧) |

> Quoted: ![q](⟦m:/images/wide.png⟧)

[Shared image]: ⟦m:/images/shared.png⟧ "Shared"
[link only]: /images/logo.png
"""

WINDOWS_POST = (
    "\ufeff# Written on Windows\n\n![crlf](⟦m:/images/logo.png⟧)\n\n```\n![code](/images/logo.png)\n```\n"
    + ('<img src="⟦m:../images/wide.png⟧">')
)  # no trailing newline

CHINESE_POST = "# 你好世界\n\n这是一张图片 ![图片](⟦m:/images/中文.png⟧)\n\n`![代码](/images/中文.png)`\n"

LATIN1_POST = "# Café\n\nCrème brûlée : ![crème](⟦m:/images/logo.png⟧)\n"

ABOUT_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>About</title></head><body>
<img src="⟦m:/images/logo.png⟧" alt="logo">
<img srcset="⟦m:/images/logo.png⟧ 1x, ⟦m:/images/wide.png⟧ 2x" src='⟦m:/images/shared.png⟧'>
<pre><img src="/images/logo.png"></pre>
<!-- <img src="/images/logo.png"> -->
<script>var s = '<img src="/images/logo.png">';</script>
<p>From the old host: <img src="⟦m:{remote2}⟧"></p>
</body></html>
"""

SHARED_POST = "# Post {n}\n\n![shared](⟦m:/images/shared.png⟧)\n"
SHARED_POSTS = 50


def image(seed: int) -> bytes:
    return png(4, 4, seed=seed)


def hexo_blog(root: Path, old: OldHost) -> tuple[list[Post], dict[str, bytes]]:
    """A Hexo blog under ``root``: source/_posts, source/images, a post asset folder, an about page,
    50 posts sharing one image; two images on the old host. Returns the posts and the images by name."""
    images = {name: image(seed) for seed, name in enumerate(("logo", "shared", "wide", "中文", "cover", "with space"))}
    source = root / "source"
    (source / "images").mkdir(parents=True)
    for name, data in images.items():
        (source / "images" / f"{name}.png").write_bytes(data)
    (source / "_posts" / "hello-world").mkdir(parents=True)
    images["asset"] = image(20)
    (source / "_posts" / "hello-world" / "asset.png").write_bytes(images["asset"])
    images["remote1"], images["remote2"] = image(21), image(22)
    remote1 = old.add(1, "remote1.png", images["remote1"])
    remote2 = old.add(2, "remote2.png", images["remote2"])
    (root / "_config.yml").write_text("title: My blog\npost_asset_folder: true\n")
    posts = [
        Post(source / "_posts" / "hello-world.md", HEXO_POST.replace("{remote1}", remote1)),
        Post(source / "_posts" / "windows.md", WINDOWS_POST, newline="\r\n"),
        Post(source / "_posts" / "chinese.md", CHINESE_POST, encoding="gbk"),
        Post(source / "_posts" / "cafe.md", LATIN1_POST, encoding="latin-1"),
        Post(source / "about" / "index.html", ABOUT_PAGE.replace("{remote2}", remote2)),
        *(
            Post(source / "_posts" / f"shared-{n:02d}.md", SHARED_POST.replace("{n}", str(n)))
            for n in range(SHARED_POSTS)
        ),
    ]
    for post in posts:
        post.path.parent.mkdir(parents=True, exist_ok=True)
        post.path.write_bytes(post.original())
    return posts, images


DAILY_NOTE = """# Daily note

⟦e:Pasted image 20240101120000.png⟧
Sized: ⟦e:diagram.png|300⟧ and a note embed that is not an image: ![[Other note]]
Markdown style: ![a](⟦m:../attachments/Pasted%20image%2020240101120000.png⟧)
Angle brackets: ![b](<⟦m:../attachments/Pasted image 20240101120000.png⟧>)
Inline code: `![[inline.png]]`

```
![[fenced.png]]
```

- [ ] a task with ⟦e:diagram.png⟧
- from the old host: ![r](⟦m:{remote3}⟧)
"""


def obsidian_vault(root: Path, old: OldHost) -> tuple[list[Post], dict[str, bytes]]:
    images = {"Pasted image 20240101120000": image(30), "diagram": image(31), "remote3": image(32)}
    (root / ".obsidian").mkdir(parents=True)
    (root / ".obsidian" / "app.json").write_text('{"attachmentFolderPath": "attachments"}')
    (root / ".obsidian" / "workspace.md").write_text("![[diagram.png]]\n")  # settings: never scanned
    (root / "attachments").mkdir()
    (root / "attachments" / "Pasted image 20240101120000.png").write_bytes(images["Pasted image 20240101120000"])
    (root / "diagram.png").write_bytes(images["diagram"])
    remote3 = old.add(3, "remote3.png", images["remote3"])
    posts = [
        Post(root / "Daily" / "2024-01-01.md", DAILY_NOTE.replace("{remote3}", remote3)),
        Post(root / "Other note.md", "Just text, with a [[Daily/2024-01-01]] link.\n"),
    ]
    for post in posts:
        post.path.parent.mkdir(parents=True, exist_ok=True)
        post.path.write_bytes(post.original())
    return posts, images
