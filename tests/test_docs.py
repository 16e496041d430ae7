"""Documentation that cannot drift (as datasette does): every hook documented with its signature and
exercised by a test, the README's generated tables current, and every code example run."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import textwrap
import tomllib
import types
from pathlib import Path

import pytest
from picbeam import hookspecs
from picbeam.loader import HOOKS, Hooks, Plugins

ROOT = Path(__file__).parent.parent
DOCS = {name: (ROOT / name).read_text(encoding="utf-8") for name in ("README.md", "docs/plugins.md")}
TESTS = [p for p in (ROOT / "tests").glob("test_*.py") if p.name != "test_docs.py"]


def blocks(language: str) -> list[tuple[str, int, str]]:
    """(document, block number, code) of every fenced block in that language."""
    found = []
    for name, text in DOCS.items():
        for number, match in enumerate(re.finditer(rf"^```{language}\n(.*?)^```", text, re.S | re.M), 1):
            found.append((name, number, match.group(1)))
    return found


def signature(hook: str) -> str:
    return f"{hook}({', '.join(inspect.signature(getattr(hookspecs, hook)).parameters)})"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_signature(hook):
    assert f"`{signature(hook)}`" in DOCS["docs/plugins.md"]
    assert getattr(hookspecs, hook).__doc__


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    implemented = [p.name for p in TESTS if re.search(rf"def {hook}\(", p.read_text(encoding="utf-8"))]
    assert implemented, f"no test implements {hook}"


@pytest.mark.parametrize("hook", [h for h in HOOKS if h != "prepare_upload"])
def test_every_hook_is_called_through_the_facade(hook):
    # prepare_upload is the simple form of a processor: Hooks.register_processors collects it.
    assert callable(getattr(Hooks, hook))


def test_the_readme_tables_are_current():
    from picbeam.options import readme_tables, rewrite

    assert rewrite(DOCS["README.md"], readme_tables()) == DOCS["README.md"], "run: python -m picbeam.options"


def test_every_hostspec_field_is_in_the_schema_table():
    import dataclasses

    from picbeam import HostSpec

    schema = DOCS["README.md"].split("### The hosts.d schema", 1)[1].split("###", 1)[0]
    for f in dataclasses.fields(HostSpec):
        if f.name not in ("name", "source"):
            assert f"`{f.name}`" in schema, f.name


def test_the_readme_links_the_plugin_guide():
    assert "(docs/plugins.md)" in DOCS["README.md"]


@pytest.mark.parametrize(("document", "number", "code"), blocks("toml"), ids=lambda v: str(v)[:20])
def test_toml_examples_parse(document, number, code):
    tomllib.loads(code)


PYTHON = blocks("python")
PLUGINS = [b for b in PYTHON if "@hookimpl" in b[2]]
TEST_EXAMPLES = [b for b in PYTHON if "def test_" in b[2]]
SCRIPTS = [b for b in PYTHON if b not in PLUGINS and b not in TEST_EXAMPLES]


def test_every_python_example_is_run():
    assert len(PYTHON) == len(PLUGINS) + len(TEST_EXAMPLES) + len(SCRIPTS) and PLUGINS and TEST_EXAMPLES and SCRIPTS


@pytest.mark.parametrize(("document", "number", "code"), PLUGINS, ids=lambda v: str(v)[:20])
def test_plugin_examples_load_and_register(document, number, code):
    """Each plugin example, loaded as a module like an entry point: no loading error, and every hook it
    implements registers something."""
    from picbeam.config import Config

    module = types.ModuleType(f"example_{number}")
    exec(compile(code, f"{document} example {number}", "exec"), module.__dict__)
    plugins = Plugins()
    plugins.add(module, module.__name__)
    assert list(plugins.errors()) == []
    if hasattr(module, "register_hosts"):
        assert plugins.hosts(Config()).entries
    if hasattr(module, "register_processors"):
        assert plugins.hooks.register_processors()
    if hasattr(module, "register_formats"):
        assert plugins.hooks.register_formats()
    if hasattr(module, "register_importers"):
        assert plugins.hooks.register_importers()
    if hasattr(module, "register_commands"):
        import typer

        app = typer.Typer()
        plugins.hooks.register_commands(app)
        assert app.registered_commands
    assert list(plugins.errors()) == []


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PICBEAM_", "PYTEST_"))}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"), **extra)
    return env


@pytest.mark.parametrize(("document", "number", "code"), TEST_EXAMPLES, ids=lambda v: str(v)[:20])
def test_test_examples_pass(document, number, code, tmp_path):
    folder = tmp_path / "example"
    folder.mkdir()
    (folder / "conftest.py").write_text('pytest_plugins = ["picbeam.testing"]\n')
    (folder / f"test_example_{number}.py").write_text(code)
    # hypothesis's plugin, which the example does not use, takes over a second to import
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                           "-p", "no:hypothesispytest", str(folder)], capture_output=True, text=True, cwd=folder,
                          env=_clean_env(tmp_path), timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("document", "number", "code"), SCRIPTS, ids=lambda v: str(v)[:20])
def test_script_examples_run(document, number, code, tmp_path, fake_host):
    """The API examples, run as scripts against a FakeHost standing in for the hosts they name."""
    from picbeam.testing import write_host, write_sample_image

    hosts = tmp_path / "hosts.d"
    write_host(hosts, "smms", extends="smms", endpoint=fake_host.endpoint())  # a plugin's host, customised
    write_host(hosts, "imgbb", endpoint=fake_host.endpoint(), url_path="data.url")  # replaces the preset file
    write_sample_image(tmp_path / "a.png", seed=1)
    write_sample_image(tmp_path / "shots" / "b.png", seed=2)
    script = tmp_path / "example.py"
    script.write_text(textwrap.dedent(code))
    env = _clean_env(tmp_path, PICBEAM_HOSTS_DIR=str(hosts), SMMS_TOKEN="example-token")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert fake_host.requests


def test_the_guide_names_everything_a_plugin_uses():
    """A plugin written from docs/plugins.md alone needs no reading of picbeam's source: every public name
    it imports and every test-kit name is explained there."""
    import picbeam
    import picbeam.testing

    guide = DOCS["docs/plugins.md"]
    for name in picbeam.__all__:
        if name not in ("__version__", "upload", "upload_async", "delete", "history", "SpecHost", "BrokenHost",
                        "HostDraft"):  # the API (README) and the registry's own types  # fmt: skip
            assert f"`{name}" in guide or f" {name}," in guide or f"{name}(" in guide, name
    for name in ("FakeHost", "Reply", "run_picbeam", "write_host", "write_sample_image", "fake_host",
                 "picbeam_home", "only_plugins", "sample_image", "inject_faults", "respond_with"):  # fmt: skip
        assert name in guide, name
    for attribute in ("configured", "prepared", "upload", "delete", "finish", "describe", "secret_values",
                      "secret_options", "options", "timeout", "result", "destination", "max_bytes"):  # fmt: skip
        assert f"`{attribute}" in guide, attribute
