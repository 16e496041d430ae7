"""The built-in output formats (``--format``): url, markdown, html, bbcode, json."""

from __future__ import annotations

from collections.abc import Callable

from picbeam import UploadResult, hookimpl
from picbeam.output import bbcode, html, json_line, markdown, url


@hookimpl
def register_formats(register: Callable[[str, Callable[[UploadResult], str]], None]) -> None:
    for name, render in (("url", url), ("markdown", markdown), ("html", html), ("bbcode", bbcode),
                         ("json", json_line)):  # fmt: skip
        register(name, render)
