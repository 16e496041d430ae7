"""HostSpec: the declarative description of a remote upload API, and its TOML form.

One schema, two syntaxes: a Python object (``HostSpec(name=..., endpoint=...)``) or a TOML file in a
``hosts.d`` folder. Values may use ``${ENV_VAR}`` (or ``${ENV_VAR:-default}``); they are expanded only
when a run uses the host, so a missing token never stops ``hosts list``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jmespath
import jmespath.exceptions

from .errors import ConfigError
from .jmespath_functions import check_calls, compile_patterns
from .redaction import ENV_REFERENCE, is_secret_name, mask_table, mask_url, url_secrets
from .templates import TemplateContext, fill_placeholders, has_placeholders

# A GET request carries no body, so it cannot carry the file.
METHODS = ("POST", "PUT", "PATCH")
BODIES = ("multipart", "binary")
RESPONSES = ("json", "text", "xml")
TABLE_FIELDS = ("query", "headers", "form", "delete_form")
JMESPATH_FIELDS = ("url_path", "thumbnail_path", "delete_path", "error_path", "success_path")
INT_FIELDS = ("max_bytes", "concurrency", "max_answer_size")
FLOAT_FIELDS = ("rate_limit", "timeout")
LIST_FIELDS = ("accept", "secrets", "mirrors")
# Fields of a TOML file that are not HostSpec fields.
FILE_ONLY_FIELDS = ("extends",)


@dataclass
class HostSpec:
    """A host described by its request shape and JMESPath expressions over its answer.

    See the README's "hosts.d schema" for what each field means.
    """

    name: str
    endpoint: str = ""
    description: str = ""
    method: str = "POST"
    query: dict[str, str] = field(default_factory=dict)
    file_field: str = "file"
    headers: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] = field(default_factory=dict)
    body: str = "multipart"
    response: str = "json"
    url_path: str | None = None
    url_prefix: str = ""
    thumbnail_path: str | None = None
    delete_path: str | None = None
    error_path: str | None = None
    success_path: str | None = None
    delete_method: str | None = None
    delete_endpoint: str | None = None
    # Form fields the delete request sends as its body (0x0.st's token, catbox's reqtype...).
    delete_form: dict[str, str] = field(default_factory=dict)
    max_bytes: int | None = None
    # The largest answer read from the host, in bytes (default: picbeam.answers.MAX_ANSWER_SIZE, 10 MB).
    max_answer_size: int | None = None
    concurrency: int | None = None
    rate_limit: float | None = None
    timeout: float | None = None
    accept: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    regex: list[str] = field(default_factory=list)
    # Processing options for uploads to this host (a [process] table; see picbeam.processing).
    process: dict[str, Any] = field(default_factory=dict)
    # Hosts that every upload to this one also goes to (see picbeam.mirrors).
    mirrors: list[str] = field(default_factory=list)
    source: str = field(default="python", compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.name):
            raise ConfigError(f"{self.source}: host name {self.name!r} must be letters, digits, '.', '_' or '-'")
        where = f"{self.source}: host '{self.name}'"
        check_types(self, where)
        check_headers(where, self.headers)
        if not self.endpoint:
            raise ConfigError(f"{where}: field 'endpoint' is required")
        if not ENV_REFERENCE.match(self.endpoint) and not re.match(r"https?://", self.endpoint):
            raise ConfigError(f"{where}: field 'endpoint' must be an http:// or https:// URL")
        check_url(where, "endpoint", self.endpoint)
        if self.delete_endpoint and re.match(r"https?://", self.delete_endpoint):
            check_url(where, "delete_endpoint", self.delete_endpoint)
        self.method = self.method.upper()
        _check_choice(where, "method", self.method, METHODS)
        _check_choice(where, "body", self.body, BODIES)
        _check_choice(where, "response", self.response, RESPONSES)
        if self.response != "text" and not self.url_path:
            raise ConfigError(f"{where}: field 'url_path' is required when response = '{self.response}'")
        if self.delete_method is not None:
            self.delete_method = self.delete_method.upper()
            _check_choice(where, "delete_method", self.delete_method, ("GET", "POST", "DELETE"))
        for name in INT_FIELDS + FLOAT_FIELDS:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
                raise ConfigError(f"{where}: field '{name}' must be a positive number, not {value!r}")
        self.patterns = compile_patterns(self.regex, where=where)
        if self.process:
            from .processing import check_options

            check_options(self.process, f"{where} [process]")
        self._compiled = {
            name: _compile(where, name, getattr(self, name), self.patterns)
            for name in JMESPATH_FIELDS
            if getattr(self, name)
        }
        # Keys the endpoint's own query string sets: they replace the same keys of the query table, so a
        # request never carries a key twice (PHP reads the last value, Flask the first).
        self._endpoint_keys = query_keys(self.endpoint)
        # Whether the request carries per-file placeholders such as {filename}; most hosts do not.
        self.per_file = any(has_placeholders(value) for value in self._request_values())

    # -- the answer ---------------------------------------------------------------------------------
    def expression(self, name: str) -> Any:
        """The compiled JMESPath expression of one of the ``*_path`` fields, or None."""
        return self._compiled.get(name)

    # -- the request --------------------------------------------------------------------------------
    def _request_values(self) -> list[str]:
        return [self.endpoint, *(v for table in TABLE_FIELDS for v in getattr(self, table).values())]

    def request_for(self, context: TemplateContext) -> RequestParts:
        """Endpoint, query, headers and form for one file: ``{filename}``-style placeholders filled in."""
        query = {k: v for k, v in self.query.items() if k not in self._endpoint_keys}
        if not self.per_file:
            return RequestParts(self.endpoint, query, dict(self.headers), dict(self.form))
        return RequestParts(
            fill_placeholders(self.endpoint, context, quote_values=True),
            {k: fill_placeholders(v, context) for k, v in query.items()},
            {k: fill_placeholders(v, context) for k, v in self.headers.items()},
            {k: fill_placeholders(v, context) for k, v in self.form.items()},
        )

    # -- TOML and dict forms ------------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str, name: str | None = None) -> HostSpec:
        """Build a spec from a TOML table or a dict, naming ``source`` in every error."""
        data = dict(data)
        data.pop("extends", None)
        check_fields(data, source)
        data["name"] = name or data.get("name") or ""
        try:
            return cls(**data, source=source)
        except TypeError as exc:  # a wrong type for a table field, e.g. headers = "x"
            raise ConfigError(f"{source}: {exc}") from None

    def to_mapping(self) -> dict[str, Any]:
        """The fields that differ from their defaults, as TOML would hold them."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "source":
                continue
            value = getattr(self, f.name)
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if value != default or f.name in ("name", "endpoint"):
                out[f.name] = value
        return out

    def derive(self, changes: Mapping[str, Any], *, source: str, name: str | None = None) -> HostSpec:
        """A new spec from this one with ``changes`` applied (tables merge; an empty value removes a key)."""
        if changes.get("response") == "text" and self.response != "text":
            # Expressions written for a JSON or XML answer read nothing from text: success_path would fail
            # every file after the host stored it. Say so before anything is sent.
            inherited = [f for f in JMESPATH_FIELDS if getattr(self, f) and f not in changes]
            if inherited:
                clear = " ".join(f"--set {f}=" for f in inherited) if source == "--set" else 'set them to ""'
                raise ConfigError(
                    f"{source}: host '{name or self.name}': response = \"text\" does not go with "
                    f"{', '.join(inherited)} inherited from '{self.name}' (they read a {self.response.upper()} "
                    f"answer); give them for a text answer or clear them: {clear}"
                )
        return HostSpec.from_mapping(merge_fields(self.to_mapping(), changes), source=source, name=name or self.name)

    def expanded(self, environ: Mapping[str, str] | None = None) -> HostSpec:
        """This spec with every ``${VAR}`` replaced from the environment, for a run that uses it."""
        env = os.environ if environ is None else environ
        changes: dict[str, Any] = {}
        for name in ("endpoint", "url_prefix", "delete_endpoint"):
            value = getattr(self, name)
            if value:
                changes[name] = expand(value, env, host=self.name, field=name)
        for table in TABLE_FIELDS:
            changes[table] = {
                k: expand(v, env, host=self.name, field=f"{table}.{k}") for k, v in getattr(self, table).items()
            }
        return dataclasses.replace(self, **changes)

    def masked(self) -> dict[str, Any]:
        """The spec as a user may see it: literal secrets masked, ``${VAR}`` references as written."""
        out = self.to_mapping()
        for name in ("endpoint", "delete_endpoint"):
            if out.get(name):
                out[name] = mask_url(out[name], self.secrets)
        for table in TABLE_FIELDS:
            if table in out:
                out[table] = mask_table(out[table], self.secrets)
        return out

    def secret_values(self) -> list[str]:
        """The (expanded) values of secret fields, for redacting them from any output: secret headers,
        form fields and query values, and in the endpoint its password and its secret query values."""
        values = [
            value
            for table in TABLE_FIELDS
            for key, value in getattr(self, table).items()
            if is_secret_name(key, self.secrets) and value
        ]
        return values + url_secrets(self.endpoint, self.secrets)


def check_types(spec: HostSpec, where: str) -> None:
    """Every field of ``spec`` checked against its declared type, in place: one line naming the field, the
    type wanted and the value found. Scalars in tables become text; a single string is a list of one."""
    for f in dataclasses.fields(spec):
        if f.name in ("name", "source"):
            continue
        value = getattr(spec, f.name)
        kind = str(f.type)
        optional = kind.endswith(" | None")
        kind = kind.removesuffix(" | None")
        if value is None and optional:
            continue
        if kind == "str" and isinstance(value, str):
            continue
        if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            continue
        if kind == "float" and isinstance(value, int | float) and not isinstance(value, bool):
            continue
        if kind == "list[str]":
            items = [value] if isinstance(value, str) else value
            if isinstance(items, list | tuple) and all(isinstance(v, str) for v in items):
                setattr(spec, f.name, list(items))
                continue
        if kind == "dict[str, str]" and isinstance(value, Mapping):
            setattr(spec, f.name, {str(k): _scalar_text(where, f"{f.name}.{k}", v) for k, v in value.items()})
            continue
        if kind == "dict[str, Any]" and isinstance(value, Mapping):
            continue
        wanted = TYPE_NAMES[kind].format(field=f.name)
        # A table given as text ("Authorization: Bearer ...") may hold a token: its type is shown, not its text.
        found = _shown(value, hide=f.name in TABLE_FIELDS)
        raise ConfigError(f"{where}: field '{f.name}' must be {wanted}, not {found}")


TYPE_NAMES = {
    "str": "a string",
    "int": "a whole number",
    "float": "a number",
    "list[str]": "a list of strings",
    "dict[str, str]": 'a table of strings ({field} = {{ Name = "value" }})',
    "dict[str, Any]": "a table",
}


def _shown(value: Any, *, hide: bool = False) -> str:
    """A wrong value as a user wrote it, with its type: ``5 (integer)``, ``"a=b" (string)``; with ``hide``, the
    type alone (``a string of 16 characters``), for what may be a secret."""
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "table"}
    kind = next((name for cls, name in kinds.items() if type(value) is cls), type(value).__name__)
    if value is None:
        return "nothing"
    if hide:
        return f"a string of {len(value)} characters" if isinstance(value, str) else f"a {kind}"
    text = json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, str | bool) else repr(value)
    return f"{text[:60]}{'...' if len(text) > 60 else ''} ({kind})"


# RFC 7230's token: what a header name may be made of.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def check_headers(where: str, headers: Mapping[str, str]) -> None:
    """Header names are RFC 7230 tokens and values hold no line breaks: a pasted ``{"Authorization"`` or a
    CRLF would otherwise be sent as written, or split the request."""
    for name, value in headers.items():
        if not HEADER_NAME.fullmatch(name):
            raise ConfigError(
                f"{where}: {json.dumps(name, ensure_ascii=False)} is not a valid header name (letters, digits "
                "and !#$%&'*+-.^_`|~ only; give headers as 'Name: value' or a JSON object)"
            )
        if any(c in value for c in "\r\n\0"):
            raise ConfigError(f"{where}: the value of header '{name}' holds a line break or NUL")


def check_url(where: str, name: str, url: str) -> None:
    """A malformed URL (a port out of range, a broken IPv6 address, no host) is a configuration error found
    when the host loads, not a traceback when it is used. ``${VAR}`` references are checked once expanded."""
    if ENV_REFERENCE.search(url):
        return
    from urllib.parse import urlsplit

    from .redaction import _userinfo

    user, password = _userinfo(url)
    if password:  # a password with an unencoded '/' must not read as a port: check the URL without it
        url = url.replace(f"{user}:{password}@", "", 1)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is what raises for 99999 or "x"
    except ValueError as exc:
        raise ConfigError(f"{where}: field '{name}' is not a valid URL: {_url_problem(exc)}") from None
    if not parts.hostname:
        raise ConfigError(f"{where}: field '{name}' is not a valid URL: it names no host")


def _url_problem(exc: ValueError) -> str:
    text = str(exc)
    if "Port out of range" in text:
        return "the port is out of range 0-65535"
    if "Port could not be cast" in text:
        return "the port is not a number"
    if "IPv6" in text:
        return "the IPv6 address in brackets is malformed"
    return text


def query_keys(url: str) -> set[str]:
    """The keys of a URL's own query string."""
    from urllib.parse import parse_qsl, urlsplit

    try:
        return {key for key, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
    except ValueError:
        return set()


def _check_choice(where: str, name: str, value: str, choices: Iterable[str]) -> None:
    if value not in choices:
        raise ConfigError(f"{where}: field '{name}' must be one of {', '.join(choices)}, not {value!r}")


def _scalar_text(where: str, name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ConfigError(f"{where}: field {name!r} must be a string, not {_shown(value, hide=is_secret_name(name))}")


def _compile(where: str, name: str, expression: str, patterns: list[re.Pattern[str]]) -> Any:
    try:
        compiled = jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as exc:
        reason = jmespath_problem(exc)
        raise ConfigError(
            f"{where}: field '{name}' is not a valid JMESPath expression {expression!r}: {reason}"
        ) from None
    check_calls(compiled.parsed, where=where, field=name, patterns=patterns)
    return compiled


def jmespath_problem(exc: Exception) -> str:
    """What is wrong with an expression, as a whole sentence (jmespath's own message spans three lines)."""
    errors = jmespath.exceptions
    if isinstance(exc, errors.IncompleteExpressionError):
        return "it ends before the expression is complete"
    if isinstance(exc, errors.ParseError):
        return f"unexpected {exc.token_value!r} at column {exc.lex_position + 1}"
    if isinstance(exc, errors.LexerError):
        return f"{exc.message} at column {exc.lexer_position + 1}"
    return str(exc).splitlines()[0].rstrip(":")


@dataclass
class RequestParts:
    """What one upload request is sent with, placeholders filled in."""

    endpoint: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]


SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(HostSpec) if f.name != "source")


def check_fields(data: Mapping[str, Any], source: str, known: Iterable[str] = SPEC_FIELDS) -> None:
    """Refuse unknown fields, naming the file and the field (typos must not be silently ignored)."""
    import difflib

    known = set(known) | set(FILE_ONLY_FIELDS)
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known fields: {', '.join(sorted(known))}"
            raise ConfigError(f"{source}: unknown field {str(key)!r} ({hint})")  # repr: a key may hold a newline


def merge_fields(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` on top: tables merge key by key, and an empty value removes a key."""
    merged = dict(base)
    for key, value in changes.items():
        if key == "extends":
            continue
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            table = dict(merged[key])
            for k, v in value.items():
                if v == "":
                    table.pop(k, None)
                else:
                    table[k] = v
            merged[key] = table
        else:
            merged[key] = value
    return merged


def expand(value: str, environ: Mapping[str, str], *, host: str, field: str) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}``; ``$${`` stands for a literal ``${``."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ and environ[name] != "":
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(
            f"host '{host}': environment variable {name} is not set (used in {field}); "
            f"export {name}=... or override it with --set {field}=..."
        )

    parts = value.split("$${")
    return "${".join(ENV_REFERENCE.sub(replace, part) for part in parts)


def expand_options(
    options: Mapping[str, Any], *, host: str, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``options`` (a code host's hosts.d fields) with every ``${VAR}`` / ``${VAR:-default}`` in their text
    replaced from the environment, in tables and lists too. A variable that is not set (and has no
    default) raises the same :class:`~picbeam.ConfigError` as a HostSpec's. Call it in ``prepared()``."""
    env = os.environ if environ is None else environ

    def one(value: Any, field: str) -> Any:
        if isinstance(value, str):
            return expand(value, env, host=host, field=field)
        if isinstance(value, Mapping):
            return {k: one(v, f"{field}.{k}") for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [one(v, field) for v in value]
        return value

    return {key: one(value, key) for key, value in options.items()}


def parse_assignments(assignments: Iterable[str]) -> dict[str, Any]:
    """``--set FIELD=VALUE`` options as nested changes: ``headers.Authorization=x`` sets a table entry."""
    changes: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(
                f"--set {assignment!r}: expected FIELD=VALUE (e.g. endpoint=https://..., headers.Authorization=...)"
            )
        table, dot, entry = key.partition(".")
        if dot:
            if table not in TABLE_FIELDS:
                raise ConfigError(f"--set {key}: only {', '.join(TABLE_FIELDS)} take FIELD.KEY")
            changes.setdefault(table, {})[entry] = value
        elif key in INT_FIELDS:
            changes[key] = _number(key, value, int)
        elif key in FLOAT_FIELDS:
            changes[key] = _number(key, value, float)
        elif key in LIST_FIELDS:
            changes[key] = [v.strip() for v in value.split(",") if v.strip()]
        else:
            changes[key] = value
    return changes


def _number(key: str, value: str, kind: type) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"--set {key}: expected a number, not {value!r}") from None


def load_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file; a syntax error names the file and the line."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def dump_toml(data: Mapping[str, Any]) -> str:
    """A mapping (scalars, lists, tables) as TOML; None values are left out (TOML has no null)."""
    import tomlkit

    def without_none(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: without_none(v) for k, v in value.items() if v is not None}
        if isinstance(value, tuple):
            return [without_none(v) for v in value]
        return value

    return tomlkit.dumps(without_none(data))
