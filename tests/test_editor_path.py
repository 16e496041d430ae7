"""The editor path (issue 15 item 2): Typora and PicGo-app run one `picbeam upload FILE` per paste, so a
one-file upload imports only the plugins it uses. What each plugin implements is learnt by the first run
(the plugin index, a cache); later runs leave a plugin that only provides hosts or commands unimported
until a command needs it. Behaviour is asserted here, never timings: the benchmark reports those."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from picbeam.loader import HookIndex
from picbeam.testing import write_host
from test_plugins import make_distribution, venv_with

# Runs the real command line, then prints the plugin modules the process imported (stdout's last line).
PROBE = """
import atexit, json, sys
atexit.register(lambda: print(json.dumps(sorted(
    m for m in sys.modules if m.startswith(("picbeam.plugins.", "picbeam_"))))))
sys.argv = ["picbeam", *sys.argv[1:]]
from picbeam.cli import main
main()
"""

HOST_PLUGINS = ["cfimgbed", "cos", "dogecloud", "ftp", "github", "oss", "qiniu", "s3", "sftp", "upyun", "webdav"]


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with a third-party host plugin (host and command only: deferred like a built-in host
    plugin), one that fails to import, and one with an after_upload hook (imported by every upload)."""
    root = tmp_path_factory.mktemp("editor")
    example = make_distribution(
        root,
        "picbeam-editor-example",
        "picbeam_editor_example",
        """
        from picbeam import HostSpec, hookimpl

        @hookimpl
        def register_hosts(register):
            register(HostSpec(name="editor-example", endpoint="http://127.0.0.1:1/upload", url_path="url"))

        @hookimpl
        def register_commands(app):
            @app.command("editor-hello")
            def hello():
                print("hello from a deferred plugin")
    """,
    )
    broken = make_distribution(root, "picbeam-editor-broken", "picbeam_editor_broken", "import not_a_module_at_all\n")
    watcher = make_distribution(
        root,
        "picbeam-editor-watcher",
        "picbeam_editor_watcher",
        """
        import sys
        from picbeam import hookimpl

        @hookimpl
        def after_upload(result):
            print(f"watcher saw {result.host}", file=sys.stderr)
    """,
    )
    return venv_with(root, example, broken, watcher)


@pytest.fixture
def run(venv: Path, picbeam_home: Path, hosts_dir: Path):
    """``run(*args)``: the picbeam command in the venv, with the plugin modules it imported."""

    def go(*args: str | Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
        done = subprocess.run(
            [str(venv / "bin" / "python"), "-c", PROBE, *map(str, args)],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=120,
        )
        rest, _, probe = done.stdout.rstrip("\n").rpartition("\n")
        done.stdout = rest + "\n" if rest else ""
        return done, json.loads(probe) if probe.startswith("[") else []

    return go


def test_one_file_upload_imports_no_other_host_plugin_and_reports_the_broken_one(run, fake_host, images, hosts_dir):
    write_host(hosts_dir, "mine", endpoint=fake_host.endpoint(), url_path="data.url")
    first, second = images(2)
    cold, cold_modules = run("upload", first, "--host", "mine")
    assert cold.returncode == 0, cold.stderr
    assert "picbeam.plugins.s3" in cold_modules  # the first run learns what every plugin implements
    done, modules = run("upload", second, "--host", "mine")
    assert done.returncode == 0, done.stderr
    assert [request.file.data for request in fake_host.requests] == [first.read_bytes(), second.read_bytes()]
    assert "picbeam.plugins.hosts_folder" in modules and "picbeam.plugins.strip_metadata" in modules
    assert not [m for m in modules if m.removeprefix("picbeam.plugins.") in [*HOST_PLUGINS, "local"]], modules
    # A third-party plugin that only provides a host is deferred exactly like the built-in ones...
    assert "picbeam_editor_example" not in modules
    # ...one with a hook the upload calls is imported, and called...
    assert "picbeam_editor_watcher" in modules and "watcher saw mine" in done.stderr
    # ...and a broken one is still reported, in one line, and the upload carries on.
    broken = [line for line in done.stderr.splitlines() if "picbeam_editor_broken" in line]
    assert len(broken) == 1 and "import failed: ModuleNotFoundError" in broken[0], done.stderr
    assert "Traceback" not in done.stderr


def test_a_plugin_host_is_resolved_through_the_plugin_of_its_name(run, images, hosts_dir, picbeam_home):
    first, second = images(2)
    run("upload", first, "--host", "local")
    done, modules = run("upload", second, "--host", "local")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("file://")
    assert "picbeam.plugins.local" in modules and "picbeam.plugins.s3" not in modules
    # A hosts.d file that extends a plugin's host brings in that plugin alone.
    folder = picbeam_home / "elsewhere"
    write_host(hosts_dir, "notes", extends="local", root=str(folder))
    done, modules = run("upload", second, "--host", "notes")
    assert done.returncode == 0, done.stderr
    assert [p.name for p in folder.rglob("*.png")] and "picbeam.plugins.s3" not in modules


def test_a_host_no_plugin_is_named_after_asks_every_plugin(run, images):
    [path] = images(1)
    run("hosts", "list")  # the index is warm
    done, modules = run("upload", path, "--host", "editor-example", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "picbeam_editor_example" in modules
    done, _ = run("upload", path, "--host", "no-such-host")
    assert done.returncode == 2 and "unknown host 'no-such-host'" in done.stderr


def test_listings_and_plugin_commands_still_show_every_plugin(run, images, hosts_dir):
    [path] = images(1)
    run("upload", path, "--host", "local")  # the index is warm: later runs defer the host plugins
    done, _ = run("hosts", "list", "--json")
    names = {host["name"] for host in json.loads(done.stdout)["hosts"]}
    assert {"s3", "github", "smms", "local", "r2", "editor-example"} <= names
    done, _ = run("plugins", "--json")
    plugins = {plugin["name"]: plugin for plugin in json.loads(done.stdout)}
    assert plugins["s3"]["hosts"] == ["s3"] and plugins["picbeam_editor_example"]["hosts"] == ["editor-example"]
    assert plugins["picbeam_editor_example"]["version"] == "1.2.3"
    done, _ = run("editor-hello")
    assert done.returncode == 0 and "hello from a deferred plugin" in done.stdout, done.stderr
    done, _ = run("--help")
    assert "editor-hello" in done.stdout


def test_a_plugin_that_changes_is_learnt_again(run, venv, fake_host, images, hosts_dir):
    """The index is keyed by the module file: a plugin edited to implement after_upload gets it called."""
    write_host(hosts_dir, "mine", endpoint=fake_host.endpoint(), url_path="data.url")
    first, second = images(2)
    run("upload", first, "--host", "mine")
    [module] = venv.rglob("picbeam_editor_example.py")
    original = module.read_text()
    try:
        module.write_text(
            original
            + "\n@hookimpl\ndef after_upload(result):\n    print('example saw it', file=__import__('sys').stderr)\n"
        )
        done, modules = run("upload", second, "--host", "mine")
    finally:
        module.write_text(original)
    assert done.returncode == 0 and "example saw it" in done.stderr, done.stderr
    assert "picbeam_editor_example" in modules


def damaged_listing(venv: Path) -> str:
    """A listing whose stamps match the venv's (so it is trusted) but whose entries are of the wrong types."""
    ask = "import json, sys; from picbeam.loader import _stamp; print(json.dumps(_stamp(sys.path)))"
    done = subprocess.run([str(venv / "bin" / "python"), "-c", ask], capture_output=True, text=True, check=True)
    return json.dumps({"version": HookIndex.VERSION, "hooks": {}, "points": {
        "stamp": json.loads(done.stdout), "metadata": [], "entries": [["s3", 5, None, None]]}})  # fmt: skip


@pytest.mark.parametrize(
    "index",
    ["not json {", '{"version": 2, "hooks": {"x": 3}, "points": {"stamp": 1}}', '{"version": 2, "hooks": []}', None],
)
def test_a_damaged_index_is_ignored_and_rewritten(run, venv, fake_host, images, hosts_dir, picbeam_home, index):
    write_host(hosts_dir, "mine", endpoint=fake_host.endpoint(), url_path="data.url")
    cache = picbeam_home / "cache" / "picbeam" / "plugins.json"
    cache.parent.mkdir(parents=True)
    cache.write_text(index or damaged_listing(venv))
    [path] = images(1)
    done, modules = run("upload", path, "--host", "mine")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "picbeam.plugins.s3" in modules  # nothing trusted: everything imported, and learnt
    assert json.loads(cache.read_text())["version"] == HookIndex.VERSION


def test_a_cache_folder_that_cannot_be_written_changes_nothing(
    run, fake_host, images, hosts_dir, picbeam_home, monkeypatch
):
    write_host(hosts_dir, "mine", endpoint=fake_host.endpoint(), url_path="data.url")
    blocker = picbeam_home / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # its "picbeam" folder cannot be made
    for path in images(2):
        done, _ = run("upload", path, "--host", "mine")
        assert done.returncode == 0, done.stderr
        said = [line for line in done.stderr.splitlines() if "picbeam_editor_broken" not in line]
        assert said == ["watcher saw mine"], done.stderr  # nothing about the cache
    assert len(fake_host.requests) == 2


def test_a_plugin_installed_after_the_index_was_written_is_found(run, venv, fake_host, images, hosts_dir, tmp_path):
    """The listing of entry points is kept with sys.path's folders' times: pip installing changes one."""
    write_host(hosts_dir, "mine", endpoint=fake_host.endpoint(), url_path="data.url")
    first, second = images(2)
    done, modules = run("upload", first, "--host", "mine")
    assert "picbeam_editor_late" not in modules
    late = make_distribution(
        tmp_path,
        "picbeam-editor-late",
        "picbeam_editor_late",
        """
        import sys
        from picbeam import hookimpl

        @hookimpl
        def after_upload(result):
            print("the late plugin saw it", file=sys.stderr)
    """,
    )
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps"]
    subprocess.run([*pip, "--no-build-isolation", "--no-index", str(late)], check=True)
    try:
        done, modules = run("upload", second, "--host", "mine")
    finally:
        subprocess.run([*pip[:5], "uninstall", "-q", "-y", "picbeam-editor-late"], check=True)
    assert done.returncode == 0 and "the late plugin saw it" in done.stderr, done.stderr
    done, modules = run("upload", second, "--host", "mine", "--force")
    assert "picbeam_editor_late" not in modules and "the late plugin" not in done.stderr


# The collector while `picbeam` runs: paused for start-up, collecting during the work, and start-up's
# objects frozen when the process ends (its last collection would walk them all once more).
COLLECTOR_PROBE = """
import asyncio, atexit, gc, sys
seen = {}
run = asyncio.run
def watched(work):
    seen["work"] = gc.isenabled()
    return run(work)
asyncio.run = watched
atexit.register(lambda: print("collector", seen.get("work"), gc.isenabled(), gc.get_freeze_count() > 10_000))
sys.argv = ["picbeam", *sys.argv[1:]]
from picbeam.cli import main
main()
"""


def test_the_collector_runs_during_the_work_and_start_up_is_frozen_at_exit(fake_host, images, hosts_dir):
    write_host(hosts_dir, "mine", endpoint=fake_host.endpoint(), url_path="data.url")
    (image,) = images(1)
    done = subprocess.run(
        [sys.executable, "-c", COLLECTOR_PROBE, "upload", str(image), "--host", "mine"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "collector True True True"
    assert len(fake_host.requests) == 1


def test_main_called_from_python_leaves_the_collector_as_it_found_it(fake_host, images, hosts_dir):
    import gc

    from picbeam.cli import main

    write_host(hosts_dir, "mine", endpoint=fake_host.endpoint(), url_path="data.url")
    (image,) = images(1)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    with pytest.raises(SystemExit) as stopped:
        main(["upload", str(image), "--host", "mine"])
    assert stopped.value.code in (0, None)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()
    try:
        with pytest.raises(SystemExit):
            main(["upload", str(image), "--host", "mine"])
        assert not gc.isenabled() and gc.get_freeze_count() == 0
    finally:
        gc.enable()
    assert len(fake_host.requests) == 1  # the second run reused the first's upload
