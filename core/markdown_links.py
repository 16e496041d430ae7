"""Finding the image links in Markdown and HTML files, with their exact places in the text.

markdown-it-py parses each Markdown file and says which lines are code (fenced or indented), which are
HTML blocks and which are paragraphs, and which image destinations and reference definitions it saw.
Within the lines it marks as inline text, a small scanner finds where each of those destinations is
written, skipping code spans; a destination markdown-it did not see as an image is never reported.
A file is rewritten by replacing only those spans: everything else keeps its bytes.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdown", ".mkd")
HTML_SUFFIXES = (".html", ".htm")
SKIPPED_FOLDERS = ("node_modules", "__pycache__")
# Files bigger than this are not posts (a data dump named .md): read whole, they would fill memory.
MAX_DOCUMENT = 64 * 2**20
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".bmp", ".avif", ".heic", ".tif", ".tiff", ".ico")

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_TAG = re.compile(r"<(img|source)\b([^>]*)>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"""(?<![\w-])(src|srcset|data-src)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.I)
# What a browser shows as text or runs, never images to move: HTML comments, scripts, styles, code.
_HTML_SKIPPED = re.compile(r"<!--.*?-->|<(script|style|pre|code|textarea)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_EMBED = re.compile(r"!\[\[([^\[\]|#\r\n]+)(#[^\[\]|\r\n]*)?(\|[^\[\]\r\n]*)?\]\]")
_REFERENCE = re.compile(
    r"^[ \t>]*\[((?:[^\[\]\\]|\\.){1,999})\]:[ \t]*(?:\r\n|\r|\n)?[ \t>]*(<[^<>\r\n]*>|[^\s<>]+)", re.MULTILINE
)
_FRONT_MATTER = re.compile(
    r"\A(?:\ufeff)?(---|\+\+\+)[ \t]*(?:\r\n|\r|\n).*?(?:\r\n|\r|\n)\1[ \t]*(?:\r\n|\r|\n|\Z)", re.S
)
# A theme's image fields in front matter (Hexo's cover and thumbnail, Hugo's featured_image, Jekyll's
# image...): `key: value`, `key = "value"` (TOML), the value an image path or URL, quoted or not.
_FRONT_FIELD = re.compile(
    r"""^[ \t]*(?:cover|thumbnail|image|banner|featured_image|featured|og_image|header_image|top_img|photo)"""
    r"""[ \t]*[:=][ \t]*(["']?)([^\s"'#]+\.(?:png|jpe?g|gif|webp|svg|bmp|avif))\1[ \t]*$""",
    re.MULTILINE | re.IGNORECASE,
)
_LIQUID = re.compile(r"\{\{[^{}\r\n]{0,200}\}\}")
_ESCAPABLE = re.compile(r"\\([!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])")


@dataclass(frozen=True)
class Link:
    """One image link: ``text[start:end]`` is what gets replaced (the URL as written, or a whole Obsidian
    embed). ``target`` is what it points to, escapes undone."""

    start: int
    end: int
    line: int
    target: str
    kind: str  # "image", "reference", "html", "srcset", "embed", "front" (a front matter field)
    angle: bool = False  # a Markdown destination written as <...>
    label: str = ""  # an Obsidian embed's "|300" (kept as the alt text's width)


@dataclass
class Document:
    """A scanned file: its bytes, the text they decode to (losslessly), and its image links."""

    path: Path
    raw: bytes
    text: str
    encoding: str
    links: list[Link] = field(default_factory=list)

    def line_of(self, offset: int) -> int:
        return len(_LINE_BREAK.findall(self.text, 0, offset)) + 1

    def rewritten(self, urls: Mapping[Link, str]) -> str:
        """The text with each link in ``urls`` pointing at its new URL; nothing else changes."""
        parts, last = [], 0
        for link in sorted(urls, key=lambda item: item.start):
            parts += [self.text[last : link.start], written(link, urls[link])]
            last = link.end
        parts.append(self.text[last:])
        return "".join(parts)

    def encode(self, text: str) -> bytes:
        return text.encode(self.encoding, errors="surrogateescape")


def written(link: Link, url: str) -> str:
    """``url`` as the link's syntax needs it."""
    if link.kind in ("html", "srcset"):
        escaped = html.escape(url, quote=True)
        return escaped.replace(",", "%2C").replace(" ", "%20") if link.kind == "srcset" else escaped
    if link.angle:
        return url.replace("<", "%3C").replace(">", "%3E")
    if link.kind == "front":
        return url.replace(" ", "%20").replace('"', "%22").replace("'", "%27").replace("#", "%23")
    safe = url.replace(" ", "%20").replace("(", "%28").replace(")", "%29").replace("<", "%3C")
    if link.kind == "embed":
        name = link.target.rsplit("/", 1)[-1].replace("[", "").replace("]", "")
        return f"![{name}{link.label}]({safe})"
    return safe


# -- reading ---------------------------------------------------------------------------------------
class UnreadableFile(Exception):
    """A file that cannot be decoded and written back byte for byte."""


def decode(raw: bytes, encoding: str | None = None) -> tuple[str, str]:
    """The text of ``raw`` and the encoding that gives back exactly the same bytes.

    UTF-8 first; then a charset the file declares (HTML ``<meta charset>``); then GB 18030 for text that
    reads as Chinese; then Latin-1, which maps every byte to one character (ASCII stays ASCII, so links
    are found and the file is written back unchanged)."""
    candidates = [encoding] if encoding else ["utf-8", *_declared(raw), "gb18030", "latin-1"]
    for name in candidates:
        try:
            text = raw.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
        if name == "gb18030" and not _mostly_cjk(text):
            continue
        if text.encode(name) == raw:
            return text, name
    if encoding:
        raise UnreadableFile(f"cannot be read as {encoding} and written back unchanged")
    return raw.decode("utf-8", errors="surrogateescape"), "utf-8"


def _declared(raw: bytes) -> list[str]:
    match = re.search(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_.:-]+)", raw[:4096], re.IGNORECASE)
    return [match.group(1).decode("ascii")] if match else []


def _mostly_cjk(text: str) -> bool:
    wide = [c for c in text if ord(c) > 0x7F]
    cjk = sum(1 for c in wide if "\u3000" <= c <= "\u9fff" or "\uff00" <= c <= "\uffef")
    return bool(wide) and cjk * 10 >= len(wide) * 9


def is_scanned(path: Path) -> bool:
    return path.suffix.lower() in MARKDOWN_SUFFIXES + HTML_SUFFIXES


def walk(paths: Iterable[Path]) -> Iterator[Path]:
    """The Markdown and HTML files under ``paths`` (named files whatever their suffix), sorted, each once;
    hidden folders (.git, .obsidian) and node_modules are passed over."""
    seen: set[str] = set()
    for path in paths:
        if path.is_dir():
            for folder, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_FOLDERS)
                for name in sorted(files):
                    found = Path(folder, name)
                    if is_scanned(found) and os.path.realpath(found) not in seen:
                        seen.add(os.path.realpath(found))
                        yield found
        elif os.path.realpath(path) not in seen:
            seen.add(os.path.realpath(path))
            yield path


def read_document(path: Path, encoding: str | None = None) -> Document:
    """Read and scan one file (OSError and UnreadableFile propagate)."""
    if not path.is_file():  # a FIFO would block the read forever; a folder or device is no post
        raise UnreadableFile("not a regular file" if path.exists() else "no such file")
    if path.stat().st_size > MAX_DOCUMENT:
        raise UnreadableFile(f"over {MAX_DOCUMENT // 2**20} MiB: not a post (name it with care, or split it)")
    raw = path.read_bytes()
    text, used = decode(raw, encoding)
    document = Document(path, raw, text, used)
    if path.suffix.lower() in HTML_SUFFIXES:
        document.links = list(_html_links(text, 0, len(text)))
    else:
        document.links = scan_markdown(text)
    starts = _line_starts(text)
    document.links = [_with_line(link, starts) for link in sorted(set(document.links), key=lambda k: k.start)]
    return document


def _line_starts(text: str) -> list[int]:
    return [0, *(match.end() for match in _LINE_BREAK.finditer(text))]


def _with_line(link: Link, starts: list[int]) -> Link:
    import bisect

    return Link(link.start, link.end, bisect.bisect_right(starts, link.start), link.target, link.kind, link.angle,
                link.label)  # fmt: skip


# -- Markdown --------------------------------------------------------------------------------------
def _parser() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


_PARSER: Any = None


def scan_markdown(text: str) -> list[Link]:
    global _PARSER
    if _PARSER is None:
        _PARSER = _parser()
    md = _PARSER
    starts = _line_starts(text)
    starts.append(len(text))

    def span(first: int, last: int) -> tuple[int, int]:
        return starts[min(first, len(starts) - 1)], starts[min(last, len(starts) - 1)]

    # Jekyll's Liquid ({{ site.baseurl }}/a.png) is expanded before Markdown: parse with each tag as one
    # word of the same length, so a destination holding one is still a destination.
    scanned = _LIQUID.sub(lambda m: "{" + "_" * (len(m.group()) - 2) + "}", text)
    source = scanned
    front = _FRONT_MATTER.match(text)
    links: list[Link] = []
    if front:  # YAML or TOML front matter (Hexo, Hugo, Jekyll): not Markdown; blanked, keeping its lines
        source = _LINE_BREAK.sub("\n", text[: front.end()])
        source = re.sub(r"[^\n]", " ", source) + scanned[front.end() :]
        links += (
            Link(m.start(2), m.end(2), 0, m.group(2), "front") for m in _FRONT_FIELD.finditer(text, 0, front.end())
        )
    env: dict[str, Any] = {}
    tokens = md.parse(_LINE_BREAK.sub("\n", source), env)
    images: set[str] = set()
    labels: set[str] = set()
    regions: dict[tuple[int, int], tuple[bool, bool]] = {}  # inline lines -> (holds images, holds HTML)
    for token in tokens:
        if token.type == "html_block" and token.map:
            links += _html_links(text, *span(*token.map))
        elif token.type == "inline" and token.map:
            children = list(_descendants(token.children or []))  # an image's alt may hold an image
            images.update(child.attrs.get("src", "") for child in children if child.type == "image")
            key = (token.map[0], token.map[1])
            had_images, had_html = regions.get(key, (False, False))
            regions[key] = (
                had_images or any(child.type == "image" for child in children),
                had_html or any(child.type == "html_inline" for child in children),
            )
    for (first, last), (has_images, has_html) in regions.items():
        start, end = span(first, last)
        masked = _mask_code_spans(scanned[start:end])
        if has_images:
            links += _inline_images(md, text, masked, start, images, labels)
        links += (
            Link(start + m.start(), start + m.end(), 0, m.group(1).strip(), "embed", label=m.group(3) or "")
            for m in _EMBED.finditer(masked)
            if m.group(1).strip().lower().endswith(IMAGE_SUFFIXES)  # ![[Other note]] embeds a note
        )
        if has_html:
            links += _html_links(masked, 0, len(masked), offset=start, original=text)
    links += _references(md, text, scanned, env.get("references", {}), labels, span)
    return links


def _descendants(tokens: list[Any]) -> Iterator[Any]:
    for token in tokens:
        yield token
        yield from _descendants(token.children or [])


def _mask_code_spans(chunk: str) -> str:
    """``chunk`` with every code span's content turned into spaces (same length): what is inside
    backticks is text, never a link (CommonMark: a run of N backticks closes at the next run of N).
    Linear in the number of runs, however many never close."""
    runs = [(m.start(), m.end()) for m in re.finditer(r"(?<!\\)`+|(?<=\\\\)`+", chunk)]
    by_size: dict[int, list[int]] = {}
    for number, (start, end) in enumerate(runs):
        by_size.setdefault(end - start, []).append(number)
    seen = dict.fromkeys(by_size, 0)  # per size, how far its list has been passed
    out = list(chunk)
    number = 0
    while number < len(runs):
        size = runs[number][1] - runs[number][0]
        same, position = by_size[size], seen[size]
        while position < len(same) and same[position] <= number:
            position += 1
        seen[size] = position
        if position == len(same):
            number += 1
            continue
        closing = same[position]
        for i in range(runs[number][0], runs[closing][1]):
            if out[i] not in "\r\n":
                out[i] = " "
        number = closing + 1
    return "".join(out)


def _inline_images(md: Any, text: str, masked: str, offset: int, images: set[str], labels: set[str]) -> Iterator[Link]:
    """Inline images whose destination markdown-it saw; the labels of reference-style images go to
    ``labels`` (``![alt][label]``, ``![label][]``, ``![label]``)."""
    brackets = _matching_brackets(masked)
    for match in re.finditer(r"(?<!\\)!\[", masked):
        close = brackets.get(match.end() - 1)
        if close is None:
            continue
        if close + 1 >= len(masked) or masked[close + 1] != "(":
            labels.add(_label(masked, match.end(), close))
            continue
        found = _destination(masked, close + 2)
        if found is None:
            continue
        start, end, angle = found
        if md.normalizeLink(_unescape(masked[start:end])) in images:
            target = _unescape(text[offset + start : offset + end])
            yield Link(offset + start, offset + end, 0, target, "image", angle=angle)


def _label(masked: str, alt_start: int, close: int) -> str:
    following = re.match(r"\[((?:[^\[\]\\]|\\.)*)\]", masked[close + 1 :])
    label = following.group(1) if following and following.group(1).strip() else masked[alt_start:close]
    return " ".join(label.split()).casefold()


def _matching_brackets(chunk: str) -> dict[int, int]:
    """For each ``[`` (not escaped), where its ``]`` is: one pass, whatever the nesting."""
    matches: dict[int, int] = {}
    opened: list[int] = []
    for match in re.finditer(r"\\.|[\[\]]", chunk, re.DOTALL):
        if match.group() == "[":
            opened.append(match.start())
        elif match.group() == "]" and opened:
            matches[opened.pop()] = match.start()
    return matches


def _destination(chunk: str, position: int) -> tuple[int, int, bool] | None:
    """Where a link destination starts and ends after ``(``: ``<...>`` or a run without spaces whose
    parentheses balance."""
    while position < len(chunk) and chunk[position] in " \t\r\n":
        position += 1
    if position < len(chunk) and chunk[position] == "<":
        end = chunk.find(">", position)
        if end < 0 or "\n" in chunk[position:end]:
            return None
        return position + 1, end, True
    start, depth = position, 0
    while position < len(chunk):
        char = chunk[position]
        if char == "\\":
            position += 2
            continue
        if char in " \t\r\n" or ord(char) < 0x20:
            break
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                break
            depth -= 1
        position += 1
    return (start, position, False) if position > start else None


def _unescape(url: str) -> str:
    return html.unescape(_ESCAPABLE.sub(r"\1", url))


def _references(
    md: Any, text: str, scanned: str, references: Mapping[str, Any], labels: set[str], span: Any
) -> Iterator[Link]:
    """Reference definitions (``[logo]: /img/logo.png``) that an image uses."""
    for name, reference in references.items():
        if " ".join(name.split()).casefold() not in labels or not reference.get("map"):
            continue
        start, end = span(*reference["map"])
        match = _REFERENCE.search(scanned, start, end)
        if match is None:
            continue
        value = match.group(2)
        angle = value.startswith("<")
        first = match.start(2) + (1 if angle else 0)
        last = match.end(2) - (1 if angle else 0)
        if md.normalizeLink(_unescape(scanned[first:last])) == reference["href"]:
            yield Link(first, last, 0, _unescape(text[first:last]), "reference", angle=angle)


# -- HTML ------------------------------------------------------------------------------------------
def _html_links(text: str, start: int, end: int, *, offset: int = 0, original: str | None = None) -> Iterator[Link]:
    """``<img src>``, ``srcset`` and ``data-src`` in ``text[start:end]``, outside comments, scripts and code."""
    chunk = _HTML_SKIPPED.sub(lambda m: " " * len(m.group()), text[start:end])
    base = start + offset
    for tag in _TAG.finditer(chunk):
        for attribute in _ATTRIBUTE.finditer(tag.group(2)):
            group = next(i for i in (2, 3, 4) if attribute.group(i) is not None)
            value_start = tag.start(2) + attribute.start(group)
            value = attribute.group(group)
            if attribute.group(1).lower() != "srcset":
                if value.strip():
                    yield Link(base + value_start, base + value_start + len(value), 0, html.unescape(value), "html")
                continue
            for candidate in re.finditer(r"[^\s,][^\s]*", value):
                url = candidate.group().rstrip(",")
                if re.fullmatch(r"\d+(\.\d+)?[wx]", url):
                    continue  # a descriptor
                first = base + value_start + candidate.start()
                yield Link(first, first + len(url), 0, html.unescape(url), "srcset")


# -- writing ---------------------------------------------------------------------------------------
def write_atomically(path: Path, data: bytes, *, backup: bool = False, sync_folder: bool = True) -> Path:
    """Replace ``path``'s content with ``data`` all at once: a temporary file in the same folder, synced,
    then renamed over it (a crash leaves the old file or the new one, never half of one). A symbolic link
    stays a link: its target is written. ``backup`` keeps the old content as ``NAME.orig``. Returns the
    folder written to; with ``sync_folder=False`` the caller syncs it (see :func:`sync_folders`), once
    for many files."""
    target = Path(os.path.realpath(path))
    info = target.stat()
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".picbeam-tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, info.st_mode & 0o7777)
        if backup:
            _keep_original(target)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    if sync_folder:
        sync_folders([target.parent])
    return target.parent


def _keep_original(target: Path) -> None:
    """NAME.orig: a second name for the old content (the rename gives NAME a new file), or a copy where
    hard links are not possible. An existing .orig, from an earlier run, is the older content: kept."""
    original = target.with_name(target.name + ".orig")
    if original.exists():
        return
    try:
        os.link(target, original)
    except OSError:
        original.write_bytes(target.read_bytes())


def sync_folders(folders: Iterable[Path]) -> None:
    """Make renames in these folders durable (where the platform can sync a folder)."""
    for folder in set(folders):
        with contextlib.suppress(OSError):
            handle = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(handle)
            finally:
                os.close(handle)
