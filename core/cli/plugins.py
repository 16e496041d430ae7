"""`picbeam plugins`: every plugin, its distribution, its hosts, and what failed to load."""

from __future__ import annotations

import json

import typer

from ..config import Config
from .common import HostsDirOption, JsonOption
from .common import load_plugins_reporting as load


def register(app: typer.Typer) -> None:
    app.command("plugins")(plugins)


def plugins(as_json: JsonOption = False, hosts_dir: HostsDirOption = None) -> None:
    """List the loaded plugins with their distribution, version, hosts and errors."""
    loaded = load()
    loaded.hosts(Config.load(hosts_dir or ()))
    infos = list(loaded.infos.values())
    if as_json:
        print(json.dumps([info.to_json() for info in infos], indent=2))
        return
    origins = [f"{info.distribution} {info.version}" if info.distribution else info.module for info in infos]
    # Columns as wide as their longest entry plus a gap, so a long name or module never runs into the next.
    name_width = max((len(info.name) for info in infos), default=0) + 2
    origin_width = max((len(origin) for origin in origins), default=0) + 2
    for info, origin in zip(infos, origins, strict=True):
        status = "error" if info.errors else "ok"
        print(f"{info.name:<{name_width}}{status:<7}{origin:<{origin_width}}hosts: {', '.join(info.hosts) or '-'}")
        for error in info.errors:
            print(f"    {error}")
