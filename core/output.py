"""Output formats: one line per input file, in input order, on stdout."""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Callable
from pathlib import PurePath
from urllib.parse import unquote, urlsplit

from .errors import ConfigError
from .items import UploadResult

Formatter = Callable[[UploadResult], str]


def _alt(result: UploadResult) -> str:
    return PurePath(result.path).stem


# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones that end or shape an
# image's alt text or start inline HTML.
_MARKDOWN_SPECIAL = re.compile(r"([\\\[\]()*_`<>!&])")


def _markdown(result: UploadResult) -> str:
    alt = _MARKDOWN_SPECIAL.sub(r"\\\1", _alt(result))
    return f"![{alt}]({_quote_url(result.url, '()<> ')})"


def _html(result: UploadResult) -> str:

    return f'<img src="{html.escape(result.url or "")}" alt="{html.escape(_alt(result))}">'


def _bbcode(result: UploadResult) -> str:
    return f"[img]{_quote_url(result.url, '[]')}[/img]"


def _quote_url(url: str | None, characters: str) -> str:
    """``url`` with ``characters`` (which would end the markup around it) percent-encoded."""
    return "".join(f"%{ord(c):02X}" if c in characters else c for c in url or "")


def _json(result: UploadResult) -> str:
    return json.dumps(result.to_json(), ensure_ascii=False)


FORMATS: dict[str, Formatter] = {
    "url": lambda result: result.url or "",
    "markdown": _markdown,
    "html": _html,
    "bbcode": _bbcode,
    "json": _json,
}


def format_result(result: UploadResult, fmt: str) -> str:
    """The stdout line for one file. A failed file gives an empty line in the text formats, so that line N
    of the output always belongs to input N (Typora reads the last lines), and a full record in JSON."""
    if fmt != "json" and not result.ok:
        return ""
    return formatter(fmt)(result)


# -- custom link formats: a --format value holding "{" is a template, like PicGo's `![$fileName]($url)` --
TEMPLATE_FIELDS: dict[str, Callable[[UploadResult], str]] = {
    "url": lambda result: result.url or "",
    "filename": lambda result: PurePath(sent_name(result)).name,
    "name": lambda result: PurePath(sent_name(result)).stem,
    "delete_url": lambda result: result.delete_url or "",
    "thumbnail_url": lambda result: result.thumbnail_url or "",
    "host": lambda result: result.host,
    "sha256": lambda result: result.sha256,
}
_TEMPLATE_PART = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


def is_template(fmt: str) -> bool:
    return "{" in fmt


def check_format(fmt: str, what: str = "--format") -> None:
    """A format name or a template with known placeholders, else a ConfigError naming ``what``."""
    if fmt in FORMATS:
        return
    if not is_template(fmt):
        raise ConfigError(f"{what} must be one of {', '.join(FORMATS)}, or a template such as '![{{name}}]({{url}})'")
    for match in _TEMPLATE_PART.finditer(fmt):
        if match.group(1) is not None and match.group(1) not in TEMPLATE_FIELDS:
            known = ", ".join(f"{{{name}}}" for name in TEMPLATE_FIELDS)
            raise ConfigError(f"{what}: unknown placeholder '{{{match.group(1)}}}' in {fmt!r} (known: {known})")


@functools.cache
def formatter(fmt: str) -> Formatter:
    """The function that renders one result in ``fmt``: a named format, or a template's ``render``."""
    if fmt in FORMATS:
        return FORMATS[fmt]
    check_format(fmt)

    def render(result: UploadResult) -> str:
        """The template filled from one result; ``{{`` and ``}}`` are literal braces."""

        def part(match: re.Match[str]) -> str:
            if match.group(1) is None:
                return match.group(0)[0]
            return TEMPLATE_FIELDS[match.group(1)](result)

        return _TEMPLATE_PART.sub(part, fmt)

    return render


def sent_name(result: UploadResult) -> str:
    """The name the file was uploaded under (a download's own name, a renamed file's new one), else the
    name of what the user gave."""
    return str(result.extra.get("name") or file_name(result.path))


def file_name(path: str) -> str:
    """The name of an input: the last part of a path, or of a URL's path (``https://x/a%20b.png`` -> ``a b.png``)."""
    if "://" in path:
        return unquote(urlsplit(path).path.rstrip("/").rpartition("/")[2]) or urlsplit(path).hostname or path
    return PurePath(path).name
