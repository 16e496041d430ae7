"""`picbeam plugins`: every plugin, its distribution, its hosts, and what failed to load;
`picbeam plugins new NAME`: a new plugin package to start from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..config import Config
from .common import HostsDirOption, JsonOption
from .common import load_plugins_reporting as load

plugins_app = typer.Typer(help="List the plugins, or start a new one.")


def register(app: typer.Typer) -> None:
    app.add_typer(plugins_app, name="plugins")


@plugins_app.callback(invoke_without_command=True)
def plugins(ctx: typer.Context, as_json: JsonOption = False, hosts_dir: HostsDirOption = None) -> None:
    """List the loaded plugins with their distribution, version, hosts and errors."""
    if ctx.invoked_subcommand is not None:
        return
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
        status = "error" if info.errors else "off" if info.disabled else "ok"
        print(f"{info.name:<{name_width}}{status:<7}{origin:<{origin_width}}hosts: {', '.join(info.hosts) or '-'}")
        for error in info.errors:
            print(f"    {error}")


@plugins_app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="The plugin's name (the package is picbeam-NAME).")],
    folder: Annotated[Path, typer.Option("--dir", help="Where to create the package folder.")] = Path("."),
    kind: Annotated[str, typer.Option("--kind", help="host, processor or format.")] = "host",
) -> None:
    """Write a pip-installable plugin package (pyproject, module, README, tests that pass as written)."""
    from ..scaffold import create

    target = create(name, folder, kind)
    print(target)
    print(f"next: cd {target} && pip install -e '.[test]' && pytest", flush=True)
