"""`picbeam plugins new`: a pip-installable plugin package whose tests pass as generated.

One package per kind: ``host`` (a :class:`~picbeam.Host` subclass configured from a hosts.d file),
``processor`` (a :class:`~picbeam.Processor` with an option of its own) and ``format`` (an output
format). Each has a pyproject with the ``picbeam`` entry point, the plugin module, a README and tests
that use :mod:`picbeam.testing`.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from . import __version__
from .errors import ConfigError

KINDS = ("host", "processor", "format")

PYPROJECT = """\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "$summary"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["picbeam>=$picbeam"]

[project.optional-dependencies]
test = ["pytest>=8", "pytest-aiohttp>=1.0"]

# picbeam finds the plugin through this entry point.
[project.entry-points.picbeam]
$entry = "$module"

[tool.setuptools]
py-modules = ["$module"]

[tool.pytest.ini_options]
asyncio_mode = "auto"
"""

README = """\
# $dist

$summary

A plugin for [picbeam](https://pypi.org/project/picbeam/).

    pip install $dist
    $usage

Check that picbeam sees it with `picbeam plugins`. Run its tests with
`pip install -e '.[test]' && pytest`.
"""

CONFTEST = """\
import pytest

pytest_plugins = ["picbeam.testing"]


@pytest.fixture(autouse=True)
def isolated(picbeam_home, only_plugins, tmp_path, monkeypatch):
    \"\"\"Own config and ledger; the built-in plugins and this one only; a hosts.d folder of its own.\"\"\"
    only_plugins("$entry")
    monkeypatch.setenv("PICBEAM_HOSTS_DIR", str(tmp_path / "hosts.d"))
    return picbeam_home
"""

HOST = '''\
"""$summary"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from picbeam import ConfigError, Host, UploadError, UploadItem, UploadResult, expand_options, hookimpl
from picbeam.errors import transient_status

FIELDS = ("endpoint", "token", "description")


class $cls(Host):
    """Uploads each file as the body of a POST; the answer's text is the URL.

    Configure it in a hosts.d file: ``extends = "$entry"``, ``endpoint = "https://..."`` and
    ``token = "$${TOKEN_VARIABLE}"``.
    """

    name = "$entry"
    description = "$summary"
    secret_options = ("token",)

    def __init__(self, name: str = "$entry", options: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.options = dict(options or {})
        self.description = str(self.options.get("description") or type(self).description)

    def configured(self, name: str, options: Mapping[str, Any], *, source: str) -> Host:
        unknown = sorted(set(options) - set(FIELDS))
        if unknown:
            raise ConfigError(f"{source}: host '{name}': unknown field '{unknown[0]}' (fields: {', '.join(FIELDS)})")
        return $cls(name, {**self.options, **options})

    def prepared(self) -> Host:
        options = expand_options(self.options, host=self.name)
        if not options.get("endpoint"):
            raise ConfigError(f"host '{self.name}': field 'endpoint' is required")
        return $cls(self.name, options)

    @property
    def destination(self) -> str:
        return str(self.options.get("endpoint") or self.name)

    async def upload(self, item: UploadItem, session: Any) -> UploadResult:
        headers = {"Content-Type": item.mime}
        if self.options.get("token"):
            headers["Authorization"] = f"Bearer {self.options['token']}"
        async with session.post(
            self.options["endpoint"], data=item.open(), headers=headers, timeout=self.timeout(item.size)
        ) as response:
            text = await response.text()
            if response.status >= 400:
                raise UploadError(
                    f"HTTP {response.status}: {text[:200]}",
                    status=response.status,
                    transient=transient_status(response.status),
                )
        return self.result(item, text.strip())


@hookimpl
def register_hosts(register: Callable[[Host], None]) -> None:
    register($cls())
'''

HOST_TEST = """\
from picbeam.testing import run_picbeam, write_host


def test_uploads_to_a_fake_host(fake_host, sample_image, tmp_path):
    fake_host.reply(text="https://files.example/sample.png")
    write_host(tmp_path / "hosts.d", "mine", extends="$entry", endpoint=fake_host.endpoint(), token="$${MY_TOKEN}")
    done = run_picbeam("upload", sample_image, "--host", "mine", env={"MY_TOKEN": "secret-token-1"})
    assert done.returncode == 0, done.stderr
    assert done.lines == ["https://files.example/sample.png"]
    [request] = fake_host.requests
    assert request.body == sample_image.read_bytes()
    assert request.headers["Authorization"] == "Bearer secret-token-1"


def test_a_missing_token_variable_is_a_configuration_error(fake_host, sample_image, tmp_path):
    write_host(tmp_path / "hosts.d", "mine", extends="$entry", endpoint=fake_host.endpoint(), token="$${MY_TOKEN}")
    done = run_picbeam("upload", sample_image, "--host", "mine")
    assert done.returncode == 2 and "MY_TOKEN is not set" in done.stderr
    assert fake_host.requests == []
"""

PROCESSOR = '''\
"""$summary"""

from __future__ import annotations

from collections.abc import Callable

from picbeam import Option, Processor, UploadItem, hookimpl
from picbeam.processing import ProcessSettings

OPTIONS = (Option("${entry}_tag", str, None, "Append this text to each file sent.", off=True),)


def process(item: UploadItem) -> None:
    """Send a copy of the file with the tag appended (a real processor would transform the image)."""
    tag = item.settings.${entry}_tag
    out = item.temp_path(item.path.suffix)
    out.write_bytes(item.read() + tag.encode())
    item.replace(path=out)
    item.notes.append(f"$entry: appended {len(tag.encode())} bytes")


def signature(settings: ProcessSettings) -> str:
    """What this processor does with these settings ("" when nothing: then it is not called)."""
    tag = settings.${entry}_tag
    return f"$entry={tag}" if tag else ""


@hookimpl
def register_processors(register: Callable[[Processor], None]) -> None:
    register(Processor("$entry", process, order=950, options=OPTIONS, signature=signature, worker=False))
'''

PROCESSOR_TEST = """\
from picbeam.testing import run_picbeam, write_host


def test_the_flag_changes_the_bytes_sent(fake_host, sample_image, tmp_path):
    write_host(tmp_path / "hosts.d", "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    done = run_picbeam("upload", sample_image, "--host", "fake", "--${flag}-tag", "hello")
    assert done.returncode == 0, done.stderr
    assert fake_host.requests[0].file.data.endswith(b"hello")


def test_without_the_option_the_file_is_sent_as_it_is(fake_host, sample_image, tmp_path):
    write_host(tmp_path / "hosts.d", "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    done = run_picbeam("upload", sample_image, "--host", "fake")
    assert done.returncode == 0, done.stderr
    assert not fake_host.requests[0].file.data.endswith(b"hello")


def test_the_option_works_from_a_hosts_process_table(fake_host, sample_image, tmp_path):
    write_host(tmp_path / "hosts.d", "fake", endpoint=fake_host.endpoint(), url_path="data.url",
               process={"${entry}_tag": "table"})
    done = run_picbeam("upload", sample_image, "--host", "fake")
    assert done.returncode == 0, done.stderr
    assert fake_host.requests[0].file.data.endswith(b"table")
"""

FORMAT = '''\
"""$summary"""

from __future__ import annotations

from collections.abc import Callable

from picbeam import UploadResult, hookimpl


def render(result: UploadResult) -> str:
    """The line printed for one successful upload."""
    return f"{result.path} -> {result.url}"


@hookimpl
def register_formats(register: Callable[[str, Callable[[UploadResult], str]], None]) -> None:
    register("$entry", render)
'''

FORMAT_TEST = """\
from picbeam.testing import run_picbeam, write_host, write_sample_image


def test_renders_one_line_per_file(fake_host, tmp_path):
    write_host(tmp_path / "hosts.d", "fake", endpoint=fake_host.endpoint(), url_path="data.url")
    first = write_sample_image(tmp_path / "a.png", seed=1)
    second = write_sample_image(tmp_path / "b.png", seed=2)
    done = run_picbeam("upload", first, second, "--host", "fake", "--format", "$entry")
    assert done.returncode == 0, done.stderr
    assert len(done.lines) == 2  # one line per file, in input order
    for line, path in zip(done.lines, (first, second), strict=True):
        assert line.startswith(f"{path} -> {fake_host.url}/files/") and line.endswith(path.name)
"""

FILES = {
    "host": (HOST, HOST_TEST, 'picbeam upload photo.png --host NAME  # with a hosts.d file: extends = "$entry"'),
    "processor": (PROCESSOR, PROCESSOR_TEST, "picbeam upload photo.png --${flag}-tag TEXT"),
    "format": (FORMAT, FORMAT_TEST, "picbeam upload photo.png --format $entry"),
}


def create(name: str, folder: Path, kind: str = "host") -> Path:
    """Write the package for plugin ``name`` into ``folder``/picbeam-NAME and return that folder."""
    if kind not in KINDS:
        raise ConfigError(f"--kind {kind!r}: expected one of {', '.join(KINDS)}")
    entry = re.sub(r"^picbeam[-_]", "", name.strip().lower()).replace("-", "_")
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", entry):
        raise ConfigError(f"plugin name {name!r}: use letters, digits, - and _ (starting with a letter)")
    dist, module = f"picbeam-{entry.replace('_', '-')}", f"picbeam_{entry}"
    target = folder / dist
    if target.exists():
        raise ConfigError(f"{target} already exists; choose another --dir or name")
    code, test, usage = FILES[kind]
    values = {
        "dist": dist,
        "module": module,
        "entry": entry,
        "flag": entry.replace("_", "-"),
        "cls": "".join(part.title() for part in entry.split("_")) + "Host",
        "summary": f"A picbeam {kind} plugin: {entry}.",
        "picbeam": __version__,
    }
    values["usage"] = Template(usage).substitute(values)
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"{module}.py": code,
        "tests/conftest.py": CONFTEST,
        f"tests/test_{entry}.py": test,
    }
    for relative, template in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(template).substitute(values), encoding="utf-8")
    return target
