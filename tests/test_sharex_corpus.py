"""The community collection of ShareX custom uploaders (148 files, as published), read from ../shared.

Every uploader that sends ShareX's file imports, and its host sends the request ShareX would send (checked
against a small independent model of ShareX's old syntax below); every other one is refused with one
specific line; and where the URL is read from JSON, the host finds the URL ShareX would show.
"""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import picbeam
import pytest
from picbeam import HostSpec, SpecHost
from picbeam.answers import looks_like_url
from picbeam.importers import Imported, ImportRefused, read
from picbeam.redaction import ENV_REFERENCE
from picbeam.testing import Reply

CORPUS = Path(__file__).parents[2] / "shared" / "corpus" / "sharex-custom-uploaders"
pytestmark = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"the ShareX corpus is not beside the project (looked in {CORPUS})"
)
FILES = sorted(CORPUS.glob("*.sxcu")) if CORPUS.is_dir() else []

# The expected figures: a change in the importer that moves a file from one group to another shows here.
EXPECTED = {"imported": 104, "url-shortener": 26, "text-or-link": 18}


def sxcu(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8-sig"))


def sends_a_file(data: dict[str, Any]) -> bool:
    """Whether ShareX sends its file with this uploader: judged from the file alone, not by the importer."""
    destinations = set(re.split(r"\s*,\s*", data.get("DestinationType") or "")) - {""}
    request = json.dumps([data.get(k) for k in ("RequestURL", "Parameters", "Headers", "Arguments", "Data")])
    return (
        (not destinations or bool(destinations & {"ImageUploader", "FileUploader", "TextUploader"}))
        and "$input$" not in request
        and data.get("RequestMethod", "POST") != "GET"
        and (
            data.get("Body") == "Binary" or (data.get("Body") == "MultipartFormData" and bool(data.get("FileFormName")))
        )
    )


def sharex_text(value: Any, file_name: str) -> str:
    """ShareX's old syntax for request values, as far as the collection uses it."""
    text = "" if value is None else str(value)
    text = re.sub(r"\$random:([^|$]*)[^$]*\$", r"\1", text)
    return text.replace("$filename$", file_name)


def imported_matches(imported: str, sharex: str, file_name: str = "img0000.png") -> bool:
    """The host's value says what ShareX's does, or replaced a placeholder of it by ``${VAR}``."""
    from picbeam.templates import TemplateContext, fill_placeholders

    # What picbeam sends: {filename} filled in, escaped braces ({{ }}) as the literal ones.
    imported = fill_placeholders(imported, TemplateContext(name=file_name))
    if not ENV_REFERENCE.search(imported):
        return imported == sharex
    pattern = "".join(
        ".*" if ENV_REFERENCE.fullmatch(p) else re.escape(p) for p in re.split(r"(\$\{[^}]*\})", imported)
    )
    return re.fullmatch(pattern, sharex, re.DOTALL) is not None


def sent(value: str, file_name: str) -> str:
    """What picbeam sends for a host value: variables expanded, placeholders filled, escaped braces literal."""
    from picbeam.templates import TemplateContext, fill_placeholders

    return fill_placeholders(expand(value), TemplateContext(name=file_name))


def expand(value: str) -> str:
    return ENV_REFERENCE.sub(lambda m: f"V-{m.group(1)}", value)


@pytest.fixture(scope="module")
def results() -> dict[Path, Imported | ImportRefused]:
    outcome = {}
    for path in FILES:
        [outcome[path]] = read(path)
    return outcome


def test_counts_and_that_exactly_the_file_senders_import(results):
    counts = collections.Counter("imported" if isinstance(r, Imported) else r.reason for r in results.values())
    assert len(FILES) == 148
    assert dict(counts) == EXPECTED
    imported = {path.name for path, r in results.items() if isinstance(r, Imported)}
    assert imported == {path.name for path in FILES if sends_a_file(sxcu(path))}


def test_refusals_are_one_specific_line(results):
    for path, result in results.items():
        if isinstance(result, ImportRefused):
            message = str(result)
            assert message.startswith(f"{path.name}: not imported: ") and "\n" not in message


def json_answer(template: str, values: dict[str, str]) -> Any:
    """A JSON document with ``values`` at the Newtonsoft paths of ``$json:...$`` calls."""
    document: Any = None
    for path, value in values.items():
        steps = [int(i) if i else (q or n) for i, q, n in re.findall(r"\[(\d+)\]|\['([^']*)'\]|([^.\[\]]+)", path)]
        if document is None:
            document = [] if isinstance(steps[0], int) else {}
        node = document
        for step, following in zip(steps, [*steps[1:], None], strict=True):
            empty: Any = value if following is None else ([] if isinstance(following, int) else {})
            if isinstance(step, int):
                while len(node) <= step:
                    node.append({})
                if following is None or node[step] == {}:
                    node[step] = empty if following is None or not isinstance(following, int) else []
                node = node[step]
            else:
                node = node.setdefault(step, empty)
    return document if document is not None else {}


def sharex_answer(template: str, values: dict[str, str]) -> str:
    text = re.sub(r"\$random:([^|$]*)[^$]*\$", r"\1", template)
    return re.sub(r"\$json:([^$]*)\$", lambda m: values[m.group(1)], text)


def test_every_imported_host_sends_the_request_sharex_sends(results, fake_host, monkeypatch, images):
    [image] = images(1)
    checked_answers = 0
    for path, result in results.items():
        if not isinstance(result, Imported):
            continue
        data = sxcu(path)
        spec = HostSpec.from_mapping(result.fields, source=path.name, name=result.name)
        for variable in ENV_REFERENCE.findall(json.dumps(result.fields)):
            monkeypatch.setenv(variable[0], f"V-{variable[0]}")
        # Send to the loopback host, keeping the path (and any placeholder in it).
        _, scheme, address = spec.endpoint.partition("://")
        local_path = "/" + address.split("/", 1)[1] if scheme and "/" in address else "/"
        local = spec.derive({"endpoint": fake_host.url + local_path}, source=path.name)
        url_template = data.get("URL") or ""
        calls = re.findall(r"\$json:([^$]*)\$", url_template)
        # Sample answer values that make the URL a URL ("https:$json:path$" needs "//host/...").
        for sample in ("s{}", "//s.example/{}", "https://s.example/{}"):
            values = {call: sample.format(i) for i, call in enumerate(calls)}
            if looks_like_url(sharex_answer(url_template, values)):
                break
        plain_json = spec.response == "json" and calls and re.fullmatch(r"([^$]|\$json:[^$]*\$)*", url_template)
        fake_host.reply(
            Reply(json=json_answer(url_template, values)) if plain_json else Reply(text="https://t.example/x")
        )
        count = len(fake_host.requests)
        [outcome] = picbeam.upload([image], host=SpecHost(local), force=True)
        [request] = fake_host.requests[count:]
        where = f"{path.name}: {result.name}"

        assert request.method == data["RequestMethod"], where
        sharex_url = sharex_text(data["RequestURL"], image.name)
        assert imported_matches(spec.endpoint, sharex_url.split("?")[0]), where
        assert request.path == expand(local_path).replace("{filename}", image.name), where
        parameters = {k: sharex_text(v, image.name) for k, v in (data.get("Parameters") or {}).items()}
        sharex_query = {**dict(parse_qsl(urlsplit(sharex_url).query, keep_blank_values=True)), **parameters}
        assert request.query.keys() == sharex_query.keys(), where
        for key, value in sharex_query.items():
            assert imported_matches(spec.query[key], value), f"{where}: query {key}"
            assert request.query[key] == sent(spec.query[key], image.name), where
        for key, value in (data.get("Headers") or {}).items():
            assert imported_matches(spec.headers[key], sharex_text(value, image.name)), f"{where}: header {key}"
            assert request.headers[key] == sent(spec.headers[key], image.name), where
        if data.get("Body") == "Binary":
            assert request.body == image.read_bytes() and request.headers["Content-Type"] == "image/png", where
        else:
            arguments = {k: sharex_text(v, image.name) for k, v in (data.get("Arguments") or {}).items()}
            assert request.form.keys() == arguments.keys(), where
            for key, value in arguments.items():
                assert imported_matches(spec.form[key], value), f"{where}: argument {key}"
                assert request.form[key] == sent(spec.form[key], image.name), where
            assert (request.file.field, request.file.filename) == (data["FileFormName"], image.name), where
            assert request.file.data == image.read_bytes(), where
        if plain_json:
            assert outcome.url == sharex_answer(url_template, values), f"{where}: {outcome.error}"
            checked_answers += 1
    assert checked_answers == 73  # the uploaders whose URL is JSON values and text alone
