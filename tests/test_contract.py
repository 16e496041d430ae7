"""The plugin contract: every hook through the installed `picbeam` command, with third-party plugins
pip-installed into a fresh venv (processors with options, formats, importers, commands, after_upload,
a code host with secret options), and the mistakes plugin authors make reported in one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from picbeam.testing import run_picbeam, write_host
from test_plugins import make_distribution, run_in, venv_with

CODE_HOST = """
    from picbeam import Host, UploadError, expand_options, hookimpl

    class Vault(Host):
        name = "vault"
        description = "a code host with a token"
        secret_options = ("token",)

        def __init__(self, name="vault", options=None):
            self.name, self.options = name, dict(options or {})

        def configured(self, name, options, *, source):
            unknown = set(options) - {"endpoint", "token"}
            if unknown:
                from picbeam import ConfigError
                raise ConfigError(f"{source}: host '{name}': unknown field {sorted(unknown)[0]!r}")
            return Vault(name, {**self.options, **options})

        def prepared(self):
            return Vault(self.name, expand_options(self.options, host=self.name))

        async def upload(self, item, session):
            headers = {"Authorization": f"Bearer {self.options['token']}"}
            async with session.post(self.options["endpoint"], data=item.read(), headers=headers,
                                    timeout=self.timeout(item.size)) as response:
                body = await response.text()
                if response.status != 200:
                    raise UploadError(f"HTTP {response.status}: {body}", status=response.status)
                if "boom" in item.name:
                    raise KeyError("boom")
            return self.result(item, body.strip())

    @hookimpl
    def register_hosts(register):
        register(Vault())
"""

EXTRAS = """
    import json
    from pathlib import PurePosixPath

    from picbeam import Option, Processor, hookimpl
    from picbeam.importers import Importer

    def suffix(item):
        name = PurePosixPath(item.name)
        item.replace(name=f"{name.stem}{item.settings.name_suffix}{name.suffix}")

    def signature(settings):
        return f"suffix={settings.name_suffix}" if settings.name_suffix else ""

    @hookimpl
    def register_processors(register):
        register(Processor("suffix", suffix, order=950, signature=signature, worker=False,
                           options=(Option("name_suffix", str, None, "Append this to each uploaded name."),)))

    @hookimpl
    def register_formats(register):
        register("org", lambda result: f"[[{result.url}][{result.path}]]")

    def detect(data):
        return isinstance(data, dict) and data.get("kind") == "tiny"

    def convert(data, where, name):
        from picbeam.importers import Imported
        return Imported(name=name or data["name"],
                        fields={"endpoint": data["url"], "file_field": "file", "url_path": "url"},
                        notes=[f"read from {where}"])

    @hookimpl
    def register_importers(register):
        register(Importer("tiny", "a tiny host file", detect, convert))

    @hookimpl
    def register_commands(app):
        @app.command("hello")
        def hello():
            print("hello from a plugin")

    @hookimpl
    def after_upload(result):
        if result.ok:
            raise RuntimeError("after_upload bug")
"""


@pytest.fixture(scope="module")
def contract_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("contract")
    sources = [
        make_distribution(root, "picbeam-vault", "picbeam_vault", CODE_HOST),
        make_distribution(root, "picbeam-extras", "picbeam_extras", EXTRAS),
        make_distribution(root, "picbeam-nohooks", "picbeam_nohooks", "def register_hosts(register):\n    pass\n"),
        make_distribution(
            root,
            "picbeam-typo",
            "picbeam_typo",
            "from picbeam import hookimpl\n\n@hookimpl\ndef register_host(register):\n    pass\n",
        ),
        make_distribution(
            root,
            "picbeam-args",
            "picbeam_args",
            "from picbeam import hookimpl\n\n@hookimpl\ndef register_hosts(regster):\n    pass\n",
        ),
    ]
    return venv_with(root, *sources)


@pytest.fixture
def only_extras() -> dict[str, str]:
    return {"PICBEAM_LOAD_PLUGINS": "picbeam_extras"}


def test_a_processor_plugin_declares_options_used_as_flags_config_and_host_table(
    contract_venv, fake_host, hosts_dir, images, only_extras
):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    [path] = images(1)
    done = run_in(contract_venv, "upload", path, "--host", "fake", "--name-suffix", "-x", env=only_extras)
    assert done.returncode == 0, done.stderr
    assert fake_host.requests[-1].file.filename == "img0000-x.png"
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url", process={"name_suffix": "-h"})
    done = run_in(contract_venv, "upload", path, "--host", "fake", "--force", env=only_extras)
    assert done.returncode == 0, done.stderr
    assert fake_host.requests[-1].file.filename == "img0000-h.png"
    assert "--name-suffix" in run_in(contract_venv, "watch", "--help", env=only_extras).stdout


def test_a_format_plugin_renders_lines_in_upload_and_after_upload_failure_is_reported_once(
    contract_venv, fake_host, hosts_dir, images, only_extras
):
    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    paths = images(3)
    done = run_in(contract_venv, "upload", *paths, "--host", "fake", "--format", "org", env=only_extras)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith(f"[[{fake_host.url}/files/") for line in lines)
    assert [line.rpartition("][")[2] for line in lines] == [f"{p}]]" for p in paths]
    # after_upload raised on every file: the uploads are printed and recorded all the same, and said once
    lines = [line for line in done.stderr.splitlines() if "after_upload" in line]
    assert lines == [
        "picbeam: plugin 'picbeam_extras' (picbeam-extras): after_upload failed: RuntimeError: after_upload bug"
    ]
    history = json.loads(run_in(contract_venv, "history", "--json", env=only_extras).stdout.splitlines()[-1])
    assert history["host"] == "fake"
    done = run_in(contract_venv, "upload", paths[0], "--host", "fake", "--format", "nope", env=only_extras)
    assert done.returncode == 2 and "--format nope: unknown format" in done.stderr


def test_importer_and_command_plugins(contract_venv, tmp_path, only_extras):
    done = run_in(contract_venv, "hello", env=only_extras)
    assert done.returncode == 0 and done.stdout == "hello from a plugin\n", done.stderr
    source = tmp_path / "tiny.json"
    source.write_text(json.dumps({"kind": "tiny", "name": "tiny", "url": "https://tiny.example/up"}))
    done = run_in(contract_venv, "hosts", "import", source, env=only_extras)
    assert done.returncode == 0, done.stderr
    shown = json.loads(run_in(contract_venv, "hosts", "show", "tiny", "--json", env=only_extras).stdout)
    assert shown["endpoint"] == "https://tiny.example/up"


def test_hook_mistakes_are_one_line_each_with_a_did_you_mean(contract_venv):
    done = run_in(contract_venv, "plugins", "--json")
    plugins = {p["name"]: p for p in json.loads(done.stdout)}
    assert plugins["picbeam_nohooks"]["errors"] == [
        "implements no hook (decorate its functions with @picbeam.hookimpl)"
    ]
    assert plugins["picbeam_typo"]["errors"] == ["unknown hook 'register_host', did you mean register_hosts?"]
    assert plugins["picbeam_args"]["errors"] == [
        "hook 'register_hosts' has no argument 'regster' (it passes: register, config)"
    ]
    done = run_in(contract_venv, "hosts", "list")
    for name in ("picbeam_nohooks", "picbeam_typo", "picbeam_args"):
        assert len([line for line in done.stderr.splitlines() if f"'{name}'" in line]) == 1


def test_a_code_hosts_secret_options_are_masked_redacted_and_warned_about(contract_venv, fake_host, hosts_dir,
                                                                          images, tmp_path):  # fmt: skip
    token = "s3cr3t-token-value-123"
    env = {"PICBEAM_LOAD_PLUGINS": "picbeam_vault"}
    vault = write_host(hosts_dir, "myvault", extends="vault", endpoint=fake_host.endpoint(), token=token)
    os.chmod(vault, 0o644)
    write_host(hosts_dir, "other", endpoint=fake_host.endpoint(), url_path="data.url")
    shown = run_in(contract_venv, "hosts", "show", "myvault", env=env)
    assert token not in shown.stdout + shown.stderr and 'token = "***"' in shown.stdout
    assert shown.stderr.count("holds a literal secret (token)") == 1
    [path] = images(1)
    done = run_in(contract_venv, "upload", path, "--host", "other", env=env)  # another host: no warning
    assert done.returncode == 0 and "literal secret" not in done.stderr, done.stderr
    fake_host.reply(status=401, text=f"bad token {token}")
    done = run_in(contract_venv, "upload", path, "--host", "myvault", env=env)
    assert done.returncode == 1 and token not in done.stderr and "bad token ***" in done.stderr
    os.chmod(vault, 0o600)
    write_host(hosts_dir, "envvault", extends="vault", endpoint=fake_host.endpoint(), token="${VAULT_TOKEN}")
    done = run_in(contract_venv, "upload", path, "--host", "envvault", env=env)
    assert done.returncode == 2
    assert "host 'envvault': environment variable VAULT_TOKEN is not set (used in token)" in done.stderr


def test_a_plugin_crash_names_the_plugin_and_debug_prints_the_traceback(contract_venv, fake_host, hosts_dir,
                                                                        tmp_path):  # fmt: skip
    from picbeam.testing import write_sample_image

    env = {"PICBEAM_LOAD_PLUGINS": "picbeam_vault", "VAULT_TOKEN": "t"}
    write_host(hosts_dir, "myvault", extends="vault", endpoint=fake_host.endpoint(), token="${VAULT_TOKEN}")
    fake_host.reply(text="https://x.example/boom.png")
    path = write_sample_image(tmp_path / "boom.png")
    done = run_in(contract_venv, "upload", path, "--host", "myvault", env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "internal error in plugin 'picbeam_vault': KeyError: 'boom'; --debug shows the traceback" in done.stderr
    for extra_env, args in (({}, ["--debug"]), ({"PICBEAM_DEBUG": "1"}, [])):
        done = run_in(contract_venv, "upload", path, "--host", "myvault", "--force", *args, env={**env, **extra_env})
        assert done.returncode == 1 and "Traceback (most recent call last)" in done.stderr
        assert 'raise KeyError("boom")' in done.stderr


def test_a_flag_of_a_disabled_processor_is_a_usage_error(images):
    [path] = images(1)
    done = run_picbeam("upload", path, "--convert", "webp", env={"PICBEAM_DISABLE_PLUGINS": "convert"})
    assert done.returncode == 2
    assert "option 'convert' needs the 'convert' processor, which PICBEAM_DISABLE_PLUGINS disables" in done.stderr


def test_built_in_processors_run_whatever_plugins_are_selected(home):
    """Issue 11 item 17: PICBEAM_LOAD_PLUGINS=local once dropped metadata stripping."""
    from picbeam.samples import png

    photo = home / "gps.png"
    data = png(4, 4, seed=3)
    text = b"tEXtComment\x00secret place"
    import struct
    import zlib

    chunk = struct.pack(">I", len(text) - 4) + text + struct.pack(">I", zlib.crc32(text))
    photo.write_bytes(data[:33] + chunk + data[33:])
    done = run_picbeam("upload", photo, "--format", "json", env={"PICBEAM_LOAD_PLUGINS": "local"})
    assert done.returncode == 0, done.stderr
    stored = Path(json.loads(done.stdout)["url"].removeprefix("file://")).read_bytes()
    assert b"secret place" not in stored and b"secret place" in photo.read_bytes()


def test_the_library_takes_one_path_and_typed_keywords(home, fake_host, hosts_dir):
    import picbeam
    from picbeam.testing import write_sample_image

    write_host(hosts_dir, "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    photo = write_sample_image(home / "photo.png")
    results = picbeam.upload(str(photo), "fake")
    assert len(results) == 1 and results[0].ok and len(fake_host.requests) == 1
    with pytest.raises(picbeam.ConfigError, match=r"^keyword argument max_widht: unknown option, did you mean "
                                                  r"max_width\?$"):  # fmt: skip
        picbeam.upload(photo, "fake", max_widht=10)  # type: ignore[call-arg]
    with pytest.raises(picbeam.ConfigError, match="keyword argument: option 'jobs' must be a whole number"):
        picbeam.upload(photo, "fake", jobs="8")  # type: ignore[arg-type]
    folder = home / "mixed"
    write_sample_image(folder / "a.png", seed=1)
    write_sample_image(folder / "b.png", seed=2)
    (folder / "notes.txt").write_text("not an image")
    results = picbeam.upload(folder, "fake", exclude=["b.*"])
    assert [r.path for r in results] == [str(folder / "a.png")]
    assert {(Path(s.path).name, s.reason) for s in results.skipped} == {
        ("notes.txt", "not an image"),
        ("b.png", "left out by include/exclude"),
    }


def test_the_library_lists_history_and_deletes(home):
    import picbeam
    from picbeam.testing import write_sample_image

    assert picbeam.history() == []
    [result] = picbeam.upload(write_sample_image(home / "x.png"), "local")
    stored = Path(result.url.removeprefix("file://"))
    assert stored.exists() and [row["url"] for row in picbeam.history()] == [result.url]
    [deleted] = picbeam.delete(result.url)
    assert deleted.ok and not stored.exists() and picbeam.history()[0]["deleted"]


def test_delete_with_a_missing_variable_is_a_configuration_error(home, hosts_dir, fake_host):
    """Issue 19 item 8: configuration errors exit 2, delete included."""
    write_host(hosts_dir, "tok", endpoint=fake_host.endpoint(), url_path="data.url", delete_endpoint="/del",
               headers={"Authorization": "${TOK_SECRET}"})  # fmt: skip
    from picbeam.testing import write_sample_image

    photo = write_sample_image(home / "d.png")
    done = run_picbeam("upload", photo, "--host", "tok", env={"TOK_SECRET": "abcdefgh"})
    assert done.returncode == 0, done.stderr
    done = run_picbeam("delete", "--last", "1")
    assert done.returncode == 2 and "environment variable TOK_SECRET is not set" in done.stderr


def test_watch_takes_what_upload_takes():
    from picbeam.options import COMMANDS

    assert COMMANDS["watch"] == COMMANDS["upload"]
    upload_help, watch_help = run_picbeam("upload", "--help").stdout, run_picbeam("watch", "--help").stdout
    for flag in ("--set", "--include", "--exclude", "--dry-run", "--format", "--convert", "--max-width"):
        assert flag in upload_help and flag in watch_help


def test_config_set_keeps_comments_and_writes_valid_toml(home):
    import tomllib

    from picbeam.config import config_file

    path = config_file()
    path.parent.mkdir(parents=True)
    path.write_text("# my settings\njobs = 2  # two at a time\n\n[process]\n# smaller pictures\nmax_width = 800\n")
    assert run_picbeam("config", "set", "ledger", "del\x7fete").returncode == 0
    assert run_picbeam("config", "set", "process.quality", "70").returncode == 0
    text = path.read_text()
    assert "# my settings" in text and "# two at a time" in text and "# smaller pictures" in text
    assert tomllib.loads(text) == {"jobs": 2, "ledger": "del\x7fete", "process": {"max_width": 800,
                                                                                       "quality": 70}}  # fmt: skip


def test_hosts_show_prints_no_none(hosts_dir):
    import tomllib

    write_host(hosts_dir, "mine", endpoint="https://x.example/up", url_path="url", process={"max_width": 0})
    done = run_picbeam("hosts", "show", "mine")
    assert done.returncode == 0 and "None" not in done.stdout
    tomllib.loads(done.stdout)


def test_config_and_data_folders_off_linux_come_from_platformdirs(monkeypatch):
    import platformdirs
    from picbeam import config

    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.delenv("XDG_DATA_HOME")
    assert config.config_dir() == Path.home() / ".config" / "picbeam"  # Linux keeps its paths
    monkeypatch.setattr(config.sys, "platform", "darwin")
    assert config.config_dir() == Path(platformdirs.user_config_dir()) / "picbeam"
    assert config.data_dir() == Path(platformdirs.user_data_dir()) / "picbeam"


def test_no_private_aiohttp_imports():
    root = Path(__file__).parent.parent
    for path in [*root.glob("core/**/*.py"), *root.glob("plugins/*.py")]:
        assert "aiohttp.helpers" not in path.read_text(), path


def test_the_proxy_of_the_environment_is_used_with_its_credentials(fake_host, hosts_dir, images):
    import base64

    write_host(hosts_dir, "far", endpoint="http://upload.invalid/up", url_path="data.url")
    [path] = images(1)
    proxy = fake_host.url.replace("http://", "http://user:pa55@")
    done = run_picbeam("upload", path, "--host", "far", env={"HTTP_PROXY": proxy, "NO_PROXY": ""})
    assert done.returncode == 0, done.stderr
    [request] = fake_host.requests
    assert request.headers["Proxy-Authorization"] == "Basic " + base64.b64encode(b"user:pa55").decode()
    done = run_picbeam("upload", path, "--host", "far", "--force", env={"HTTP_PROXY": proxy,
                                                                       "NO_PROXY": "upload.invalid"})  # fmt: skip
    assert done.returncode == 1 and len(fake_host.requests) == 1


def test_a_one_file_upload_imports_nothing_it_does_not_use(home, images):
    import subprocess
    import sys

    [path] = images(1)
    code = (
        "import sys\nfrom picbeam.cli import main\ntry:\n    main(['upload', sys.argv[1], '--no-ledger'])\n"
        "except SystemExit:\n    pass\nprint(' '.join(sorted(m for m in sys.modules if m.startswith('picbeam'))))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    loaded = set(done.stdout.splitlines()[-1].split())
    assert "picbeam.engine" in loaded, done.stderr
    for unused in ("picbeam.importers", "picbeam.server", "picbeam.scaffold", "picbeam.cli.watch",
                   "picbeam.exporters"):  # fmt: skip
        assert unused not in loaded


@pytest.mark.parametrize(
    ("status", "transient"),
    [(400, False), (401, False), (404, False), (408, True), (425, True), (429, True), (500, True), (501, False),
     (502, True), (503, True), (504, True), (505, False), (507, True), (520, True)],
)  # fmt: skip
def test_one_http_error_classifier_for_every_host(status, transient):
    from picbeam.answers import http_error
    from picbeam.errors import transient_status
    from picbeam.plugins.github import _github_error
    from picbeam.storage import status_error

    assert transient_status(status) is transient
    assert http_error(status, {}, b"").transient is transient
    assert status_error(status, "", {}).transient is transient
    if status not in (403, 429):  # GitHub's own throttling rules come first
        assert _github_error(status, {"message": "x"}, {}, "o/r", None).transient is transient


def test_the_api_keywords_match_the_declarations():
    import typing

    from picbeam.options import API_ONLY, API_RUN, RUN_OPTIONS, UploadOptions
    from picbeam.processing import process_options

    keywords = set(typing.get_type_hints(UploadOptions))
    assert keywords == {*API_RUN, *API_ONLY, *process_options()}
    assert set(API_RUN) <= set(RUN_OPTIONS)
    hints = typing.get_type_hints(UploadOptions)
    for name, option in process_options().items():
        assert option.type in typing.get_args(hints[name]), name


def test_mypy_rejects_wrong_keywords_of_the_sync_api(tmp_path):
    """Issue 19 item 3: `job=8` or `recursive="yes"` no longer pass the type checker."""
    import subprocess
    import sys

    pytest.importorskip("mypy", reason="mypy is in the test extra")
    (tmp_path / "stub").mkdir()
    (tmp_path / "stub" / "picbeam").symlink_to(Path(__file__).parent.parent / "core")  # core/ is picbeam
    script = tmp_path / "script.py"
    script.write_text(
        "import picbeam\n"
        "picbeam.upload('photo.png', job=8)\n"
        "picbeam.upload('photo.png', recursive='yes')\n"
        "picbeam.upload(['a.png'], max_width='wide')\n"
        "picbeam.upload('photo.png', jobs=8, recursive=True, max_width=1600, convert='webp')\n"
    )
    # Only the API's own modules are read (the rest is Any): seconds, not the whole package.
    api = [str(tmp_path / "stub" / "picbeam" / f"{name}.py") for name in ("__init__", "api", "options", "items")]
    done = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary", "--follow-imports=skip",
                           "--cache-dir", str(tmp_path / "cache"), str(script), *api], capture_output=True,
                          text=True, env={**os.environ, "MYPYPATH": str(tmp_path / "stub")}, timeout=300)  # fmt: skip
    errors = [line for line in done.stdout.splitlines() if line.startswith(str(script)) and ": error:" in line]
    assert [line.removeprefix(str(script)).split(":")[1] for line in errors] == ["2", "3", "4"], done.stdout
    assert 'did you mean "jobs"' in errors[0]
