"""PicGo's web uploader (picgo-plugin-web-uploader) and PicList's custom uploader, from a PicGo/PicList
``config.json`` or one uploader's settings.

The uploader posts the file as multipart field ``paramName`` to ``url`` with ``customHeader`` (JSON
text) as headers and ``customBody`` (JSON text) as form fields, then walks ``jsonPath`` (dot-separated;
empty means the whole answer is the URL) and puts ``customPrefix`` (PicList) in front.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .common import Imported, ImportRefused, host_name, remote_api_host

KEYS = {"url", "paramName"}
UPLOADER = "web-uploader"


def matches(data: Any) -> bool:
    return isinstance(data, dict) and ("picBed" in data or set(data) >= KEYS)


def convert(data: Mapping[str, Any], *, where: str, name: str | None = None) -> list[Imported]:
    configs = _configs(data, where)
    if name and len(configs) > 1:
        raise ImportRefused(f"{where}: holds {len(configs)} web uploaders; --name needs exactly one", "bad-config")
    return [_host(config, where=where, name=name or host_name(label, "picgo")) for label, config in configs]


def _configs(data: Mapping[str, Any], where: str) -> list[tuple[str | None, Mapping[str, Any]]]:
    if set(data) >= KEYS:
        return [(data.get("_configName"), data)]
    found: list[tuple[str | None, Mapping[str, Any]]] = []
    # PicList keeps several named configurations per uploader; PicGo one, under picBed.
    listed = ((data.get("uploader") or {}).get(UPLOADER) or {}).get("configList") or []
    found.extend((c.get("_configName"), c) for c in listed if isinstance(c, Mapping) and c.get("url"))
    current = (data.get("picBed") or {}).get(UPLOADER)
    if isinstance(current, Mapping) and current.get("url") and not any(c is current or c == current for _, c in found):
        found.append((current.get("_configName"), current))
    if not found:
        uploaders = sorted(k for k in (data.get("picBed") or {}) if k not in ("uploader", "current", "proxy"))
        others = f" (it configures: {', '.join(uploaders)})" if uploaders else ""
        raise ImportRefused(
            f"{where}: not imported: no web uploader settings (picBed.{UPLOADER}) in this PicGo config{others}",
            "not-remote-api",
        )
    return found


# Where PicGo keeps each part of a remote-API host.
SETTINGS = {"url": "url", "file_field": "paramName", "headers": "customHeader", "body": "customBody",
            "prefix": "customPrefix", "json_path": "jsonPath"}  # fmt: skip


def _host(config: Mapping[str, Any], *, where: str, name: str) -> Imported:
    if not config.get("paramName"):
        raise ImportRefused(f"{where}: not imported: paramName (the file's form field) is empty", "bad-config")
    label = config.get("_configName") or name
    fields, notes = remote_api_host(
        config, SETTINGS, name=name, description=f"{label} (imported from PicGo: {where})", where=where
    )
    return Imported(name, fields, notes)
