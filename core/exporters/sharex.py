"""A host as a ShareX custom uploader (``.sxcu``, current syntax): the reverse of the ShareX importer."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import jmespath

from ..errors import ConfigError
from ..redaction import ENV_REFERENCE
from ..spec import HostSpec
from ..templates import NAMES as PLACEHOLDER_NAMES
from ..templates import PLACEHOLDER

EXPORT_VERSION = "16.1.0"


def export(spec: HostSpec, *, environ: Mapping[str, str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """A ShareX custom uploader (current syntax) sending the request ``spec`` sends; warnings for what
    ShareX cannot express. ``environ`` fills ``${VAR}`` references; without it they are written as
    ``<VAR>`` placeholders, which ``hosts import`` reads back as the same variables."""
    warnings: list[str] = []
    request = _Exporter(spec, environ, warnings)
    endpoint = request.value(spec.endpoint, "endpoint")
    out: dict[str, Any] = {
        "Version": EXPORT_VERSION,
        "Name": spec.name,
        "DestinationType": "ImageUploader" if spec.accept == ["image/*"] else "ImageUploader, FileUploader",
        "RequestMethod": spec.method,
        "RequestURL": endpoint,
    }
    for table, key in (("query", "Parameters"), ("headers", "Headers")):
        if getattr(spec, table):
            out[key] = {k: request.value(v, f"{table}.{k}") for k, v in getattr(spec, table).items()}
    if spec.body == "binary":
        out["Body"] = "Binary"
    else:
        out["Body"] = "MultipartFormData"
        if spec.form:
            out["Arguments"] = {k: request.value(v, f"form.{k}") for k, v in spec.form.items()}
        out["FileFormName"] = spec.file_field
    answer = _AnswerExporter(spec, warnings)
    url = answer.template(spec.url_path, "url_path") if spec.url_path else "{response}"
    out["URL"] = _escape_sharex(spec.url_prefix) + url if spec.url_prefix else url
    if out["URL"] == "{response}":
        out["URL"] = ""  # an empty URL means the whole answer, in every ShareX version
    for key, name in (
        ("ThumbnailURL", "thumbnail_path"),
        ("DeletionURL", "delete_path"),
        ("ErrorMessage", "error_path"),
    ):
        if getattr(spec, name):
            out[key] = answer.template(getattr(spec, name), name)
    if spec.success_path:
        warnings.append(f"success_path ({spec.success_path}) has no ShareX equivalent: ShareX takes any 2xx as success")
    dropped = [n for n in ("max_bytes", "concurrency", "rate_limit", "timeout", "delete_method") if getattr(spec, n)]
    if spec.accept and spec.accept != ["image/*"]:
        dropped.append("accept")
    if dropped:
        warnings.append(f"{', '.join(dropped)}: no ShareX equivalent, not exported")
    if request.defaults:
        warnings.append(f"{', '.join(request.defaults)}: written as their ${{VAR:-default}} defaults")
    if request.variables:
        warnings.append(
            f"ShareX cannot read environment variables: replace {', '.join(f'<{v}>' for v in request.variables)} "
            "in the file with your values (or export with --expand)"
        )
    return out, warnings


def _escape_sharex(text: str) -> str:
    return re.sub(r"([\\{}|])", r"\\\1", text)


class _Exporter:
    """Request values in ShareX syntax: ``{filename}`` stays a call, ``${VAR}`` is filled or marked."""

    def __init__(self, spec: HostSpec, environ: Mapping[str, str] | None, warnings: list[str]) -> None:
        self.spec, self.environ, self.warnings = spec, environ, warnings
        self.variables: list[str] = []
        self.defaults: list[str] = []

    def value(self, value: str, where: str) -> str:
        out = ""
        for part in re.split(r"(\$\$\{|\$\{[^}]*\}|\{\{|\}\}|\{[a-z0-9]+(?::\d+)?\})", value):
            if not part:
                continue
            reference = ENV_REFERENCE.fullmatch(part)
            if part in ("{{", "}}"):  # picbeam's escaped brace: a literal one for ShareX
                out += _escape_sharex(part[0])
            elif part == "$${":
                out += _escape_sharex("${")
            elif reference:
                out += _escape_sharex(self._variable(reference, where))
            elif part == "{filename}":
                out += "{filename}"
            elif (placeholder := PLACEHOLDER.fullmatch(part)) and placeholder.group(1) in PLACEHOLDER_NAMES:
                self.warnings.append(f"{where}: {part} has no ShareX equivalent; written as literal text")
                out += _escape_sharex(part)
            else:
                out += _escape_sharex(part)
        return out

    def _variable(self, reference: re.Match[str], where: str) -> str:
        name, default = reference.group(1), reference.group(2)
        if self.environ is None:
            if default is not None:  # a working value already: ShareX gets it as written
                if name not in self.defaults:
                    self.defaults.append(name)
                return default
            if name not in self.variables:
                self.variables.append(name)
            return f"<{name}>"
        if self.environ.get(name):
            return self.environ[name]
        if default is not None:
            return default
        raise ConfigError(f"host '{self.spec.name}': environment variable {name} is not set (used in {where})")


class _AnswerExporter:
    """JMESPath over the answer back into ShareX's ``{json:...}``, ``{regex:...}``... templates."""

    def __init__(self, spec: HostSpec, warnings: list[str]) -> None:
        self.spec, self.warnings = spec, warnings

    def template(self, expression: str, where: str) -> str:
        parsed = jmespath.compile(expression).parsed
        if parsed["type"] == "or_expression":
            self.warnings.append(f"{where} ({expression}): ShareX has no alternatives; exported the first one")
            parsed = parsed["children"][0]
        out = self._node(parsed)
        if out is None:
            raise ConfigError(f"host '{self.spec.name}': {where} ({expression}) cannot be written as a ShareX template")
        return out

    def _node(self, node: Mapping[str, Any]) -> str | None:
        kind = node["type"]
        if kind == "literal":
            return _escape_sharex(str(node["value"]))
        if kind == "current":
            return "{response}" if self.spec.response == "text" else None
        if kind == "function_expression":
            return self._function(node["value"], node["children"])
        steps = _steps(node)
        if steps is None:
            return None
        if self.spec.response == "xml":
            xpath = "/*" + "".join(f"[{s + 1}]" if isinstance(s, int) else f"/{s}" for s in steps)
            return "{xml:" + _escape_sharex(xpath) + "}"
        return "{json:" + _escape_sharex(_newtonsoft(steps)) + "}"

    def _function(self, name: str, args: list[Mapping[str, Any]]) -> str | None:
        values = [a.get("value") if a["type"] == "literal" else None for a in args]
        if name == "concat":
            parts = [self._node(a) for a in args]
            return None if None in parts else "".join(parts)  # type: ignore[arg-type]
        if name == "response_url" and not args:
            return "{responseurl}"
        if name == "header" and isinstance(values[0], str):
            return "{header:" + _escape_sharex(values[0]) + "}"
        if name == "regex" and isinstance(values[0], int) and 1 <= values[0] <= len(self.spec.regex):
            pattern = python_regex_to_dotnet(self.spec.regex[values[0] - 1])
            group = "" if len(values) < 2 or values[1] in (None, 0) else "|" + _escape_sharex(str(values[1]))
            return "{regex:" + _escape_sharex(pattern) + group + "}"
        return None


def _steps(node: Mapping[str, Any]) -> list[str | int] | None:
    kind = node["type"]
    if kind == "field":
        return [node["value"]]
    if kind == "index":
        return [node["value"]]
    if kind == "identity":
        return []
    if kind in ("subexpression", "index_expression"):
        steps = [_steps(child) for child in node["children"]]
        return None if None in steps else [s for part in steps for s in part]  # type: ignore[union-attr]
    return None


def _newtonsoft(steps: list[str | int]) -> str:
    out = ""
    for step in steps:
        if isinstance(step, int):
            out += f"[{step}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", step):
            out += ("." if out else "") + step
        else:
            out += "['" + step.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return out


def python_regex_to_dotnet(pattern: str) -> str:
    """Python's named groups and back-references in .NET syntax (ShareX's regex dialect)."""
    return re.sub(r"\(\?P=([A-Za-z_]\w*)\)", r"\\k<\1>", pattern.replace("(?P<", "(?<"))
