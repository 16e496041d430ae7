"""Output formats: one line per input file, in input order, on stdout.

Formats are plugins on the ``register_formats`` hook; the built-in ones (``picbeam.plugins.formats``)
render with the functions below.
"""

from __future__ import annotations

import html as html_module
import json
import re
from collections.abc import Callable
from pathlib import PurePath

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
    return f'<img src="{html_module.escape(result.url or "")}" alt="{html_module.escape(_alt(result))}">'


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
    """The format called ``name``; an unknown one is a ConfigError listing the known ones."""
    known = formats()
    if name not in known:
        from .options import unknown

        raise unknown(name, known, where, what="format") from None
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
