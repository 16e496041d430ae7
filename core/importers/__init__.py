"""Importers: other tools' configurations as picbeam hosts (``picbeam hosts import``).

Each module reads one format: ``sharex`` (ShareX custom uploaders, ``.sxcu``), ``picgo`` (every uploader
of a PicGo/PicList config), ``qexo`` (Qexo's remote API) and ``upic`` (uPic's custom hosts).
:func:`read` detects the format and returns, for every host in the file, either an :class:`Imported`
(hosts.d fields plus notes for the user) or an :class:`ImportRefused` saying why it was not imported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .common import Imported, ImportRefused


@dataclass(frozen=True)
class Importer:
    """One configuration format ``picbeam hosts import`` reads, registered with ``register_importers``.

    ``detect(data)`` says whether the parsed JSON ``data`` is in this format; ``convert(data, where, name)``
    returns an :class:`Imported` (or several) for each host in it (``where`` names the file in messages,
    ``name`` is the host name the user asked for, or None), and may raise :class:`ImportRefused`.
    """

    name: str
    description: str
    detect: Callable[[Any], bool]
    convert: Callable[..., Imported | Iterable[Imported | ImportRefused]]


__all__ = ["ImportRefused", "Imported", "Importer", "detect", "importers", "read", "read_data"]


def importers() -> dict[str, Importer]:
    """Every format the loaded plugins registered, in the order they are tried."""
    from ..loader import load_plugins

    return load_plugins().hooks.register_importers()


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
    known = importers()
    for name, importer in known.items():
        if importer.detect(data):
            return name
    kinds = "; ".join(importer.description for importer in known.values())
    raise ConfigError(f"{where}: not a configuration picbeam can import (it reads {kinds})")


def read(path: Path, *, name: str | None = None, format: str | None = None) -> list[Imported | ImportRefused]:
    """Every host in a configuration file: imported, or refused with the reason."""
    return read_data(load(path), where=path.name, name=name, format=format)


def read_data(
    data: Any, *, where: str, name: str | None = None, format: str | None = None
) -> list[Imported | ImportRefused]:
    known = importers()
    if format is not None and format not in known:
        raise ConfigError(f"--format {format!r}: expected one of {', '.join(known)}")
    chosen = known[format or detect(data, where)]
    if not chosen.detect(data):
        raise ConfigError(f"{where}: not {chosen.description}")
    try:
        converted = chosen.convert(data, where=where, name=name)
        results = [converted] if isinstance(converted, Imported | ImportRefused) else list(converted)
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
