"""The hosts, config and plugins commands."""

from __future__ import annotations

import json
import stat

from picbeam.testing import run_picbeam, write_host


def test_version_is_fast_path():
    done = run_picbeam("--version")
    assert done.returncode == 0 and done.stdout.startswith("picbeam ")


def test_version_imports_neither_aiohttp_nor_plugins():
    import subprocess
    import sys

    code = (
        "import sys; from picbeam.cli import main; main(['--version']); "
        "print(sorted(m for m in sys.modules if m.startswith(('aiohttp', 'picbeam.plugins.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "[]"


def test_hosts_list_shows_builtins_and_presets():
    done = run_picbeam("hosts", "list", "--json")
    hosts = {h["name"]: h for h in json.loads(done.stdout)["hosts"]}
    assert {"local", "smms", "imgbb", "catbox"} <= set(hosts)
    assert hosts["local"]["default"] is True
    assert hosts["imgbb"]["plugin"] == "hosts_folder" and hosts["smms"]["plugin"] == "smms"


def test_hosts_show_masks_literal_secrets_and_keeps_references(hosts_dir):
    write_host(
        hosts_dir,
        "mine",
        endpoint="https://img.example/api",
        url_path="data.url",
        headers={"Authorization": "Bearer literal-secret-value", "X-Trace": "visible"},
        query={"key": "${MY_KEY}"},
    )
    done = run_picbeam("hosts", "show", "mine", "--json")
    shown = json.loads(done.stdout)
    assert shown["headers"] == {"Authorization": "***", "X-Trace": "visible"}
    assert shown["query"] == {"key": "${MY_KEY}"}
    assert "literal-secret-value" not in run_picbeam("hosts", "show", "mine").stdout


def test_hosts_show_smms_references_its_token_variable():
    shown = json.loads(run_picbeam("hosts", "show", "smms", "--json").stdout)
    assert shown["headers"] == {"Authorization": "${SMMS_TOKEN}"}
    assert shown["endpoint"] == "https://sm.ms/api/v2/upload" and shown["file_field"] == "smfile"


def test_hosts_add_writes_a_working_host(fake_host, home, images, monkeypatch):
    monkeypatch.setenv("SMMS_TOKEN", "tok-abcdef123")
    done = run_picbeam(
        "hosts",
        "add",
        "myhost",
        "--endpoint",
        fake_host.endpoint("/api/upload"),
        "--file-field",
        "smfile",
        "--url-path",
        "data.url",
        "--header",
        "Authorization: ${SMMS_TOKEN}",
        "--form",
        "format=json",
        "--url-prefix",
        "",
    )
    assert done.returncode == 0, done.stderr
    written = home / "config" / "picbeam" / "hosts.d" / "myhost.toml"
    assert written.exists() and stat.S_IMODE(written.stat().st_mode) == 0o600
    assert "${SMMS_TOKEN}" in written.read_text()
    [path] = images(1)
    assert run_picbeam("upload", path, "--host", "myhost").returncode == 0
    request = fake_host.requests[0]
    assert request.headers["Authorization"] == "tok-abcdef123" and request.form == {"format": "json"}
    assert run_picbeam("hosts", "add", "myhost", "--endpoint", "https://x/").returncode == 2  # exists


def test_hosts_add_rejects_a_bad_jmespath():
    done = run_picbeam("hosts", "add", "bad", "--endpoint", "https://x/", "--url-path", "data.[")
    assert done.returncode == 2
    assert "field 'url_path' is not a valid JMESPath expression" in done.stderr


def test_hosts_check_and_probe(fake_host, hosts_dir):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    assert run_picbeam("hosts", "check", "fake").returncode == 0
    done = run_picbeam("hosts", "check", "fake", "--probe")
    assert done.returncode == 0, done.stderr
    assert "probe uploaded: http://127.0.0.1" in done.stdout
    assert fake_host.requests[0].file.content_type == "image/png"


def test_hosts_check_names_a_missing_variable():
    done = run_picbeam("hosts", "check", "imgbb", env={"IMGBB_KEY": ""})
    assert done.returncode == 2
    assert "environment variable IMGBB_KEY is not set" in done.stderr


def test_config_set_get_and_default_host(fake_host, hosts_dir, images):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    assert run_picbeam("config", "set", "default_host", "fake").returncode == 0
    assert run_picbeam("config", "set", "format", "markdown").returncode == 0
    assert run_picbeam("config", "get", "default_host").stdout.strip() == "fake"
    [path] = images(1)
    done = run_picbeam("upload", path)
    assert done.lines[0].startswith("![img0000](http://127.0.0.1")
    assert run_picbeam("config", "set", "jobs", "many").returncode == 2
    assert run_picbeam("config", "set", "colour", "red").returncode == 2
    done = run_picbeam("upload", path, "--format", "url", env={"PICBEAM_HOST": "local"})
    assert done.lines[0].startswith("file://")


def test_plugins_lists_builtins_with_distribution():
    plugins = {p["name"]: p for p in json.loads(run_picbeam("plugins", "--json").stdout)}
    assert plugins["smms"]["distribution"] == "picbeam" and plugins["smms"]["hosts"] == ["smms"]
    assert plugins["local"]["hosts"] == ["local"]
    assert set(plugins["hosts_folder"]["hosts"]) >= {"imgbb", "catbox"}
    assert all(not p["errors"] for p in plugins.values())


def test_built_in_plugins_always_load_and_may_be_disabled_by_name():
    everything = [h["name"] for h in json.loads(run_picbeam("hosts", "list", "--json").stdout)["hosts"]]
    for selection in ("local", ""):  # PICBEAM_LOAD_PLUGINS selects third-party plugins only
        done = run_picbeam("hosts", "list", "--json", env={"PICBEAM_LOAD_PLUGINS": selection})
        assert [h["name"] for h in json.loads(done.stdout)["hosts"]] == everything
    done = run_picbeam("hosts", "list", "--json", env={"PICBEAM_DISABLE_PLUGINS": "hosts_folder,smms"})
    names = [h["name"] for h in json.loads(done.stdout)["hosts"]]
    assert "smms" not in names and "catbox" not in names and "local" in names
    plugins = {p["name"]: p for p in json.loads(run_picbeam("plugins", "--json",
               env={"PICBEAM_DISABLE_PLUGINS": "smms"}).stdout)}  # fmt: skip
    assert plugins["smms"]["disabled"] and plugins["smms"]["hosts"] == []
