"""HostSpec: the declarative description of a remote upload API, and its TOML form.

One schema, two syntaxes: a Python object (``HostSpec(name=..., endpoint=...)``) or a TOML file in a
``hosts.d`` folder. Values may use ``${ENV_VAR}`` (or ``${ENV_VAR:-default}``); they are expanded only
when a run uses the host, so a missing token never stops ``hosts list``.
"""

from __future__ import annotations

import dataclasses
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

METHODS = ("POST", "PUT", "PATCH", "GET")
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
        where = f"{self.source}: host '{self.name}'"
        if not self.name or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.name):
            raise ConfigError(f"{self.source}: host name {self.name!r} must be letters, digits, '.', '_' or '-'")
        if not self.endpoint:
            raise ConfigError(f"{where}: field 'endpoint' is required")
        if not ENV_REFERENCE.match(self.endpoint) and not re.match(r"https?://", self.endpoint):
            raise ConfigError(f"{where}: field 'endpoint' must be an http:// or https:// URL")
        self.method = self.method.upper()
        _check_choice(where, "method", self.method, METHODS)
        _check_choice(where, "body", self.body, BODIES)
        _check_choice(where, "response", self.response, RESPONSES)
        if self.response != "text" and not self.url_path:
            raise ConfigError(f"{where}: field 'url_path' is required when response = '{self.response}'")
        if self.delete_method is not None:
            self.delete_method = self.delete_method.upper()
            _check_choice(where, "delete_method", self.delete_method, ("GET", "POST", "DELETE"))
        for name in TABLE_FIELDS:
            setattr(self, name, {str(k): _scalar_text(where, f"{name}.{k}", v) for k, v in getattr(self, name).items()})
        for name in INT_FIELDS + FLOAT_FIELDS:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
                raise ConfigError(f"{where}: field '{name}' must be a positive number, not {value!r}")
        if isinstance(self.regex, str):  # `--set regex=PATTERN` gives one pattern
            self.regex = [self.regex]
        self.patterns = compile_patterns(self.regex, where=where)
        if self.process:
            from .processing import check_options

            check_options(self.process, f"{where} [process]")
        self._compiled = {
            name: _compile(where, name, getattr(self, name), self.patterns)
            for name in JMESPATH_FIELDS
            if getattr(self, name)
        }
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
        if not self.per_file:
            return RequestParts(self.endpoint, dict(self.query), dict(self.headers), dict(self.form))
        return RequestParts(
            fill_placeholders(self.endpoint, context, quote_values=True),
            {k: fill_placeholders(v, context) for k, v in self.query.items()},
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


def _check_choice(where: str, name: str, value: str, choices: Iterable[str]) -> None:
    if value not in choices:
        raise ConfigError(f"{where}: field '{name}' must be one of {', '.join(choices)}, not {value!r}")


def _scalar_text(where: str, name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ConfigError(f"{where}: field '{name}' must be a string, not {type(value).__name__}")


def _compile(where: str, name: str, expression: str, patterns: list[re.Pattern[str]]) -> Any:
    try:
        compiled = jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as exc:
        reason = str(exc).splitlines()[0]
        raise ConfigError(
            f"{where}: field '{name}' is not a valid JMESPath expression {expression!r}: {reason}"
        ) from None
    check_calls(compiled.parsed, where=where, field=name, patterns=patterns)
    return compiled


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
    known = set(known) | set(FILE_ONLY_FIELDS)
    for key in data:
        if key not in known:
            raise ConfigError(f"{source}: unknown field '{key}' (known fields: {', '.join(sorted(known))})")


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
