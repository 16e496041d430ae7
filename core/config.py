"""Where picbeam keeps things, and the user's ``config.toml`` (default host, jobs, format...)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .spec import load_toml

DEFAULT_HOST = "local"


def _base(variable: str, linux: tuple[str, ...], other: str) -> Path:
    """The folder an XDG variable names, else Linux's usual one, else where the OS keeps such things."""
    if os.environ.get(variable):
        return Path(os.environ[variable])
    if sys.platform.startswith("linux") or sys.platform.startswith("freebsd"):
        return Path(os.path.expanduser("~"), *linux)
    import platformdirs

    return Path(getattr(platformdirs, other)())


def config_dir() -> Path:
    return _base("XDG_CONFIG_HOME", (".config",), "user_config_dir") / "picbeam"


def data_dir() -> Path:
    return _base("XDG_DATA_HOME", (".local", "share"), "user_data_dir") / "picbeam"


def cache_dir() -> Path:
    """What picbeam can rebuild at any time (the plugin index)."""
    return _base("XDG_CACHE_HOME", (".cache",), "user_cache_dir") / "picbeam"


def bundled_hosts_dir() -> Path:
    """The presets that ship inside the package (the project's ``hosts.d/``, a folder on disk as the
    hosts folders are; importlib.resources would import zipfile for it on every run)."""
    import importlib

    presets = importlib.import_module("picbeam.presets")
    return Path(str(presets.__file__)).parent


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
    host_warnings: dict[str, list[str]] = field(default_factory=dict)

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

    def warn_about_host(self, name: str, message: str) -> None:
        """A warning said only by a command that uses or lists host ``name``."""
        self.host_warnings.setdefault(name, []).append(message)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def default_host(self) -> str:
        return os.environ.get("PICBEAM_HOST") or self.values.get("default_host") or DEFAULT_HOST


def _check_setting(key: str, value: Any, source: Path | str) -> None:
    from .options import config_settings, unknown

    settings = config_settings()
    if key not in settings:
        raise unknown(key, settings, f"{source}:", what="setting")
    if key == "process":
        from .processing import check_options

        check_options(value, f"{source} [process]")
        return
    settings[key].validate(value, f"{source}: setting")


def parse_setting(key: str, text: str) -> Any:
    """A value typed on the command line (`config set jobs 8`), converted and checked.

    ``process.OPTION`` names one entry of the ``[process]`` table.
    """
    from .options import config_settings, unknown

    if key.startswith("process."):
        from .processing import parse_option

        return parse_option(key.removeprefix("process."), text)
    if key == "process":
        raise ConfigError("set one processing option at a time: process.convert, process.quality, ...")
    settings = config_settings()
    if key not in settings:
        raise unknown(key, settings, "setting", what="setting")
    value = settings[key].parse(text, "setting")
    return str(value) if isinstance(value, Path) else value


def split_key(key: str) -> tuple[str, str | None]:
    """``process.convert`` -> ``("process", "convert")``; a plain setting -> ``(key, None)``."""
    table, dot, entry = key.partition(".")
    if dot and table == "process":
        return table, entry
    from .options import config_settings, unknown

    if key not in config_settings():
        raise unknown(key, [*config_settings(), "process.OPTION"], "setting", what="setting")
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
    """Write the settings, keeping what the file already says (comments, order, layout) where it can."""
    import tomlkit

    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        document = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    except (OSError, tomlkit.exceptions.ParseError):
        document = tomlkit.document()
    _update(document, values)
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(tomlkit.dumps(document), encoding="utf-8")
    os.replace(tmp, path)
    return path


def _update(table: Any, values: Mapping[str, Any]) -> None:
    """Make the tomlkit ``table`` hold ``values``: changed keys in place, removed ones gone."""
    import tomlkit

    for key in [key for key in table if key not in values]:
        del table[key]
    for key, value in values.items():
        if isinstance(value, Mapping):
            if key not in table or not isinstance(table[key], Mapping):
                table[key] = tomlkit.table()
            _update(table[key], value)
        elif key not in table or table[key] != value:
            table[key] = value
