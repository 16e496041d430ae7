"""The generic remote-API host: every TOML file in the hosts folders becomes a host.

Folders are read in order (bundled presets, the user's ``~/.config/picbeam/hosts.d``, then
``--hosts-dir`` / ``PICBEAM_HOSTS_DIR``); a file in a later folder replaces one of the same name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from picbeam import BrokenHost, ConfigError, HostDraft, HostSpec, hookimpl
from picbeam.config import Config
from picbeam.redaction import literal_secret_warning, literal_secrets
from picbeam.spec import load_toml


@hookimpl
def register_hosts(register: Callable[[object], None], config: Config) -> None:
    for name, path in host_files(config).items():
        try:
            host = host_from_file(path)
        except ConfigError as exc:
            register(BrokenHost(name, str(exc)))
            continue
        literal = literal_secrets(host.changes if isinstance(host, HostDraft) else host.to_mapping())
        warning = literal_secret_warning(str(path), literal)
        if warning:  # said only by commands that use or list this host
            config.warn_about_host(name, warning)
        register(host)


def host_files(config: Config) -> dict[str, Path]:
    """Host name -> the file that defines it, later folders winning."""
    files: dict[str, Path] = {}
    for folder in config.hosts_dirs():
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                files[path.stem] = path
    return files


def host_from_file(path: Path) -> HostSpec | HostDraft:
    """Read one hosts.d file: a complete spec, or a draft that ``extends`` another host."""
    data = load_toml(path)
    name = str(data.pop("name", None) or path.stem)
    extends = data.pop("extends", None)
    if extends is not None:
        if not isinstance(extends, str) or not extends:
            raise ConfigError(f"{path}: field 'extends' must name a host")
        return HostDraft(name=name, extends=extends, changes=data, source=str(path))
    return HostSpec.from_mapping(data, source=str(path), name=name)
