"""uPic's custom hosts, from uPic's host export (or one host's settings).

uPic exports a JSON array; each entry is a host (``{"id", "name", "type", "data"}``), often itself JSON
text, whose ``data`` is JSON text again (encoded twice). A custom host posts the file as multipart field
``field`` to ``url`` with ``method``; ``headers`` and ``bodys`` are JSON text of ``[{"key", "value"}]``;
the URL is at ``resultPath`` (a JSON array of keys and indexes) in the JSON answer, joined to ``domain``
with a ``/`` and followed by ``suffix``. When a Content-Type header says application/json, uPic sends
the file base64-encoded in a JSON body instead, which picbeam does not do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .common import (
    Imported,
    ImportRefused,
    credentials,
    escape_env,
    host_name,
    jmespath_from_steps,
    literal,
    split_query,
    text_value,
)

SETTINGS = {"url", "field"}
# uPic's template variables that picbeam's request placeholders mean too.
VARIABLES = {"{filename}": "{filename}", "{.suffix}": "{ext}", "{year}": "{year}", "{month}": "{month}",
             "{day}": "{day}", "{hour}": "{hour}", "{minute}": "{minute}", "{second}": "{second}",
             "{since_second}": "{timestamp}", "{random}": "{random}"}  # fmt: skip


def matches(data: Any) -> bool:
    entries = _entries(data)
    return bool(entries) and all(isinstance(e, Mapping) and ("data" in e or set(e) >= SETTINGS) for e in entries)


def _entries(data: Any) -> list[Any]:
    items = data if isinstance(data, list) else [data]
    out = []
    for item in items:
        if isinstance(item, str):
            try:
                item = json.loads(item)
            except ValueError:
                return []
        out.append(item)
    return out


def convert(data: Any, *, where: str, name: str | None = None) -> list[Imported | ImportRefused]:
    """Every host of the export: an :class:`Imported` or the reason it was not imported."""
    entries = _entries(data)
    customs = [e for e in entries if "data" not in e or str(e.get("type", "custom")).lower() == "custom"]
    if name and len(customs) > 1:
        raise ImportRefused(f"{where}: holds {len(customs)} custom hosts; --name needs exactly one", "bad-config")
    results: list[Imported | ImportRefused] = []
    for entry in entries:
        label = str(entry.get("name") or "upic")
        if "data" in entry and str(entry.get("type", "custom")).lower() != "custom":
            results.append(
                ImportRefused(
                    f"{where}: {label!r} not imported: a uPic {entry.get('type')} host; only custom hosts import "
                    "(`picbeam hosts list` shows the presets)",
                    "not-remote-api",
                )
            )
            continue
        settings = entry.get("data", entry)
        if isinstance(settings, str):
            try:
                settings = json.loads(settings)
            except ValueError as exc:
                results.append(ImportRefused(f"{where}: {label!r}: its data is not JSON ({exc.msg})", "bad-config"))
                continue
        try:
            results.append(_host(settings, where=f"{where}: {label!r}", name=name or host_name(label, "upic")))
        except ImportRefused as refused:
            results.append(refused)
    return results


def _pairs(text: Any, what: str, where: str) -> dict[str, str]:
    if text in (None, ""):
        return {}
    try:
        items = json.loads(text) if isinstance(text, str) else text
    except ValueError as exc:
        raise ImportRefused(f"{where}: {what} is not valid JSON ({exc.msg})", "bad-config") from None
    if not isinstance(items, list):
        raise ImportRefused(f"{where}: {what} must be a JSON list of {{key, value}}", "bad-config")
    return {str(i["key"]): text_value(i.get("value")) for i in items if isinstance(i, Mapping) and i.get("key")}


def _variables(value: str, where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) in VARIABLES:
            return VARIABLES[match.group(0)]
        raise ImportRefused(
            f"{where}: not imported: it uses uPic's {match.group(0)}, which picbeam has no equivalent for",
            "unmappable",
        )

    return re.sub(r"\{[^{}\s]+\}", replace, value)


def _host(settings: Mapping[str, Any], *, where: str, name: str) -> Imported:
    notes: list[str] = []
    if not settings.get("url") or not settings.get("field"):
        raise ImportRefused(f"{where}: not imported: url and field are both needed", "bad-config")
    headers = {k: _variables(v, where) for k, v in _pairs(settings.get("headers"), "headers", where).items()}
    for key in [k for k in headers if k.lower() == "content-type"]:
        if "application/json" in headers[key].lower():
            raise ImportRefused(
                f"{where}: not imported: its Content-Type header makes uPic send the file base64-encoded in a "
                "JSON body; picbeam sends files as multipart or binary",
                "no-file",
            )
        notes.append(f"headers.{key} ({headers.pop(key)!r}) left out: uPic sends multipart, as picbeam does")
    steps = _result_path(settings.get("resultPath"), where)
    endpoint, query = split_query(_variables(str(settings["url"]), where))
    form = {k: _variables(v, where) for k, v in _pairs(settings.get("bodys"), "bodys", where).items()}
    fields: dict[str, Any] = {
        "description": f"{name} (imported from uPic: {where})",
        "endpoint": escape_env(endpoint),
        "method": str(settings.get("method") or "POST").upper(),
        "file_field": str(settings["field"]),
        "query": credentials("query", query, host=name, notes=notes),
        "headers": credentials("headers", headers, host=name, notes=notes),
        "form": credentials("form", form, host=name, notes=notes),
    }
    path = jmespath_from_steps(steps)
    domain, suffix = str(settings.get("domain") or ""), str(settings.get("suffix") or "")
    if re.search(r"\{[^{}]+\}", suffix):
        raise ImportRefused(f"{where}: not imported: its URL suffix {suffix!r} has template variables", "unmappable")
    if domain:
        # uPic joins with a '/' unless the path already starts with one.
        fields["url_prefix"] = escape_env(domain)
        path = f"(starts_with({path}, '/') && {path}) || concat('/', {path})"
    fields["url_path"] = f"concat({path}, {literal(suffix)})" if suffix else path
    save_key = str(settings.get("saveKeyPath") or "")
    if save_key and save_key not in ("{filename}{.suffix}", "uPic/{filename}{.suffix}"):
        notes.append(f"saveKeyPath {save_key!r}: uPic names the file from it; picbeam sends the file's own name")
    return Imported(name, {k: v for k, v in fields.items() if v not in ("", {}, None)}, notes)


def _result_path(value: Any, where: str) -> list[str | int]:
    text = value if isinstance(value, list) else str(value or "").replace("'", '"').replace("，", ",")  # noqa: RUF001
    try:
        steps = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        steps = None
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str | int) for s in steps):
        raise ImportRefused(
            f"{where}: not imported: resultPath {value!r} is not a JSON list of keys and indexes "
            '(e.g. ["data", "url"]); uPic takes the URL from it',
            "bad-config",
        )
    return steps
