"""Where picbeam keeps things, and the user's ``config.toml`` (default host, jobs, format...)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .spec import dump_toml, load_toml

# Settings a user may keep in config.toml, with their types and meaning (shown by `config list`).
SETTINGS: dict[str, tuple[type, str]] = {
    "default_host": (str, "host used when --host and PICBEAM_HOST are not given"),
    "jobs": (int, "uploads in flight at once (--jobs)"),
    "format": (str, "output format: url, markdown, html, bbcode, json, or a template like ![{name}]({url})"),
    "retries": (int, "attempts after the first for transient failures (--retries)"),
    "retry_wait": (float, "seconds before the first retry; later ones back off exponentially"),
    "ledger": (str, "path of the upload ledger database"),
    "download_max_bytes": (int, "largest file `picbeam upload https://...` downloads (default: 1 GiB)"),
    "download_timeout": (float, "seconds a download from an address may take (default: 300)"),
    "process": (dict, "processing defaults, a [process] table: process.convert, process.quality... (see README)"),
}
DEFAULT_HOST = "local"
# How a setting's type reads in a message ("must be a whole number", never "must be a int").
KIND_NAMES = {int: "a whole number", float: "a number", str: "text", dict: "a table", bool: "true or false"}


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "picbeam"


def data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "picbeam"


def bundled_hosts_dir() -> Path:
    """The presets that ship inside the package (the project's ``hosts.d/``)."""
    from importlib.resources import files

    return Path(str(files("picbeam.presets")))


def user_hosts_dir() -> Path:
    return config_dir() / "hosts.d"


def config_file() -> Path:
    return config_dir() / "config.toml"


@dataclass
class Config:
    """The settings of one run: the merged config file plus what the command line said."""

    extra_hosts_dirs: Sequence[Path] = ()
    values: dict[str, Any] = field(default_factory=dict)
    # Problems worth a line on stderr that stop nothing (e.g. a readable file holding a secret).
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, extra_hosts_dirs: Sequence[Path] = ()) -> Config:
        path = config_file()
        values = load_toml(path) if path.exists() else {}
        for key, value in values.items():
            _check_setting(key, value, path)
        env_dirs = [Path(p) for p in os.environ.get("PICBEAM_HOSTS_DIR", "").split(os.pathsep) if p]
        return cls(extra_hosts_dirs=[*env_dirs, *extra_hosts_dirs], values=values)

    def hosts_dirs(self) -> list[Path]:
        """Folders of host TOML files, later ones overriding earlier ones."""
        return [bundled_hosts_dir(), user_hosts_dir(), *self.extra_hosts_dirs]

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def default_host(self) -> str:
        return os.environ.get("PICBEAM_HOST") or self.values.get("default_host") or DEFAULT_HOST


def _check_setting(key: str, value: Any, source: Path | str) -> None:
    if key not in SETTINGS:
        raise ConfigError(f"{source}: unknown setting '{key}' (known: {', '.join(SETTINGS)})")
    typed(value, SETTINGS[key][0], f"{source}: setting '{key}'")
    if key == "process":
        from .processing import check_options

        check_options(value, f"{source} [process]")


def typed(value: Any, kind: type, what: str) -> Any:
    """``value`` checked to be a ``kind`` (a whole number is a fine float; a bool is no number), or a
    ConfigError that starts with ``what``."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(f"{what} must be {KIND_NAMES.get(kind, kind.__name__)}, not {value!r}")
    return value


def from_text(text: str, kind: type, what: str) -> Any:
    """A ``kind`` typed on the command line (true/false/yes/no/1/0 for a bool)."""
    if kind is bool:
        if text.lower() not in ("true", "false", "yes", "no", "1", "0"):
            raise ConfigError(f"{what} must be true or false, not {text!r}")
        return text.lower() in ("true", "yes", "1")
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(f"{what} must be {KIND_NAMES.get(kind, kind.__name__)}, not {text!r}") from None


def parse_setting(key: str, text: str) -> Any:
    """A value typed on the command line (`config set jobs 8`), converted and checked.

    ``process.OPTION`` names one entry of the ``[process]`` table.
    """
    if key.startswith("process."):
        from .processing import parse_option

        return parse_option(key.removeprefix("process."), text)
    if key == "process":
        raise ConfigError("set one processing option at a time: process.convert, process.quality, ...")
    if key not in SETTINGS:
        raise ConfigError(f"unknown setting '{key}' (known: {', '.join(SETTINGS)})")
    value = from_text(text, SETTINGS[key][0], f"setting '{key}'")
    if key == "jobs" and value < 1:
        raise ConfigError("setting 'jobs' must be at least 1")
    if key == "format":
        from .output import check_format

        check_format(value, "setting 'format'")
    return value


def split_key(key: str) -> tuple[str, str | None]:
    """``process.convert`` -> ``("process", "convert")``; a plain setting -> ``(key, None)``."""
    table, dot, entry = key.partition(".")
    if dot and table == "process":
        return table, entry
    if key not in SETTINGS:
        raise ConfigError(f"unknown setting '{key}' (known: {', '.join(SETTINGS)}, process.OPTION)")
    return key, None


def change_setting(values: dict[str, Any], key: str, value: Any = None, *, remove: bool = False) -> dict[str, Any]:
    """``values`` with one setting (or one ``process.OPTION``) set to ``value``, or removed."""
    name, entry = split_key(key)
    changed = dict(values)
    if entry is None:
        if remove:
            changed.pop(name, None)
        else:
            changed[name] = value
        return changed
    table = dict(changed.get(name) or {})
    if remove:
        table.pop(entry, None)
    else:
        table[entry] = value
    if table:
        changed[name] = table
    else:
        changed.pop(name, None)
    return changed


def write_config(values: dict[str, Any]) -> Path:
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(dump_toml(values), encoding="utf-8")
    os.replace(tmp, path)
    return path
