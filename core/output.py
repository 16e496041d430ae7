"""Output formats: one line per input file, in input order, on stdout.

Formats are plugins on the ``register_formats`` hook; the built-in ones (``picbeam.plugins.formats``)
render with the functions below.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from pathlib import PurePath
from urllib.parse import unquote, urlsplit

from .errors import ConfigError
from .items import UploadResult

Formatter = Callable[[UploadResult], str]
DEFAULT_FORMAT = "url"


def _alt(result: UploadResult) -> str:
    return PurePath(result.path).stem


def url(result: UploadResult) -> str:
    return result.url or ""


# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones that end or shape an
# image's alt text or start inline HTML.
_MARKDOWN_SPECIAL = re.compile(r"([\\\[\]()*_`<>!&])")


def markdown(result: UploadResult) -> str:
    alt = _MARKDOWN_SPECIAL.sub(r"\\\1", _alt(result))
    return f"![{alt}]({_quote_url(result.url, '()<> ')})"


def html(result: UploadResult) -> str:
    from html import escape  # html.entities is a big table: only for this format

    return f'<img src="{escape(result.url or "")}" alt="{escape(_alt(result))}">'


def bbcode(result: UploadResult) -> str:
    return f"[img]{_quote_url(result.url, '[]')}[/img]"


def _quote_url(url: str | None, characters: str) -> str:
    """``url`` with ``characters`` (which would end the markup around it) percent-encoded."""
    return "".join(f"%{ord(c):02X}" if c in characters else c for c in url or "")


def json_line(result: UploadResult) -> str:
    return json.dumps(result.to_json(), ensure_ascii=False)


def formats() -> dict[str, Formatter]:
    """Every output format the loaded plugins registered."""
    from .loader import load_plugins

    return load_plugins().hooks.register_formats()


def formatter(name: str, where: str = "--format") -> Formatter:
    """The format called ``name`` (or the template ``name``); an unknown one is a ConfigError listing the
    known ones."""
    if is_template(name):
        return template(name)
    known = formats()
    if name not in known:
        check_format(name, where)  # raises, naming the known formats
    return known[name]


def format_result(result: UploadResult, fmt: str) -> str:
    """The stdout line for one file. A failed file gives an empty line in the text formats, so that line N
    of the output always belongs to input N (Typora reads the last lines), and a full record in JSON."""
    if fmt == "json":
        return json_line(result)
    if not result.ok:
        return ""
    try:
        return formatter(fmt)(result)
    except ConfigError:
        raise
    except Exception as exc:  # a format plugin's bug: the URL still reaches the user
        from .loader import print_traceback

        print_traceback(exc)
        return f"{result.url}  (format '{fmt}' failed: {type(exc).__name__}: {exc})"


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
    if not is_template(fmt):
        known = formats()
        if fmt not in known:
            from .options import unknown

            raise unknown(fmt, known, what, what="format (or a template such as '![{name}]({url})')") from None
        return
    for match in _TEMPLATE_PART.finditer(fmt):
        if match.group(1) is not None and match.group(1) not in TEMPLATE_FIELDS:
            known = ", ".join(f"{{{name}}}" for name in TEMPLATE_FIELDS)
            raise ConfigError(f"{what}: unknown placeholder '{{{match.group(1)}}}' in {fmt!r} (known: {known})")


@functools.cache
def template(fmt: str) -> Formatter:
    """The function that fills the template ``fmt`` from one result."""
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
