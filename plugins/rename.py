"""Rename: the uploaded file's name from a path template (``--rename "{year}/{month}/{sha256:8}{ext}"``).

For hosts that take a file name or a path. The placeholders are those of storage paths
(:mod:`picbeam.templates`); ``{ext}`` is the extension after any conversion, ``{name}`` the original
stem, ``{sha256}`` the hash of the bytes sent. It runs last, after every other processor.
"""

from __future__ import annotations

from picbeam import UploadItem, hookimpl
from picbeam.processing import ProcessSettings, settings_of
from picbeam.templates import TemplateContext, render_path

PROCESS_LIGHT = True  # byte work and names: no worker process needed
PROCESS_ORDER = 900


def process_signature(settings: ProcessSettings) -> str:
    return f"rename={settings.rename}" if settings.rename else ""


@hookimpl
def prepare_upload(item: UploadItem) -> None:
    template = settings_of(item).rename
    if not template:
        return
    name = render_path(template, TemplateContext.of(item))
    item.notes.append(f"rename: {item.name} -> {name}")
    item.replace(name=name)
