"""Reading a host's answer: JSON, text or XML, then the spec's JMESPath expressions over it."""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import UploadError, transient_status
from .jmespath_functions import AnswerFunctions, options
from .spec import HostSpec

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

# Statuses worth another attempt: the host is overloaded, throttling or briefly unavailable.
RETRY_AFTER_CAP = 300.0
# Answers are read up to this size (a host's max_answer_size may raise it): a hostile or broken host must
# not make picbeam hold an endless answer in memory.
MAX_ANSWER_SIZE = 10 * 1024 * 1024
ANSWER_CHUNK = 64 * 1024
# Real answers nest a few levels; deeper ones would exhaust the stack of whatever reads them next.
MAX_ANSWER_DEPTH = 200


async def read_answer(response: Any, limit: int | None = None) -> bytes:
    """The body of ``response`` (an aiohttp response), or UploadError once it passes ``limit`` bytes."""
    limit = limit or MAX_ANSWER_SIZE
    if response.content_length is not None and response.content_length > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in response.content.iter_chunked(ANSWER_CHUNK):
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


def _too_large(limit: int) -> UploadError:
    mib = 1024 * 1024
    size = f"{limit // mib} MB" if limit % mib == 0 else f"{limit} bytes"
    return UploadError(f"the host's answer is larger than {size} (a host's max_answer_size raises the limit)")


@dataclass
class Extracted:
    url: str
    thumbnail_url: str | None
    delete_url: str | None
    data: Any


def interpret(
    spec: HostSpec,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    response_url: str | None = None,
    url_prefix: str | None = None,
) -> Extracted:
    """Turn one HTTP answer into a URL (and thumbnail/delete URLs), or raise :class:`UploadError`.

    ``response_url`` is where the answer came from after redirects, for ``response_url()``; ``url_prefix``
    is the spec's with this file's placeholders filled in."""
    prefix = spec.url_prefix if url_prefix is None else url_prefix
    ok_status = 200 <= status < 300
    data = parse_body(spec.response, body, status)
    functions = AnswerFunctions(
        text=body.decode("utf-8-sig", errors="replace"), headers=headers, url=response_url, patterns=spec.patterns
    )

    def find(name: str) -> Any:
        return search(spec, name, data, functions)

    if not ok_status:
        raise http_error(status, headers, body, find("error_path"))
    if spec.expression("success_path") is not None and not find("success_path"):
        message = find("error_path") or "the host reported a failure"
        raise UploadError(f"rejected: {_one_line(message)}", status=status, answer=data)
    url = data if spec.response == "text" and not spec.url_path else find("url_path")
    # url_path = "''": the URL is url_prefix alone (an uploader that PUTs to the address it prints).
    prefix_only = url == "" and prefix and spec.url_path == "''"
    if not prefix_only and (not isinstance(url, str | int) or not str(url).strip()):
        message = find("error_path")
        reason = f": {_one_line(message)}" if message else f" (answer: {snippet(body)})"
        raise UploadError(f"the answer has no URL at '{spec.url_path or 'body'}'{reason}", status=status, answer=data)
    # Some hosts answer file names with spaces unencoded; a URL with a space breaks Markdown and HTML.
    written = prefix + str(url).strip()
    url = written.replace(" ", "%20")
    if not looks_like_url(url):
        raise UploadError(  # quoted as the host wrote it: often an error message in a text answer
            f"the answer is not a URL: {snippet(written.encode())} (check url_path or url_prefix)",
            status=status,
            answer=data,
        )
    return Extracted(
        url=url,
        thumbnail_url=_optional_text(find("thumbnail_path")),
        delete_url=_optional_text(find("delete_path")),
        data=data,
    )


def parse_body(kind: str, body: bytes, status: int) -> Any:
    """The answer as data for JMESPath: a JSON value, the trimmed text, or a dict made from XML."""
    text = body.decode("utf-8-sig", errors="replace")
    if kind == "text":
        return text.strip()
    try:
        data = json.loads(text) if kind == "json" else xml_to_data(text)
        if nested_deeper(data, MAX_ANSWER_DEPTH):
            raise RecursionError
        return data
    except RecursionError:
        if not 200 <= status < 300:
            return None
        raise UploadError(
            f"the host's answer is nested too deeply to read (over {MAX_ANSWER_DEPTH} levels, HTTP {status}); "
            "check the endpoint",
            status=status,
        ) from None
    except ValueError:
        if not 200 <= status < 300:
            return None  # the status explains the failure better than the body's format
        what = "HTML" if looks_like_html(text) else "text"
        raise UploadError(
            f"the host answered {what} instead of {kind.upper()} (HTTP {status}): {snippet(body)}; "
            'check the endpoint, or set response = "text"',
            status=status,
        ) from None


def nested_deeper(data: Any, limit: int) -> bool:
    """Whether JSON-like ``data`` nests more than ``limit`` levels (walked without recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def xml_to_data(text: str) -> Any:
    """Parse XML safely (no DTDs, so no entity expansion) into dicts: the root's children at the top."""
    import xml.etree.ElementTree as ET  # imported by the hosts that answer XML, not by every run

    if re.search(r"<!(DOCTYPE|ENTITY)", text, re.IGNORECASE):
        raise ValueError("XML with a DTD is refused")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"not well-formed XML ({exc})") from None
    return _element_data(root)


def _element_data(element: ET.Element) -> Any:
    children = list(element)
    if not children and not element.attrib:
        return (element.text or "").strip()
    data: dict[str, Any] = {f"@{k}": v for k, v in element.attrib.items()}
    for child in children:
        value = _element_data(child)
        if child.tag in data:
            if not isinstance(data[child.tag], list):
                data[child.tag] = [data[child.tag]]
            data[child.tag].append(value)
        else:
            data[child.tag] = value
    if not children and element.text and element.text.strip():
        data["#text"] = element.text.strip()
    return data


def http_error(status: int, headers: Mapping[str, str], body: bytes, message: Any = None) -> UploadError:
    """The error for a non-2xx answer, marked transient when retrying can help."""
    detail = _one_line(message) if message else snippet(body)
    hint = {
        401: "check the host's token or key",
        403: "check the host's token, key or permissions",
        404: "check the endpoint",
        413: "the file is too large for this host",
        429: "the host is throttling; retry later or lower --jobs",
    }.get(status)
    text = f"HTTP {status}" + (f": {detail}" if detail else "") + (f" ({hint})" if hint else "")
    return UploadError(
        text,
        status=status,
        transient=transient_status(status),
        retry_after=retry_after(headers.get("Retry-After")),
    )


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), RETRY_AFTER_CAP)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return min(max(0.0, when - (time.time() if now is None else now)), RETRY_AFTER_CAP)


def search(spec: HostSpec, name: str, data: Any, functions: AnswerFunctions | None = None) -> Any:
    """Evaluate one of the spec's ``*_path`` expressions; None when absent or the shape does not fit.

    ``functions`` binds picbeam's functions (``regex()``, ``header()``...) to the answer; without it they
    see an empty one."""
    expression = spec.expression(name)
    if expression is None or data is None:
        return None
    try:
        return expression.search(data, options=options(functions or AnswerFunctions(patterns=spec.patterns)))
    except Exception:  # JMESPath type errors on unexpected shapes: treat as "not there"
        return None


def _optional_text(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) and str(value) else None


def _one_line(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return " ".join(text.split())[:300]


def looks_like_url(text: str) -> bool:
    return bool(re.fullmatch(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+", text))


def looks_like_html(text: str) -> bool:
    return bool(re.match(r"\s*(<!doctype html|<html|<head|<body|<\w+[^>]*>)", text, re.IGNORECASE))


def snippet(body: bytes, limit: int = 120) -> str:
    """A short, one-line view of an answer for error messages (an HTML page shows its title)."""
    text = body.decode("utf-8", errors="replace")
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title:
        text = f"page titled {title.group(1).strip()!r}"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
