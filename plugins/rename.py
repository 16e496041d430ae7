"""Rename: the uploaded file's name from a path template (``--rename "{year}/{month}/{sha256:8}{ext}"``).

For hosts that take a file name or a path. The placeholders are those of storage paths
(:mod:`picbeam.templates`); ``{ext}`` is the extension after any conversion, ``{name}`` the original
stem, ``{sha256}`` the hash of the bytes sent. It runs last, after every other processor.
"""

from __future__ import annotations

from collections.abc import Callable

from picbeam import Option, Processor, UploadItem, hookimpl
from picbeam.processing import ProcessSettings, settings_of
from picbeam.templates import TemplateContext, check_template, render_path


def _template(value: str, what: str) -> str:
    if value:
        check_template(value, where=what)
    return value


OPTIONS = (
    Option("rename", str, None, 'Name uploads from a path template ({year}, {name}, {ext}...).', off=True,
           check=_template),
)  # fmt: skip


@hookimpl
def register_processors(register: Callable[[Processor], None]) -> None:
    # Names only: no worker process needed.
    register(Processor("rename", process, order=900, options=OPTIONS, signature=signature, worker=False))


def signature(settings: ProcessSettings) -> str:
    return f"rename={settings.rename}" if settings.rename else ""


def process(item: UploadItem) -> None:
    template = settings_of(item).rename
    if not template:
        return
    name = render_path(template, TemplateContext.of(item))
    item.notes.append(f"rename: {item.name} -> {name}")
    item.replace(name=name)
