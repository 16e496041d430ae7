"""Third-party plugins: pip-installed distributions found through the `picbeam` entry-point group."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest
from picbeam.testing import write_host


def make_distribution(root: Path, name: str, module: str, code: str) -> Path:
    """A wheel of one module with a ``picbeam`` entry point, for pip to install. Written directly: a
    setuptools build costs seconds per throwaway distribution (the scaffold's packages are built from source)."""
    dist = name.replace("-", "_")
    info = f"{dist}-1.2.3.dist-info"
    files = {
        f"{module}.py": textwrap.dedent(code),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: picbeam-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": f"[picbeam]\n{module} = {module}\n",
    }
    record = ""
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record += f"{path},sha256={digest},{len(text.encode())}\n"
    files[f"{info}/RECORD"] = record + f"{info}/RECORD,,\n"
    root.mkdir(parents=True, exist_ok=True)
    wheel = root / f"{dist}-1.2.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def venv_with(root: Path, *sources: Path) -> Path:
    """A fresh venv under ``root`` that sees picbeam's environment, with these distributions (wheels or
    source folders) installed."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    ask = "import sysconfig; print(sysconfig.get_path('purelib'))"
    answer = subprocess.run([str(venv / "bin" / "python"), "-c", ask], capture_output=True, text=True, check=True)
    site = Path(answer.stdout.strip())
    # addsitedir (not a bare path) so the outer environment's own .pth files, such as an editable
    # install's finder, are processed too.
    (site / "outer.pth").write_text(f"import site; site.addsitedir({sysconfig.get_path('purelib')!r})\n")
    # One pip run for all of them: pip's start-up is most of the cost of installing a tiny distribution.
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps",
         "--no-build-isolation", "--no-index", *map(str, sources)],
        check=True,
    )  # fmt: skip
    return venv


@pytest.fixture(scope="module")
def plugin_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv that sees picbeam's environment and has three throwaway plugins pip-installed."""
    root = tmp_path_factory.mktemp("plugins")
    good = make_distribution(
        root,
        "picbeam-example",
        "picbeam_example",
        """
        from picbeam import HostSpec, hookimpl

        @hookimpl
        def register_hosts(register):
            register(HostSpec(name="example", endpoint="http://127.0.0.1:1/api/upload",
                              file_field="file", url_path="data.url"))
    """,
    )
    broken = make_distribution(
        root,
        "picbeam-broken",
        "picbeam_broken",
        """
        import a_module_that_does_not_exist
    """,
    )
    clash = make_distribution(
        root,
        "picbeam-clash",
        "picbeam_clash",
        """
        from picbeam import HostSpec, hookimpl

        @hookimpl
        def register_hosts(register):
            register(HostSpec(name="smms", endpoint="https://elsewhere.example/", url_path="url"))
            register(HostSpec(name="clash-ok", endpoint="https://elsewhere.example/", url_path="url"))

        @hookimpl
        def register_comands(app):  # misspelled on purpose: reported, not ignored
            pass
    """,
    )
    return venv_with(root, good, broken, clash)


def run_in(venv: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [str(venv / "bin" / "python"), "-m", "picbeam", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_third_party_host_appears_and_uploads(plugin_venv, fake_host, images, hosts_dir):
    done = run_in(plugin_venv, "hosts", "list", "--json")
    names = [h["name"] for h in json.loads(done.stdout)["hosts"]]
    assert "example" in names and "smms" in names and "local" in names
    [path] = images(1)
    done = run_in(plugin_venv, "upload", path, "--host", "example", "--set", f"endpoint={fake_host.endpoint()}")
    assert done.returncode == 0, done.stderr
    assert fake_host.requests[0].file.data == path.read_bytes()


def test_broken_plugins_are_reported_in_one_line_each(plugin_venv):
    done = run_in(plugin_venv, "plugins", "--json")
    plugins = {p["name"]: p for p in json.loads(done.stdout)}
    assert plugins["picbeam_example"]["distribution"] == "picbeam-example"
    assert plugins["picbeam_example"]["version"] == "1.2.3" and plugins["picbeam_example"]["hosts"] == ["example"]
    assert (
        "ModuleNotFoundError: No module named 'a_module_that_does_not_exist'" in plugins["picbeam_broken"]["errors"][0]
    )
    assert "register_comands" in plugins["picbeam_clash"]["errors"][0]
    lines = [line for line in done.stderr.splitlines() if "picbeam_broken" in line]
    assert len(lines) == 1 and lines[0].startswith("picbeam: plugin 'picbeam_broken' (picbeam-broken): import failed")
    assert "Traceback" not in done.stderr


def test_misspelled_hook_unregisters_only_that_plugin(plugin_venv):
    done = run_in(plugin_venv, "hosts", "list", "--json")
    names = [h["name"] for h in json.loads(done.stdout)["hosts"]]
    assert "clash-ok" not in names and "example" in names


def test_name_clash_names_both_sources():
    import types

    from picbeam import HostSpec, hookimpl
    from picbeam.config import Config
    from picbeam.loader import Plugins

    def plugin(name: str, endpoint: str) -> types.ModuleType:
        module = types.ModuleType(name)

        @hookimpl
        def register_hosts(register):
            register(HostSpec(name="dup", endpoint=endpoint, url_path="u", source=f"{name}.py"))

        module.register_hosts = register_hosts
        return module

    plugins = Plugins()
    plugins.add(plugin("first", "https://a.example/"), "first")
    plugins.add(plugin("second", "https://b.example/"), "second")
    registry = plugins.hosts(Config())
    errors = list(plugins.errors())
    assert any("'dup' is defined twice" in e and "first.py" in e and "second.py" in e for e in errors), errors
    assert registry.names() == ["dup"]  # the first registration stays usable


def test_hosts_file_named_like_a_python_preset_overrides_it(hosts_dir):
    """Issue 13 item 5: hosts.d overrides presets, Python ones included (it used to say "defined twice")."""
    import json

    from picbeam.testing import run_picbeam

    write_host(hosts_dir, "smms", endpoint="https://x.example/", url_path="u")
    done = run_picbeam("hosts", "list", "--json")
    assert done.returncode == 0 and done.stderr == ""
    [smms] = [h for h in json.loads(done.stdout)["hosts"] if h["name"] == "smms"]
    assert smms["plugin"] == "hosts_folder" and smms["source"].endswith("smms.toml")
    assert json.loads(run_picbeam("hosts", "show", "smms", "--json").stdout)["endpoint"] == "https://x.example/"
