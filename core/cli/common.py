"""What every command shares: stderr messages, exit codes, plugins and hosts, common options."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from ..config import Config
from ..errors import ConfigError, PicbeamError
from ..hosts import HostRegistry
from ..loader import Plugins, load_plugins

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

HostsDirOption = Annotated[
    list[Path] | None,
    typer.Option("--hosts-dir", help="Extra folder of host TOML files (also PICBEAM_HOSTS_DIR).", show_default=False),
]
FallbackOption = Annotated[
    list[str] | None,
    typer.Option("--fallback", help="A host for the files the first host fails on (repeatable).", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")]

_said: set[str] = set()


def warn(message: str) -> None:
    """One line on stderr, said once per process."""
    if message not in _said:
        _said.add(message)
        print(f"picbeam: {message}", file=sys.stderr)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    print(f"picbeam: error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def load_plugins_reporting() -> Plugins:
    plugins = load_plugins()
    for line in plugins.errors():
        warn(line)
    return plugins


def open_hosts(hosts_dirs: Sequence[Path] | None = None) -> tuple[Plugins, Config, HostRegistry]:
    """The run's plugins, config and hosts; a plugin problem is one warning line, not a failure."""
    plugins = load_plugins_reporting()
    config = Config.load(hosts_dirs or ())
    registry = plugins.hosts(config)
    for line in [*plugins.errors(), *config.warnings]:
        warn(line)
    return plugins, config, registry


def on_interrupt(callback: Callable[[], None]) -> None:
    """Call ``callback`` on Ctrl-C and SIGTERM in the running event loop (where the platform allows it;
    on Windows a KeyboardInterrupt ends the run instead)."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, callback)


def on_two_interrupts(first: Callable[[], None], second: Callable[[], None]) -> None:
    """The first Ctrl-C calls ``first`` (finish what is in flight), another calls ``second`` (stop now)."""
    presses = 0

    def pressed() -> None:
        nonlocal presses
        presses += 1
        if presses == 1:
            print("\npicbeam: stopping after the uploads in flight (Ctrl-C again to stop now)", file=sys.stderr)
            first()
        else:
            second()

    on_interrupt(pressed)


def output_format(fmt: str | None, config: Config) -> str:
    """``--format``, else ``format`` in config.toml, else ``url``; an unknown one is a usage error."""
    from ..output import FORMATS

    fmt = fmt or config.get("format", "url")
    if fmt not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return fmt


def run_app(app: Any, args: list[str]) -> None:
    """Run typer; an expected failure is one line (exit 2 for configuration, 1 otherwise)."""
    try:
        app(args=args, prog_name="picbeam")
    except ConfigError as exc:
        print(f"picbeam: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except PicbeamError as exc:
        print(f"picbeam: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        print("picbeam: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
