"""`picbeam plugins new`: each kind of package installs with pip into a fresh venv, works there, and its
generated tests pass as generated."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from picbeam.testing import run_picbeam, write_host, write_sample_image
from test_plugins import run_in, venv_with

KINDS = ("host", "processor", "format")


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path], dict[str, list[str]]]:
    root = tmp_path_factory.mktemp("scaffold")
    packages = {}
    for kind in KINDS:
        done = run_picbeam("plugins", "new", f"demo-{kind}", "--kind", kind, "--dir", root)
        assert done.returncode == 0, done.stderr
        packages[kind] = Path(done.lines[0])
    written = {kind: sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
               for kind, folder in packages.items()}  # fmt: skip
    return venv_with(root, *packages.values()), packages, written


def test_the_packages_have_what_a_plugin_needs(scaffolded):
    _, packages, written = scaffolded
    for kind, package in packages.items():
        names = written[kind]
        module = f"picbeam_demo_{kind}"
        assert names == ["README.md", f"{module}.py", "pyproject.toml", "tests/conftest.py",
                         f"tests/test_demo_{kind}.py"]  # fmt: skip
        assert f'demo_{kind} = "{module}"' in (package / "pyproject.toml").read_text()
    sources = [str(p / name) for p in packages.values() for name in ("tests", p.name.replace("-", "_") + ".py")]
    ruff = subprocess.run([sys.executable, "-m", "ruff", "check", "--line-length", "120", *sources],
                          capture_output=True, text=True)  # fmt: skip
    assert ruff.returncode == 0, ruff.stdout


@pytest.mark.parametrize("kind", KINDS)
def test_the_generated_tests_pass_as_generated(scaffolded, kind):
    venv, packages, _ = scaffolded
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PICBEAM_", "PYTEST_"))}
    # hypothesis's plugin (seen through the outer environment, unused here) takes over a second to import
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:randomly", "-p",
                           "no:cacheprovider", "-p", "no:hypothesispytest", str(packages[kind] / "tests")],
                          capture_output=True, text=True, cwd=packages[kind], env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout


def test_the_installed_plugins_work(scaffolded, fake_host, hosts_dir, tmp_path):
    venv, _, _ = scaffolded
    env = {"PICBEAM_LOAD_PLUGINS": "demo_host,demo_processor,demo_format", "TOKEN": "tok-123456"}
    write_host(hosts_dir, "mine", extends="demo_host", endpoint=fake_host.endpoint(), token="${TOKEN}")
    photo = write_sample_image(tmp_path / "photo.png")
    fake_host.reply(text="https://files.example/photo.png")
    done = run_in(venv, "upload", photo, "--host", "mine", "--demo-processor-tag", "XYZ", "--format",
                  "demo_format", env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{photo} -> https://files.example/photo.png\n"
    [request] = fake_host.requests
    assert request.body.endswith(b"XYZ") and request.headers["Authorization"] == "Bearer tok-123456"
    listed = run_in(venv, "plugins", env=env).stdout
    assert all(f"demo_{kind}" in listed for kind in KINDS)


def test_a_bad_name_or_kind_is_one_line(tmp_path):
    done = run_picbeam("plugins", "new", "9lives", "--dir", tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("picbeam: error: plugin name '9lives'")
    done = run_picbeam("plugins", "new", "ok", "--kind", "exporter", "--dir", tmp_path)
    assert done.returncode == 2 and "--kind 'exporter': expected one of host, processor, format" in done.stderr
