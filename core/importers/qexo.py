"""Qexo's "remote API" image host (远程API): its ``IMG_HOST`` setting, or the settings themselves.

Qexo posts the file as multipart field ``post_params`` to ``api``, with ``custom_header`` (JSON text)
as headers and ``custom_body`` (JSON text) as form fields; it walks ``json_path`` (dot-separated,
numbers index lists; empty means the whole answer is the URL), puts ``custom_url`` in front, and reads
the delete URL at the JSON path ``delete_url``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .common import Imported, ImportRefused, dotted_path, host_name, remote_api_host

KEYS = {"api", "post_params"}
# Where Qexo keeps each part of a remote-API host.
SETTINGS = {"url": "api", "file_field": "post_params", "headers": "custom_header", "body": "custom_body",
            "prefix": "custom_url", "json_path": "json_path"}  # fmt: skip
REMOTE_API = ("远程api", "custom", "remote api", "remote_api")  # compared in lower case


def matches(data: Any) -> bool:
    return isinstance(_settings(data), Mapping)


def _settings(data: Any) -> Any:
    """The remote-API settings in any of the shapes Qexo keeps them: bare, ``{type, params}``, or the
    ``IMG_HOST`` setting (JSON text) alone or in a list of ``{name, content}`` settings."""
    if isinstance(data, list):
        for entry in data:
            if isinstance(entry, Mapping) and entry.get("name") == "IMG_HOST":
                return _settings({"IMG_HOST": entry.get("content", entry.get("value"))})
        return None
    if not isinstance(data, Mapping):
        return None
    if "IMG_HOST" in data:
        value = data["IMG_HOST"]
        try:
            return _settings(json.loads(value) if isinstance(value, str) else value)
        except ValueError:
            return None
    if "params" in data and "type" in data:
        return data
    return data if set(data) >= KEYS else None


def convert(data: Any, *, where: str, name: str | None = None) -> list[Imported]:
    settings = _settings(data)
    if "params" in settings:
        kind = str(settings.get("type") or "")
        if kind.lower() not in REMOTE_API:
            raise ImportRefused(
                f"{where}: not imported: Qexo's image host here is {kind!r}, not the remote API (远程API)",
                "not-remote-api",
            )
        settings = settings["params"] or {}
    if not settings.get("api") or not settings.get("post_params"):
        raise ImportRefused(f"{where}: not imported: api and post_params are both needed", "bad-config")
    name = name or host_name(str(settings["api"]).split("//")[-1].split("/")[0], "qexo")
    fields, notes = remote_api_host(
        settings, SETTINGS, name=name, description=f"{name} (imported from Qexo: {where})", where=where
    )
    if settings.get("delete_url"):
        if "url_path" not in fields:
            notes.append("delete_url left out: Qexo reads it from a JSON answer, and this one is text")
        else:
            fields["delete_path"] = dotted_path(str(settings["delete_url"]))
    return [Imported(name, fields, notes)]
