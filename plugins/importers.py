"""The built-in `picbeam hosts import` formats: ShareX, uPic, PicGo/PicList and Qexo.

Each reader is imported only when a file is imported: every run loads this plugin.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from picbeam import hookimpl

if TYPE_CHECKING:
    from picbeam.importers import Importer

# Tried in this order: the first whose shape matches reads the file.
READERS = (
    ("sharex", "a ShareX custom uploader (.sxcu)"),
    ("upic", "uPic's host export"),
    ("picgo", "a PicGo/PicList config (config.json, data.json)"),
    ("qexo", "Qexo's remote-API image host settings"),
)


def _lazy(module: str, function: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(f"picbeam.importers.{module}"), function)(*args, **kwargs)

    return call


@hookimpl
def register_importers(register: Callable[[Importer], None]) -> None:
    from picbeam.importers import Importer

    for name, description in READERS:
        register(Importer(name, description, _lazy(name, "matches"), _lazy(name, "convert")))
