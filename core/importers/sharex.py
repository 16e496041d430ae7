"""ShareX custom uploaders (``.sxcu``): import one as a host (the export is in :mod:`picbeam.exporters.sharex`).

A ShareX uploader is a request (method, URL, parameters, headers, a multipart or binary body) and
templates over the answer (``URL``, ``ThumbnailURL``, ``DeletionURL``, ``ErrorMessage``). Templates come
in two syntaxes: ``$json:path$`` up to ShareX 13.7.1 (with ``$regex:N|G$`` indexing ``RegexList``) and
``{json:path}`` after it (with the pattern inline, ``{regex:pattern|group}``). Both parse to the same
nodes; request templates become host fields (``$filename$`` -> ``{filename}``), answer templates become
JMESPath over the answer with picbeam's ``concat()``, ``regex()``, ``header()`` and ``response_url()``.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..redaction import ENV_REFERENCE
from ..spec import HostSpec
from ..templates import escape_braces
from .common import (
    ENV_LIKE,
    Imported,
    ImportRefused,
    credential,
    env_name,
    escape_env,
    host_name,
    is_placeholder,
    jmespath_from_steps,
    literal,
    multipart_headers,
    split_query,
    text_value,
)

FILE_DESTINATIONS = {"ImageUploader", "FileUploader", "TextUploader"}
# ShareX reads `$...$` templates up to this version and `{...}` after it.
LAST_OLD_SYNTAX = (13, 7, 1)
FILLER_WORDS = {"insert", "your", "here", "the", "goes", "put", "enter", "a", "an"}


# -- templates -----------------------------------------------------------------------------------------
@dataclass
class Call:
    """A template function call: ``$json:data.url$`` or ``{json:data.url}``."""

    name: str
    args: list[list[Node]]
    written: str
    old: bool = False


Node = str | Call


def parse_template(text: str, *, old: bool, where: str, notes: list[str]) -> list[Node]:
    """A template as literal text and calls, in either syntax."""
    return _parse_old(text, where, notes) if old else _parse_new(text, where, notes)


def _parse_old(text: str, where: str, notes: list[str]) -> list[Node]:
    nodes: list[Node] = []
    literal_text, syntax = "", ""
    in_syntax = escape = False
    for char in text:
        if escape:
            escape = False
        elif char == "\\":
            escape = True
            continue
        elif char == "$":
            if in_syntax and syntax:
                nodes.append(_old_call(syntax))
            elif not in_syntax and literal_text:
                nodes.append(literal_text)
            literal_text, syntax, in_syntax = "", "", not in_syntax
            continue
        if in_syntax:
            syntax += char
        else:
            literal_text += char
    if in_syntax:
        notes.append(f"{where}: ShareX ignores the unclosed '${syntax}' at its end; so does the host")
    if literal_text:
        nodes.append(literal_text)
    return nodes


def _old_call(syntax: str) -> Call:
    name, _, params = syntax.partition(":")
    name = name.lower()
    if name in ("random", "select"):
        args = params.split("|")
    elif name == "prompt":
        args = params.split("|", 1) if params else []
    else:
        args = [params] if params else []
    return Call(name, [[arg] for arg in args], f"${syntax}$", old=True)


def _parse_new(text: str, where: str, notes: list[str]) -> list[Node]:
    nodes, end = _new_syntax(text, 0, function=False)
    if not isinstance(nodes, list):  # pragma: no cover - the top level is never a function
        raise AssertionError
    if end < len(text):
        notes.append(f"{where}: ShareX stops reading at the '{text[end]}' in position {end + 1}; so does the host")
    return nodes


def _new_syntax(text: str, start: int, *, function: bool) -> tuple[list[Node] | Call, int]:
    """ShareX's parser: ``{`` opens a call, ``:`` and ``|`` separate its arguments, ``\\`` escapes."""
    nodes: list[Node] = []
    args: list[list[Node]] = []
    chars = ""
    escape = False
    i = start
    while i < len(text):
        char = text[i]
        if not escape:
            if char == "{":
                if chars:
                    nodes.append(chars)
                    chars = ""
                call, i = _new_syntax(text, i + 1, function=True)
                nodes.append(call)  # type: ignore[arg-type]
                i += 1
                continue
            if char == "}" or (not function and char == "|"):
                break
            if char == "\\":
                escape = True
                i += 1
                continue
            if function and char in ":|":
                arg, i = _new_syntax(text, i + 1, function=False)
                args.append(arg)  # type: ignore[arg-type]
                continue
        escape = False
        chars += char
        i += 1
    if chars:
        nodes.append(chars)
    if function:
        name = "".join(n for n in nodes if isinstance(n, str)).lower()
        return Call(name, args, text[max(start - 1, 0) : i + 1]), i
    return nodes, i


def uses(nodes: Sequence[Node], name: str) -> bool:
    """True when a template (or a call inside it) calls ``name``."""
    return any(isinstance(n, Call) and (n.name == name or any(uses(a, name) for a in n.args)) for n in nodes)


def plain(nodes: Sequence[Node]) -> str | None:
    """The text of a template without calls, or None."""
    return "".join(nodes) if all(isinstance(n, str) for n in nodes) else None  # type: ignore[arg-type]


# -- import --------------------------------------------------------------------------------------------
def matches(data: Any) -> bool:
    return isinstance(data, dict) and "RequestURL" in data


@dataclass
class _Context:
    where: str
    host: str
    old: bool
    regex_list: list[str]
    notes: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)

    def template(self, key: str, value: Any) -> list[Node]:
        return parse_template(text_value(value), old=self.old, where=f"{key}", notes=self.notes)


def convert(data: Mapping[str, Any], *, where: str, name: str | None = None) -> Imported:
    """One ShareX custom uploader as a host, or :class:`ImportRefused` saying why not."""
    host = name or host_name(data.get("Name"), re.sub(r"\.sxcu$", "", where, flags=re.IGNORECASE))
    ctx = _Context(where=where, host=host, old=_old_syntax(data), regex_list=_strings(data.get("RegexList")))
    request = {
        "RequestURL": ctx.template("RequestURL", data.get("RequestURL", "")),
        **{f"Parameters.{k}": ctx.template(f"Parameters.{k}", v) for k, v in _table(data, "Parameters").items()},
        **{f"Headers.{k}": ctx.template(f"Headers.{k}", v) for k, v in _table(data, "Headers").items()},
        **{f"Arguments.{k}": ctx.template(f"Arguments.{k}", v) for k, v in _table(data, "Arguments").items()},
    }
    if data.get("Data"):
        request["Data"] = ctx.template("Data", data["Data"])
    _check_sends_a_file(data, request, where)
    fields = _request_fields(data, request, ctx)
    fields.update(_answer_fields(data, ctx))
    if ctx.patterns:
        fields["regex"] = ctx.patterns
    needed = sorted({m.group(1) for m in ENV_REFERENCE.finditer(json.dumps(fields))})
    label = data.get("Name") or host
    fields = {
        "description": f"{label} (imported from ShareX: {where})" + (f"; needs {', '.join(needed)}" if needed else ""),
        **fields,
    }
    try:
        HostSpec.from_mapping(fields, source=where, name=host)
    except ConfigError as exc:
        raise ImportRefused(f"{exc}", "unmappable") from None
    return Imported(host, fields, list(dict.fromkeys(ctx.notes)))


def _old_syntax(data: Mapping[str, Any]) -> bool:
    version = str(data.get("Version") or "")
    if re.fullmatch(r"\d+(\.\d+)*", version):
        return tuple(int(p) for p in version.split(".")) <= LAST_OLD_SYNTAX
    # No version (a hand-written file): the syntax it uses tells.
    text = json.dumps(data)
    return bool(re.search(r"\$(json|xml|regex|response|responseurl|header|filename|input|random)[:$]", text))


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _table(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key) or {}
    return dict(value) if isinstance(value, Mapping) else {}


def _check_sends_a_file(data: Mapping[str, Any], request: Mapping[str, list[Node]], where: str) -> None:
    """Refuse, with the specific reason, an uploader that does not send ShareX's file."""
    destinations = {d.strip() for d in str(data.get("DestinationType") or "").split(",") if d.strip()}
    body = str(data.get("Body") or ("MultipartFormData" if data.get("FileFormName") else "None"))
    method = str(data.get("RequestMethod") or data.get("RequestType") or "POST").upper()
    inputs = [key for key, nodes in request.items() if uses(nodes, "input")]
    if destinations and not destinations & FILE_DESTINATIONS:
        kind = " and ".join(sorted(destinations))
        raise ImportRefused(f"{where}: not imported: a {kind} (ShareX sends it a link, not a file)", "url-shortener")
    if inputs:
        raise ImportRefused(
            f"{where}: not imported: it sends the text or link ShareX is given ($input$ in {inputs[0]}), "
            "not a file: a text uploader or URL shortener",
            "text-or-link",
        )
    if body not in ("MultipartFormData", "Binary"):
        raise ImportRefused(f"{where}: not imported: it sends a {body} body and no file", "no-file")
    if body == "MultipartFormData" and not data.get("FileFormName"):
        raise ImportRefused(f"{where}: not imported: it has no FileFormName, so ShareX sends it no file", "no-file")
    if method not in ("POST", "PUT", "PATCH"):
        raise ImportRefused(f"{where}: not imported: a {method} request carries no file", "no-file")


def _request_fields(data: Mapping[str, Any], request: Mapping[str, list[Node]], ctx: _Context) -> dict[str, Any]:
    fields: dict[str, Any] = {"method": str(data.get("RequestMethod") or data.get("RequestType") or "POST").upper()}
    destinations = str(data.get("DestinationType") or "")
    if destinations and not re.search(r"ImageUploader|FileUploader", destinations):
        ctx.notes.append("ShareX uses it as a text uploader (text sent as a file); picbeam sends the file you give it")
    endpoint, query = split_query(_request_text(request["RequestURL"], "RequestURL", ctx))
    fields["endpoint"] = _endpoint_placeholders(escape_env(endpoint), ctx)
    query = {k: credential(v, table="query", key=k, host=ctx.host, notes=ctx.notes) for k, v in query.items()}
    tables: dict[str, dict[str, str]] = {"query": query, "headers": {}, "form": {}}
    for key, nodes in request.items():
        table, _, name = key.partition(".")
        target = {"Parameters": "query", "Headers": "headers", "Arguments": "form"}.get(table)
        if target is None:
            continue
        value = _request_text(nodes, key, ctx)
        tables[target][name] = credential(value, table=target, key=name, host=ctx.host, notes=ctx.notes)
    if data.get("Body") == "Binary" or (not data.get("Body") and not data.get("FileFormName")):
        fields["body"] = "binary"
        if tables["form"]:
            ctx.notes.append(f"Arguments ({', '.join(tables['form'])}) left out: ShareX sends none with a Binary body")
            tables["form"] = {}
    else:
        fields["file_field"] = str(data["FileFormName"])
        tables["headers"] = multipart_headers(tables["headers"], ctx.notes)
    fields.update({table: values for table, values in tables.items() if values})
    return fields


def _request_text(nodes: Sequence[Node], where: str, ctx: _Context) -> str:
    """A request template as a host value: calls become what ShareX would send."""
    out = ""
    for node in nodes:
        if isinstance(node, str):
            text = NAME_PATTERN.sub(lambda m: NAME_PATTERNS[m.group(1)], escape_braces(node))
            out += text
            if re.search(r"%[a-z]", text):
                ctx.notes.append(
                    f"{where}: ShareX expands name patterns such as %ra here; picbeam maps %y %mo %d %h %mi %s "
                    "and sends the others as written"
                )
            continue
        name, args = node.name, node.args
        if name == "filename":
            out += "{filename}"
        elif name in ("random", "select", "prompt", "inputbox"):
            out += _choice(node, where, ctx, lambda a: _request_text(a, where, ctx))
        elif name == "base64":
            inner = _request_text(args[0], where, ctx) if args else ""
            if is_placeholder(inner):
                ctx.notes.append(f"{where}: set it to the base64 of {inner!r} (ShareX's {node.written})")
                out += inner
            else:
                out += base64.b64encode(inner.encode()).decode()
        elif name in ("response", "responseurl", "header", "json", "xml", "regex", "output", "outputbox"):
            ctx.notes.append(f"{where}: {node.written} means nothing before the answer; ShareX sends nothing for it")
        else:
            raise ImportRefused(
                f"{ctx.where}: not imported: {where} calls {node.written}, unknown to ShareX", "unmappable"
            )
    return out


# ShareX's name patterns (NameParser) that picbeam has placeholders for.
NAME_PATTERNS = {"y": "{year}", "mo": "{month}", "d": "{day}", "h": "{hour}", "mi": "{minute}", "s": "{second}",
                 "unix": "{timestamp}", "guid": "{uuid}"}  # fmt: skip
NAME_PATTERN = re.compile(r"%(unix|guid|mo|mi|y|d|h|s)(?![a-z0-9])")


def _choice(node: Call, where: str, ctx: _Context, render: Any) -> str:
    """$random$, $select$ and $prompt$: a fixed value in place of ShareX's dice or dialog."""
    options = [render(a) for a in node.args]
    if node.name in ("random", "select") and options:
        verb = "picks one at random" if node.name == "random" else "asks which to use"
        ctx.notes.append(
            f"{where}: ShareX {verb} of {len(options)} ({node.written[:60]}); the host uses {options[0]!r}"
        )
        return options[0]
    if node.name in ("prompt", "inputbox") and len(options) > 1:
        ctx.notes.append(f"{where}: ShareX asks for {options[0]!r} at each upload; the host sends {options[1]!r}")
        return options[1]
    raise ImportRefused(
        f"{ctx.where}: not imported: {where} asks for a value at each upload ({node.written}) and has no default; "
        "picbeam runs unattended",
        "unmappable",
    )


def _endpoint_placeholders(url: str, ctx: _Context) -> str:
    """Placeholder parts of a URL ("[INSERT YOUR CHANNEL ID HERE]", "Webhook URL") become ``${VAR}``."""

    def variable(text: str) -> str:
        exported = ENV_LIKE.match(text)  # "<LSKY_URL>", as `hosts export` writes a ${LSKY_URL}
        words = [w for w in re.split(r"[^A-Za-z0-9]+", text) if w and w.lower() not in FILLER_WORDS]
        own = env_name(*words) if words else "URL"
        prefix = env_name(ctx.host)
        name = exported.group(1) if exported else own if own.startswith(prefix) else f"{prefix}_{own}"
        ctx.notes.append(f"endpoint: {text!r} is a placeholder: export {name}=<your value>")
        return f"${{{name}}}"

    url = re.sub(r"\[[^\[\]]*\]|<[^<>]*>", lambda m: variable(m.group(0)), url)
    if "://" not in url and not ENV_REFERENCE.match(url):  # "${SITE_URL}/api": the variable holds the scheme
        if is_placeholder(url) or " " in url.strip() or "." not in url:
            return variable(url)
        ctx.notes.append(f"endpoint: {url!r} has no scheme; ShareX sends it to http://{url}")
        url = "http://" + url
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    netloc, slash, path = rest.partition("/")
    # A host name cannot hold '_', so "jirafeau_domain_address" is a placeholder; a path segment can.
    netloc = ".".join(variable(w) if _placeholder_token(w) or "_" in w else w for w in netloc.split("."))
    path = "/".join(variable(w) if _placeholder_token(w) else w for w in path.split("/"))
    return f"{scheme}://{netloc}{slash}{path}"


def _placeholder_token(token: str) -> bool:
    if not token or "${" in token or "{filename}" in token:
        return False
    return bool(is_placeholder(token) or re.fullmatch(r"[A-Z0-9_-]*[A-Z]{4,}[A-Z0-9_-]*", token))


# -- the answer ------------------------------------------------------------------------------------------
ANSWER_FIELDS = {"URL": "url_path", "ThumbnailURL": "thumbnail_path", "DeletionURL": "delete_path",
                 "ErrorMessage": "error_path"}  # fmt: skip


def _answer_fields(data: Mapping[str, Any], ctx: _Context) -> dict[str, Any]:
    parts = {key: _answer_parts(ctx.template(key, data.get(key) or ""), key, ctx) for key in ANSWER_FIELDS}
    if {"json", "xml"} <= ctx.kinds:
        raise ImportRefused(f"{ctx.where}: not imported: it reads the answer both as JSON and as XML", "unmappable")
    kind = "json" if "json" in ctx.kinds else "xml" if "xml" in ctx.kinds else "text"
    fields: dict[str, Any] = {"response": kind} if kind != "json" else {}
    for key, target in ANSWER_FIELDS.items():
        pieces = _merge(parts[key])
        if key == "URL":
            if pieces and pieces[0][0] == "text" and (len(pieces) > 1 or FILENAME in pieces[0][1]):
                fields["url_prefix"] = _url_prefix(pieces.pop(0)[1], ctx)
                if not pieces:  # a PUT uploader's URL made of text and the file's name: the answer is not read
                    fields[target] = "''"
                    continue
            if not pieces or pieces == [("body", "")]:
                if kind != "text":
                    raise ImportRefused(
                        f"{ctx.where}: not imported: its URL is the whole answer, which it also reads as {kind}",
                        "unmappable",
                    )
                continue  # the whole (trimmed) answer is the URL
        if pieces:
            fields[target] = _expression(pieces, kind, key, ctx)
    return fields


# Stands for $filename$ in an answer template until it is written into url_prefix.
FILENAME = "\0filename\0"


def _url_prefix(text: str, ctx: _Context) -> str:
    """The literal start of the URL as url_prefix: braces escaped, the file's name as ``{filename}``."""
    return _endpoint_placeholders_in_text(escape_braces(text).replace(FILENAME, "{filename}"), ctx)


def _endpoint_placeholders_in_text(text: str, ctx: _Context) -> str:
    """A literal URL prefix may hold a placeholder host, like the endpoint; url_prefix expands ``${VAR}``."""
    return _endpoint_placeholders(escape_env(text), ctx) if "://" in text else escape_env(text)


def _answer_parts(nodes: Sequence[Node], where: str, ctx: _Context) -> list[tuple[str, str]]:
    """A response template as (kind, value) parts: ("text", literal), ("expr", JMESPath), ("body", "")."""
    parts: list[tuple[str, str]] = []
    for node in nodes:
        if isinstance(node, str):
            parts.append(("text", node))
        else:
            parts.extend(_answer_call(node, where, ctx))
    return parts


def _answer_call(node: Call, where: str, ctx: _Context) -> list[tuple[str, str]]:
    name, args = node.name, node.args

    def refuse(why: str) -> ImportRefused:
        return ImportRefused(f"{ctx.where}: not imported: {where}: {node.written} {why}", "unmappable")

    def text_arg(index: int) -> str:
        value = plain(args[index]) if index < len(args) else None
        if value is None:
            raise refuse("has a computed argument; picbeam needs it written out")
        return value

    def answer_input(index: int) -> None:
        if not (len(args[index]) == 1 and isinstance(args[index][0], Call) and args[index][0].name == "response"):
            raise refuse("reads something other than the answer")

    if name == "json":
        if len(args) > 1:
            answer_input(0)
        ctx.kinds.add("json")
        return [("expr", json_path_to_jmespath(text_arg(len(args) - 1), refuse))]
    if name == "xml":
        if len(args) > 1:
            answer_input(0)
        ctx.kinds.add("xml")
        return [("expr", xpath_to_jmespath(text_arg(len(args) - 1), refuse))]
    if name == "regex":
        return [("expr", _regex_call(node, ctx, text_arg, answer_input, refuse))]
    if name == "response":
        return [("body", "")]
    if name == "responseurl":
        return [("expr", "response_url()")]
    if name == "header":
        return [("expr", f"header({literal(text_arg(0))})")]
    if name in ("random", "select", "prompt", "inputbox"):
        return [("text", _choice(node, where, ctx, lambda a: plain(a) or ""))]
    if name == "base64":
        return [("text", base64.b64encode(text_arg(0).encode()).decode())]
    if name == "input":
        ctx.notes.append(f"{where}: {node.written} is empty when ShareX reads an answer; left out")
        return []
    if name in ("outputbox", "output"):
        ctx.notes.append(f"{where}: {node.written} shows a box in ShareX and adds nothing to the URL; left out")
        return []
    if name == "filename":
        if where != "URL":
            raise refuse("puts the file's name in an answer field other than URL, which picbeam cannot")
        return [("text", FILENAME)]
    raise refuse("is not a ShareX function picbeam can read answers with")


def _regex_call(node: Call, ctx: _Context, text_arg: Any, answer_input: Any, refuse: Any) -> str:
    if node.old:  # $regex:N|G$ or $regex:N,G$: the N-th pattern of RegexList
        match = re.fullmatch(r"(\d+)(?:[|,](.*))?", text_arg(0) if node.args else "")
        if not match:
            raise refuse("does not name a RegexList pattern")
        number, group = int(match.group(1)), match.group(2)
        if not 1 <= number <= len(ctx.regex_list):
            raise refuse(f"names pattern {number}, but RegexList has {len(ctx.regex_list)}")
        pattern = ctx.regex_list[number - 1]
    else:  # {regex:pattern|group} or {regex:{response}|pattern|group}
        if len(node.args) > 2:
            answer_input(0)
        offset = 1 if len(node.args) > 2 else 0
        pattern = text_arg(offset)
        group = text_arg(offset + 1) if len(node.args) > offset + 1 else None
    python = dotnet_regex_to_python(pattern, refuse)
    if python not in ctx.patterns:
        ctx.patterns.append(python)
    index = ctx.patterns.index(python) + 1
    if not group:
        return f"regex(`{index}`)"
    return f"regex(`{index}`, `{int(group)}`)" if group.isdigit() else f"regex(`{index}`, {literal(group)})"


def _merge(parts: list[tuple[str, str]]) -> list[tuple[str, str]]:
    merged: list[tuple[str, str]] = []
    for kind, value in parts:
        if kind == "text" and merged and merged[-1][0] == "text":
            merged[-1] = ("text", merged[-1][1] + value)
        elif not (kind == "text" and not value):
            merged.append((kind, value))
    return merged


def _expression(pieces: list[tuple[str, str]], kind: str, key: str, ctx: _Context) -> str:
    exprs = []
    for piece_kind, value in pieces:
        if piece_kind == "body":
            if kind != "text":
                raise ImportRefused(
                    f"{ctx.where}: not imported: {key} mixes the whole answer with parts of it read as {kind}",
                    "unmappable",
                )
            exprs.append("@")
        elif piece_kind == "text":
            if FILENAME in value:
                raise ImportRefused(
                    f"{ctx.where}: not imported: {key} puts the file's name after a value read from the answer, "
                    "which picbeam cannot",
                    "unmappable",
                )
            if is_placeholder(value) or re.match(r"[a-z]+://[^/]*_", value):
                ctx.notes.append(f"{key}: the text {value!r} holds a placeholder; edit the host's {ANSWER_FIELDS[key]}")
            exprs.append(literal(value))
        else:
            exprs.append(value)
    return exprs[0] if len(exprs) == 1 else f"concat({', '.join(exprs)})"


def json_path_to_jmespath(path: str, refuse: Any) -> str:
    """A Newtonsoft JSON path (``$.a.b[0]``, ``['a'][0]['b']``) as JMESPath (``a.b[0]``)."""
    text = path.strip()
    text = text[1:] if text.startswith("$") else text
    steps: list[str | int] = []
    position = 0
    token = re.compile(
        r"\.?([^.\[\]'\"()*?@$ ]+)|\[\s*(-?\d+)\s*\]|\[\s*'((?:[^'\\]|\\.)*)'\s*\]|\[\s*\"((?:[^\"\\]|\\.)*)\"\s*\]"
    )
    while position < len(text):
        match = token.match(text, position)
        if match is None or match.end() == position:
            rest = text[position:]
            what = "recursive descent '..'" if rest.startswith("..") else f"'{rest[:20]}'"
            raise refuse(f"uses {what} in its JSON path, which picbeam does not convert; write the path by hand")
        name, index, single, double = match.groups()
        if index is not None:
            steps.append(int(index))
        else:
            steps.append(name if name is not None else (single if single is not None else double).replace("\\", ""))
        position = match.end()
    if not steps:
        raise refuse("has an empty JSON path")
    return jmespath_from_steps(steps)


def xpath_to_jmespath(xpath: str, refuse: Any) -> str:
    """A simple XPath (``/Files/File[1]/URL``) over picbeam's XML data (the root's children at the top)."""
    steps = [s for s in xpath.strip().split("/") if s]
    if xpath.strip().startswith("//") or not steps:
        raise refuse("uses an XPath picbeam does not convert (only /root/child[n]/... paths)")
    out: list[str] = []
    for step in steps[1:]:  # the first step is the root element, which picbeam's data does not wrap
        match = re.fullmatch(r"(@?[A-Za-z_][\w.-]*)(?:\[(\d+)\])?", step)
        if match is None:
            raise refuse(f"uses the XPath step '{step}', which picbeam does not convert")
        name = jmespath_from_steps([match.group(1)])
        if match.group(1).startswith("@"):
            out.append(name)
            continue
        # A repeated element is a list in picbeam's data and a single one is not: to_array() takes both.
        # Without an index ShareX's SelectSingleNode takes the first.
        out.append(f"to_array({name})[{int(match.group(2)) - 1 if match.group(2) else 0}]")
    return ".".join(out) if out else "@"


def dotnet_regex_to_python(pattern: str, refuse: Any) -> str:
    """.NET regular expression syntax as Python's: named groups ``(?<n>``/``(?'n'`` -> ``(?P<n>``,
    back-references ``\\k<n>`` -> ``(?P=n)``, ``\\z`` -> ``\\Z``. What Python lacks is refused."""
    out, i, in_class = "", 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            backref = re.match(r"\\k(?:<([^>]+)>|'([^']+)')", pattern[i:])
            if backref and not in_class:
                out += f"(?P={backref.group(1) or backref.group(2)})"
                i += backref.end()
                continue
            if nxt in "pP" and pattern[i + 2 : i + 3] == "{":
                raise refuse(f"uses the Unicode category {pattern[i : i + 6]}..., which Python's re does not support")
            out += "\\Z" if nxt == "z" else pattern[i : i + 2]
            i += 2
            continue
        if in_class:
            if char == "-" and pattern[i + 1 : i + 2] == "[":
                raise refuse("uses .NET character class subtraction, which Python's re does not support")
            in_class = char != "]"
        elif char == "[":
            in_class = True
            out += char
            i += 1
            if pattern[i : i + 1] == "^":
                out += "^"
                i += 1
            if pattern[i : i + 1] == "]":  # a leading ']' is a literal in the class
                out += "]"
                i += 1
            continue
        elif pattern.startswith("(?<", i) and pattern[i + 3 : i + 4] not in ("=", "!"):
            out += "(?P<"
            i += 3
            continue
        elif (named := re.match(r"\(\?'([^']+)'", pattern[i:])) is not None:
            out += f"(?P<{named.group(1)}>"
            i += named.end()
            continue
        out += char
        i += 1
    try:
        re.compile(out)
    except re.error as exc:
        raise refuse(f"has a regular expression Python cannot compile ({exc})") from None
    return out
