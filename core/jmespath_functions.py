"""JMESPath over a host's answer, with the few functions picbeam adds to JMESPath's own.

An answer is more than its body: ShareX-style uploaders build a URL from several answer fields, from a
regular expression over the body, from a response header or from the address a redirect ended at.
These functions give every ``*_path`` field of a host the same reach:

``concat(a, b, ...)``
    the parts joined as text (numbers written plainly); null when a part is missing, so a URL
    built from a missing piece is a failure instead of a broken link.
``regex(n)``, ``regex(n, group)``
    a group (number or name; the whole match when omitted) of the n-th pattern (1-based) of the
    host's ``regex`` list, searched in the answer's text; null when it does not match.
``header(name)``
    a header of the answer (any case); null when absent.
``response_url()``
    the address the answer came from, after redirects.

Calls are checked when the host loads: an unknown function, a wrong number of arguments or a
``regex()`` that names a pattern or group the host does not have is an error naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jmespath
import jmespath.functions
from jmespath.functions import signature

from .errors import ConfigError

# name -> (fewest, most) arguments; None = any number.
CUSTOM_FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "concat": (1, None),
    "regex": (1, 2),
    "header": (1, 1),
    "response_url": (0, 0),
}
BUILTIN_FUNCTIONS = frozenset(jmespath.functions.Functions.FUNCTION_TABLE)


class AnswerFunctions(jmespath.functions.Functions):
    """The custom functions, bound to one answer."""

    def __init__(
        self,
        *,
        text: str = "",
        headers: Mapping[str, str] | None = None,
        url: str | None = None,
        patterns: Sequence[re.Pattern[str]] = (),
    ) -> None:
        super().__init__()
        self._text = text
        self._headers = headers or {}
        self._url = url
        self._patterns = patterns

    @signature({"types": [], "variadic": True})
    def _func_concat(self, *parts: Any) -> str | None:
        texts = [as_text(part) for part in parts]
        return None if any(text is None for text in texts) else "".join(texts)  # type: ignore[arg-type]

    @signature({"types": [], "variadic": True})
    def _func_regex(self, *args: Any) -> str | None:
        index, group = args[0], (args[1] if len(args) > 1 else 0)
        if not isinstance(index, int) or isinstance(index, bool) or not 1 <= index <= len(self._patterns):
            return None
        match = self._patterns[index - 1].search(self._text)
        if match is None:
            return None
        try:
            return match.group(int(group) if isinstance(group, int | float) else group)
        except (IndexError, ValueError):
            return None

    @signature({"types": ["string"]})
    def _func_header(self, name: str) -> str | None:
        value = self._headers.get(name)
        if value is None:  # a plain dict: compare names without case, as HTTP does
            value = next((v for k, v in self._headers.items() if k.lower() == name.lower()), None)
        return value

    @signature()
    def _func_response_url(self) -> str | None:
        return self._url


def as_text(value: Any) -> str | None:
    """A JSON scalar as it reads in a URL (``3`` not ``3.0``); None for null, objects and arrays."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def options(functions: AnswerFunctions) -> jmespath.Options:
    return jmespath.Options(custom_functions=functions)


def check_calls(parsed: Mapping[str, Any], *, where: str, field: str, patterns: Sequence[re.Pattern[str]]) -> None:
    """Refuse calls that cannot work, when the host loads rather than on every answer."""
    for node in _nodes(parsed):
        if node.get("type") != "function_expression":
            continue
        name, args = node["value"], node.get("children", [])
        if name in BUILTIN_FUNCTIONS:
            continue
        if name not in CUSTOM_FUNCTIONS:
            known = ", ".join(sorted(CUSTOM_FUNCTIONS))
            raise ConfigError(f"{where}: field '{field}' calls unknown function {name}() (picbeam adds: {known})")
        fewest, most = CUSTOM_FUNCTIONS[name]
        if len(args) < fewest or (most is not None and len(args) > most):
            raise ConfigError(f"{where}: field '{field}': {name}() takes {_arity(fewest, most)}, not {len(args)}")
        if name == "regex":
            _check_regex_call(args, where=where, field=field, patterns=patterns)


def _check_regex_call(
    args: Sequence[Mapping[str, Any]], *, where: str, field: str, patterns: Sequence[re.Pattern[str]]
) -> None:
    literal = [a.get("value") if a.get("type") == "literal" else None for a in args]
    index = literal[0]
    if not patterns:
        raise ConfigError(f"{where}: field '{field}' calls regex() but the host has no 'regex' patterns")
    if index is None:
        return  # computed at run time
    if not isinstance(index, int) or isinstance(index, bool) or not 1 <= index <= len(patterns):
        raise ConfigError(
            f"{where}: field '{field}': regex({index!r}, ...) names no pattern; 'regex' has {len(patterns)} (1-based)"
        )
    group = literal[1] if len(literal) > 1 else None
    pattern = patterns[index - 1]
    if isinstance(group, str) and group not in pattern.groupindex:
        raise ConfigError(f"{where}: field '{field}': pattern {index} of 'regex' has no group named {group!r}")
    if isinstance(group, int) and not 0 <= group <= pattern.groups:
        raise ConfigError(f"{where}: field '{field}': pattern {index} of 'regex' has only {pattern.groups} group(s)")


def _nodes(node: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield node
    for child in node.get("children", []):
        if isinstance(child, Mapping):
            yield from _nodes(child)


def _arity(fewest: int, most: int | None) -> str:
    if most is None:
        return f"at least {fewest} argument(s)"
    if fewest == most:
        return f"{fewest} argument(s)"
    return f"{fewest} to {most} arguments"


def compile_patterns(patterns: Sequence[Any], *, where: str) -> list[re.Pattern[str]]:
    """The ``regex`` field's patterns, compiled; an invalid one names its position."""
    compiled = []
    for number, pattern in enumerate(patterns, start=1):
        if not isinstance(pattern, str):
            raise ConfigError(f"{where}: field 'regex' must be a list of strings (pattern {number} is not)")
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise ConfigError(
                f"{where}: field 'regex' pattern {number} is not a valid regular expression: {exc}"
            ) from None
    return compiled
