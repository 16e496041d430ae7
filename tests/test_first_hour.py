"""Issue 13, "the first hour": what a new user hit, through the installed command (and issue 11 items 11, 19)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from picbeam.errors import ConfigError
from picbeam.spec import SPEC_FIELDS, HostSpec
from picbeam.testing import run_picbeam, write_host

BASE = {"endpoint": "https://img.example/upload", "url_path": "data.url"}


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    return lines[0]


# -- item 1: every field type-checked at load ----------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "wanted"),
    [
        ({"url_prefix": 5}, "field 'url_prefix' must be a string, not 5 (integer)"),
        ({"file_field": 3}, "field 'file_field' must be a string, not 3 (integer)"),
        ({"headers": "Authorization: x"}, "field 'headers' must be a table of strings"),
        ({"form": "a=b"}, 'field \'form\' must be a table of strings (form = { Name = "value" }), not "a=b"'),
        ({"query": 5}, "field 'query' must be a table of strings"),
        ({"max_bytes": "big"}, "field 'max_bytes' must be a whole number, not \"big\" (string)"),
    ],
)
def test_a_wrong_typed_field_is_one_line_naming_file_field_type_and_value(hosts_dir, images, fields, wanted):
    path = write_host(hosts_dir, "typo", **{**BASE, **fields})
    [image] = images(1)
    for command in (["upload", image, "--host", "typo"], ["hosts", "check", "typo"]):
        done = run_picbeam(*command)
        assert done.returncode == 2
        line = one_error_line(done.stderr)
        assert str(path) in line and wanted in line, line


def test_an_unknown_field_says_did_you_mean(hosts_dir):
    write_host(hosts_dir, "typo", **BASE, urlprefix="https://cdn/")
    done = run_picbeam("hosts", "check", "typo")
    assert done.returncode == 2
    assert "unknown field 'urlprefix' (did you mean 'url_prefix'?)" in one_error_line(done.stderr)


WRONG_VALUES = {
    "string": st.text(max_size=8),
    "integer": st.integers(),
    "float": st.floats(allow_nan=False),
    "boolean": st.booleans(),
    "list": st.lists(st.one_of(st.integers(), st.text(max_size=3)), max_size=3),
    "table": st.dictionaries(
        st.text(min_size=1, max_size=4), st.one_of(st.integers(), st.lists(st.integers())), max_size=2
    ),
    "datetime": st.datetimes(),
}


@settings(max_examples=400, deadline=None)
@given(field=st.sampled_from([f for f in SPEC_FIELDS if f != "name"]), value=st.one_of(*WRONG_VALUES.values()))
def test_no_value_of_any_type_in_any_field_reaches_a_traceback(field: str, value: Any) -> None:
    """The property: whatever type a field is given, loading (and deriving, as --set and extends do) either
    works or raises one ConfigError line naming the source."""
    from picbeam.hosts import SpecHost

    try:
        spec = HostSpec.from_mapping({**BASE, field: value}, source="typo.toml", name="typo")
        host = SpecHost(spec)
        host.describe()
        spec.derive({"description": "x"}, source="--set")
        spec.expanded({})
    except ConfigError as exc:
        assert str(exc).startswith("typo.toml") and "\n" not in str(exc)


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:99999/x", "http://[::1:bad/x", "http://:80/x"])
def test_a_malformed_endpoint_is_a_configuration_error_naming_host_and_field(hosts_dir, images, endpoint):
    """Issue 11 item 11: found when the host loads, exit 2, one line; it used to be a traceback."""
    write_host(hosts_dir, "bad", endpoint=endpoint, url_path="u")
    [image] = images(1)
    done = run_picbeam("upload", image, "--host", "bad")
    assert done.returncode == 2
    line = one_error_line(done.stderr)
    assert "host 'bad'" in line and "field 'endpoint' is not a valid URL" in line, line
    listed = run_picbeam("hosts", "list")
    assert listed.returncode == 0 and "host 'bad' is unusable" in listed.stderr


def test_a_malformed_endpoint_given_with_set_is_a_usage_error(fake_host, hosts_dir, images):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    [image] = images(1)
    done = run_picbeam("upload", image, "--host", "fake", "--set", "endpoint=http://127.0.0.1:99999/x")
    assert done.returncode == 2 and "the port is out of range" in one_error_line(done.stderr)
    assert fake_host.requests == []


def test_method_get_is_refused(hosts_dir):
    write_host(hosts_dir, "get", **BASE, method="GET")
    done = run_picbeam("hosts", "check", "get")
    assert done.returncode == 2 and "field 'method' must be one of POST, PUT, PATCH, not 'GET'" in done.stderr


# -- item 2: hosts add takes the notation users paste ---------------------------------------------------
def test_hosts_add_takes_json_headers_and_forms_and_delete_options(fake_host, home, images):
    done = run_picbeam(
        "hosts", "add", "pasted", "--endpoint", fake_host.endpoint("/api/upload"), "--url-path", "data.url",
        "--header", '{"Authorization": "abcdefg123456", "X-Trace": "1"}', "--header", "Accept: application/json",
        "--form", '{"format": "json", "album": 7}', "--form", "strategy=2",
        "--delete-endpoint", "delete/{data.hash}", "--delete-method", "get",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = home / "config" / "picbeam" / "hosts.d" / "pasted.toml"
    shown = json.loads(run_picbeam("hosts", "show", "pasted", "--json").stdout)
    assert shown["headers"] == {"Authorization": "***", "X-Trace": "1", "Accept": "application/json"}
    assert shown["form"] == {"format": "json", "album": "7", "strategy": "2"}
    assert shown["delete_endpoint"] == "delete/{data.hash}" and shown["delete_method"] == "GET"
    assert written.exists()
    [image] = images(1)
    assert run_picbeam("upload", image, "--host", "pasted").returncode == 0
    request = fake_host.requests[0]
    assert request.headers["Authorization"] == "abcdefg123456"
    assert request.form == {"format": "json", "album": "7", "strategy": "2"}


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ('{"Authorization"', "not a JSON object"),
        ('"Authorization": "x"', "is not a valid header name"),
        ("Bad Name: x", '"Bad Name" is not a valid header name'),
        ('["a"]', "expected 'Name: value' or a JSON object"),
        ('{"A": {"b": 1}}', "must be text"),
    ],
)
def test_hosts_add_refuses_a_header_that_is_not_a_header(header, message, home):
    done = run_picbeam("hosts", "add", "bad", "--endpoint", "https://x.example/", "--url-path", "u", "--header", header)
    assert done.returncode == 2 and message in one_error_line(done.stderr)
    assert not (home / "config" / "picbeam" / "hosts.d" / "bad.toml").exists()


def test_a_header_value_with_a_line_break_is_refused(hosts_dir):
    write_host(hosts_dir, "crlf", **BASE, headers={"X-A": "1\r\nX-Injected: 2"})
    done = run_picbeam("hosts", "check", "crlf")
    assert done.returncode == 2 and "holds a line break" in one_error_line(done.stderr)


# -- item 14: the endpoint's query key replaces the query table's ----------------------------------------
def test_a_query_key_in_the_endpoint_overrides_the_query_table(fake_host, hosts_dir, images):
    fake_host.reply(text="https://files.example/a.png")
    write_host(hosts_dir, "txt", endpoint=fake_host.endpoint(), response="text", query={"output": "json", "k": "v"})
    [image] = images(1)
    done = run_picbeam(
        "upload", image, "--host", "txt", "--set", f"endpoint={fake_host.endpoint('/upload.php')}?output=text"
    )
    assert done.returncode == 0, done.stderr
    sent = fake_host.requests[0].query_string
    assert re.findall(r"output=[a-z]+", sent) == ["output=text"] and "k=v" in sent


# -- item 15: response=text on a JSON preset ------------------------------------------------------------
def test_switching_a_json_preset_to_text_names_the_inherited_paths_before_sending(fake_host, images):
    [image] = images(1)
    done = run_picbeam("upload", image, "--host", "uguu", "--set", f"endpoint={fake_host.endpoint()}",
                       "--set", "response=text")  # fmt: skip
    assert done.returncode == 2
    line = one_error_line(done.stderr)
    assert "url_path, error_path, success_path inherited from 'uguu'" in line and "--set success_path=" in line
    assert fake_host.requests == []
    fake_host.reply(text=fake_host.url + "/a.png")
    cleared = run_picbeam("upload", image, "--host", "uguu", "--set", f"endpoint={fake_host.endpoint()}",
                          "--set", "response=text", "--set", "url_path=", "--set", "error_path=",
                          "--set", "success_path=")  # fmt: skip
    assert cleared.returncode == 0, cleared.stderr
    assert cleared.stdout.strip() == fake_host.url + "/a.png"
