"""What every importer shares: the result type, refusals, credentials, names and JSON paths."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from ..errors import ConfigError
from ..redaction import is_secret_name
from ..templates import escape_braces


@dataclass
class Imported:
    """One host read from another tool's configuration: hosts.d fields and what the user must know."""

    name: str
    fields: dict[str, Any]
    notes: list[str] = field(default_factory=list)


class Section:
    """One configuration being imported into a picbeam host: its settings, the host's name, where it came
    from, and the notes for the user. ``tool`` names the tool in descriptions."""

    tool = ""

    def __init__(self, config: Mapping[str, Any], name: str, where: str) -> None:
        self.config, self.name, self.where = config, name, where
        self.notes: list[str] = []

    def text(self, key: str, default: str = "") -> str:
        value = self.config.get(key)
        return default if value in (None, "") else str(value).strip()

    def secret(self, key: str) -> str:
        """A ``${VAR}`` reference for a credential; the note says what to export (never the value)."""
        variable = env_name(self.name, key)
        had = "the value of" if self.text(key) else "(empty there)"
        self.notes.append(f"{key} is a credential: export {variable}=<{had} {key} in {self.where}>")
        return f"${{{variable}}}"

    def done(self, fields: dict[str, Any], label: str) -> Imported:
        fields = {"description": f"{label} (imported from {self.tool}: {self.where})", **fields}
        return Imported(self.name, {k: v for k, v in fields.items() if v not in ("", None, {})}, self.notes)


class ImportRefused(ConfigError):
    """A configuration picbeam cannot turn into a host; ``reason`` groups refusals (e.g. "url-shortener")."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


# -- names -------------------------------------------------------------------------------------------
def host_name(*candidates: str | None) -> str:
    """A valid host name from the first usable candidate (a tool's name for the host, a file name...)."""
    for candidate in candidates:
        if candidate:
            name = re.sub(r"[^A-Za-z0-9_.-]+", "-", candidate.strip()).strip("-.")
            if name:
                return name.lower()
    return "imported"


def env_name(*parts: str) -> str:
    """An environment variable name: ``sm.ms`` + ``Authorization`` -> ``SM_MS_AUTHORIZATION``."""
    words = re.sub(r"[^A-Za-z0-9]+", "_", "_".join(parts)).strip("_").upper()
    return words if re.match(r"[A-Z_]", words) else f"H_{words}"


# -- credentials -------------------------------------------------------------------------------------
# Text the community files put where a credential belongs: "Your API Token goes here", "<API KEY HERE>",
# "[insert user key here]", "YOUR_API_KEY", "put_password_here"...
_PLACEHOLDER_WORDS = re.compile(r"(?<![a-z])(your|here|insert|goes|remove this)(?![a-z])|^\s*your", re.IGNORECASE)
_BRACKETED = re.compile(r"^\s*(<[^<>]*>|\[[^\[\]]*\])\s*$")
_AUTH_SCHEME = re.compile(r"^(Bearer|Token|Basic|Client-ID|Bot|Key|Api-Key)(\s+|$)(.*)$", re.IGNORECASE | re.DOTALL)
ENV_LIKE = re.compile(r"^\s*<([A-Z][A-Z0-9_]*)>\s*$")


def is_placeholder(value: str) -> bool:
    """True for text that may stand where the user's own value belongs (loose: for secret fields)."""
    return bool(_BRACKETED.match(value) or _PLACEHOLDER_WORDS.search(value))


# Text that is a placeholder wherever it appears: "<API KEY HERE>", "Your API Token goes here",
# "[insert user key here]", "YOUR_API_KEY", "put_password_here" -- not "Your Photos", "[blog]", "sent from here".
_RECOGNISABLE = re.compile(
    r"^\s*<[^<>]*>\s*$"
    r"|\b(goes|go|put|insert|paste|enter|add)\b[\w\s-]*\bhere\b"
    r"|^\s*\[\s*(insert|your|put|enter)\b.*\]\s*$"
    r"|^\s*your[\w\s-]*(key|token|secret|password|passwd|hash|id)\s*$"
    r"|^(put|insert|enter|paste)_\w*_here$",
    re.IGNORECASE,
)


def looks_like_placeholder(value: str) -> bool:
    """True for text that is recognisably a placeholder, whatever field holds it."""
    return bool(_RECOGNISABLE.search(value))


def credential(value: str, *, table: str, key: str, host: str, notes: list[str], secrets: tuple[str, ...] = ()) -> str:
    """A header/form/query value as the host file should hold it: placeholders become ``${VAR}``.

    A value of a secret field that may be a placeholder (or is empty: the file's author left it for the
    user) is replaced; in any other field only a recognisable placeholder is (an album called "Your
    Photos" is sent as written).
    The auth scheme of a header such as ``Bearer <token>`` stays written."""
    secret = is_secret_name(key, secrets)
    scheme = _AUTH_SCHEME.match(value) if secret else None
    prefix, rest = (f"{scheme.group(1)} ", scheme.group(3)) if scheme else ("", value)
    loose = secret and (is_placeholder(value) or is_placeholder(rest) or not rest.strip())
    if not (loose or looks_like_placeholder(value)):
        return escape_env(value)
    env_like = ENV_LIKE.match(rest)
    variable = env_like.group(1) if env_like else env_name(host, key)
    shown = f" ({value.strip()!r})" if value.strip() else ""
    notes.append(f"{table}.{key} was a placeholder{shown}: export {variable}=<your value>")
    return f"{prefix}${{{variable}}}"


def credentials(table: str, values: dict[str, str], *, host: str, notes: list[str]) -> dict[str, str]:
    """:func:`credential` for every value of a table."""
    return {key: credential(value, table=table, key=key, host=host, notes=notes) for key, value in values.items()}


def escape_env(text: str) -> str:
    """Literal text for a hosts.d value: ``${`` would otherwise read an environment variable."""
    return text.replace("${", "$${")


# -- tables and paths --------------------------------------------------------------------------------
def json_object(value: Any, *, what: str, where: str) -> dict[str, str]:
    """A table the tool keeps as JSON text or as an object (customHeader, custom_body...)."""
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ImportRefused(f"{where}: {what} is not valid JSON ({exc.msg})", "bad-config") from None
    if not isinstance(value, dict):
        raise ImportRefused(f"{where}: {what} must be a JSON object of names and values", "bad-config")
    return {str(k): text_value(v) for k, v in value.items()}


def text_value(value: Any) -> str:
    """A form or header value as it goes on the wire (JSON numbers and booleans as JSON writes them)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def split_query(url: str) -> tuple[str, dict[str, str]]:
    """The endpoint without its query, and the query as a table (a bare ``?flag`` becomes ``flag = ""``)."""
    parts = urlsplit(url)
    if not parts.query:
        return url, {}
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit(parts._replace(query="")), query


IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def jmespath_key(key: str) -> str:
    """An object key in JMESPath: bare when it is an identifier, quoted otherwise."""
    return key if IDENTIFIER.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def jmespath_from_steps(steps: list[str | int]) -> str:
    """``["data", 0, "url"]`` -> ``data[0].url``."""
    out = ""
    for step in steps:
        if isinstance(step, int):
            out += f"[{step}]"
        else:
            out += ("." if out else "") + jmespath_key(step)
    return out or "@"


def dotted_path(path: str) -> str:
    """A dot-separated path as PicGo and Qexo read it -> JMESPath. A number step indexes a list there and
    is a key of an object otherwise, so ``data.0.url`` becomes ``data."0".url || data[0].url``."""
    parts = path.strip().split(".")
    indexed: list[str | int] = [int(p) if re.fullmatch(r"-?\d+", p) else p for p in parts]
    if all(isinstance(step, str) for step in indexed):
        return jmespath_from_steps(indexed)
    return f"{jmespath_from_steps(list(parts))} || {jmespath_from_steps(indexed)}"


def literal(text: str) -> str:
    """A JMESPath string literal: a raw string, or JSON when the text holds a backslash (JMESPath's raw
    strings keep backslashes as written, so one before the closing quote would escape it)."""
    if "\\" in text:
        return "`" + json.dumps(text, ensure_ascii=False).replace("`", "\\`") + "`"
    return "'" + text.replace("'", "\\'") + "'"


def _literal_table(table: Mapping[str, str]) -> dict[str, str]:
    return {key: escape_braces(value) for key, value in table.items()}


def multipart_headers(headers: dict[str, str], notes: list[str]) -> dict[str, str]:
    """Headers for a multipart upload: a fixed Content-Type would lose the multipart boundary."""
    kept = {}
    for key, value in headers.items():
        if key.lower() == "content-type":
            notes.append(f"headers.{key} ({value!r}) left out: picbeam writes the multipart Content-Type itself")
        else:
            kept[key] = value
    return kept


def remote_api_host(
    settings: Mapping[str, Any], keys: Mapping[str, str], *, name: str, description: str, where: str
) -> tuple[dict[str, Any], list[str]]:
    """The fields of a PicGo/Qexo-style "remote API" host: a multipart POST of the file with JSON-text
    headers and body, and a dot-separated path to the URL (empty: the whole answer is the URL).

    ``keys`` names the tool's setting for each part: url, file_field, headers, body, prefix, json_path."""
    notes: list[str] = []

    def setting(part: str) -> Any:
        return settings.get(keys[part])

    endpoint, query = split_query(str(setting("url")))
    # The tools send these as written: braces are escaped, so "{year}" is not filled in by picbeam.
    query = _literal_table(query)
    header_table = _literal_table(json_object(setting("headers"), what=keys["headers"], where=where))
    body_table = _literal_table(json_object(setting("body"), what=keys["body"], where=where))
    fields: dict[str, Any] = {
        "description": description,
        "endpoint": escape_env(escape_braces(endpoint)),
        "file_field": str(setting("file_field")),
        "query": credentials("query", query, host=name, notes=notes),
        "headers": multipart_headers(credentials("headers", header_table, host=name, notes=notes), notes),
        "form": credentials("form", body_table, host=name, notes=notes),
        "url_prefix": escape_env(escape_braces(str(setting("prefix") or ""))),
    }
    json_path = str(setting("json_path") or "").strip()
    if json_path:
        fields["url_path"] = dotted_path(json_path)
    else:
        fields["response"] = "text"
    return {k: v for k, v in fields.items() if v not in ("", {}, None)}, notes
