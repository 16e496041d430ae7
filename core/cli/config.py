"""`picbeam config`: read and write settings in ~/.config/picbeam/config.toml."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ..config import Config, change_setting, config_file, parse_setting, split_key, write_config
from ..options import config_settings
from .common import JsonOption

config_app = typer.Typer(help="Read and write settings (default_host, jobs, format, ...).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


@config_app.command("get")
def get(key: Annotated[str, typer.Argument(help="Setting name.")]) -> None:
    """Print one setting, or one processing option as process.OPTION (nothing, and exit 1, when not set)."""
    name, entry = split_key(key)
    value = Config.load().get(name)
    if entry is not None:
        value = (value or {}).get(entry)
    if value is None:
        raise typer.Exit(1)
    print(value)


@config_app.command("set")
def set_(
    key: Annotated[str, typer.Argument(help="Setting name.")], value: Annotated[str, typer.Argument(help="New value.")]
) -> None:
    """Change one setting, or one processing option as process.OPTION (process.convert webp)."""
    parsed = parse_setting(key, value)
    if key == "default_host":
        from .common import open_hosts

        open_hosts()[2].get(parsed)  # an unknown host is refused, with a "did you mean"
    write_config(change_setting(Config.load().values, key, parsed))


@config_app.command("unset")
def unset(key: Annotated[str, typer.Argument(help="Setting name.")]) -> None:
    """Remove one setting (or process.OPTION), so its default applies."""
    write_config(change_setting(Config.load().values, key, remove=True))


@config_app.command("list")
def list_settings(as_json: JsonOption = False) -> None:
    """Every setting with its value and meaning."""
    values = Config.load().values
    if as_json:
        print(json.dumps(values, indent=2))
        return
    for key, option in config_settings().items():
        meaning = option.help
        if key == "process":
            print(f"{key:<14}{'':<24}{meaning}")
            for option, value in (values.get(key) or {}).items():
                print(f"  {option:<36}{value}")
            continue
        shown = values.get(key, "(not set)")
        print(f"{key:<14}{shown!s:<24}{meaning}")


@config_app.command("path")
def path() -> None:
    """Where the config file lives."""
    print(config_file())
