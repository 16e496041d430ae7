"""Output formats: one line per input file, in input order, on stdout."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from pathlib import PurePath

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
    return FORMATS[fmt](result)
