"""Importers: other tools' configurations as picbeam hosts (``picbeam hosts import``).

Each module reads one format: ``sharex`` (ShareX custom uploaders, ``.sxcu``), ``picgo`` (every uploader
of a PicGo/PicList config), ``qexo`` (Qexo's remote API) and ``upic`` (uPic's custom hosts).
:func:`read` detects the format and returns, for every host in the file, either an :class:`Imported`
(hosts.d fields plus notes for the user) or an :class:`ImportRefused` saying why it was not imported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from . import picgo, qexo, sharex, upic
from .common import Imported, ImportRefused

# Checked in this order: the first whose shape matches reads the file.
FORMATS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "sharex": (sharex.matches, "a ShareX custom uploader (.sxcu)"),
    "upic": (upic.matches, "uPic's host export"),
    "picgo": (picgo.matches, "a PicGo/PicList config (config.json, data.json)"),
    "qexo": (qexo.matches, "Qexo's remote-API image host settings"),
}

__all__ = ["FORMATS", "ImportRefused", "Imported", "detect", "read", "read_data"]


def load(path: Path) -> Any:
    """The file's JSON; a file that cannot be read or parsed is one line naming it."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file; expected a JSON configuration") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None  # type: ignore[attr-defined]


def detect(data: Any, where: str) -> str:
    for name, (matches, _) in FORMATS.items():
        if matches(data):
            return name
    kinds = "; ".join(description for _, description in FORMATS.values())
    raise ConfigError(f"{where}: not a configuration picbeam can import (it reads {kinds})")


def read(path: Path, *, name: str | None = None, format: str | None = None) -> list[Imported | ImportRefused]:
    """Every host in a configuration file: imported, or refused with the reason."""
    return read_data(load(path), where=path.name, name=name, format=format)


def read_data(
    data: Any, *, where: str, name: str | None = None, format: str | None = None
) -> list[Imported | ImportRefused]:
    if format is not None and format not in FORMATS:
        raise ConfigError(f"--format {format!r}: expected one of {', '.join(FORMATS)}")
    chosen = format or detect(data, where)
    if not FORMATS[chosen][0](data):
        raise ConfigError(f"{where}: not {FORMATS[chosen][1]}")
    try:
        if chosen == "sharex":
            results: list[Imported | ImportRefused] = [sharex.convert(data, where=where, name=name)]
        else:
            module = {"upic": upic, "picgo": picgo, "qexo": qexo}[chosen]
            results = list(module.convert(data, where=where, name=name))
    except ImportRefused as refused:
        return [refused]
    return [_without_control_characters(result, where) for result in results]


CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _without_control_characters(result: Imported | ImportRefused, where: str) -> Imported | ImportRefused:
    """A header, form or query name or value with CR, LF or another control character cannot go on the
    wire (and would let a file inject headers): refused here, naming the field, not at upload time."""
    if isinstance(result, ImportRefused):
        return result
    for table in ("headers", "form", "query", "delete_form"):
        for key, value in (result.fields.get(table) or {}).items():
            if CONTROL.search(str(key)) or CONTROL.search(str(value)):
                return ImportRefused(
                    f"{where}: '{result.name}' not imported: {table}.{key.encode('unicode_escape').decode()} holds a "
                    "control character (CR, LF, tab...), which HTTP does not allow in a header or form field",
                    "bad-config",
                )
    return result
