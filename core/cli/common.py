"""What every command shares: stderr messages, exit codes, plugins and hosts, common options."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from ..config import Config, config_file
from ..errors import ConfigError, PicbeamError
from ..hosts import HostRegistry
from ..loader import Plugins, load_plugins
from ..options import RUN_OPTIONS

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# The one wording for a file the host already has (the ledger's record, or the same content in this run).
REUSED = "already uploaded"

HostsDirOption = Annotated[
    list[Path] | None,
    typer.Option("--hosts-dir", help=RUN_OPTIONS["hosts_dir"].help, show_default=False),
]
LedgerOption = Annotated[Path | None, typer.Option("--ledger", help=RUN_OPTIONS["ledger"].help, show_default=False)]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")]

_said: set[str] = set()
T = TypeVar("T")


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


def open_hosts(hosts_dirs: Sequence[Path] | None = None, *, lazy: bool = False) -> tuple[Plugins, Config, HostRegistry]:
    """The run's plugins, config and hosts; a plugin problem is one warning line, not a failure.
    ``lazy``: for a command that only uses the hosts it names (see :meth:`Hooks.register_hosts`)."""
    plugins = load_plugins_reporting()
    config = Config.load(hosts_dirs or ())
    registry = plugins.hosts(config, lazy=lazy)
    registry.on_warning = warn  # a host's warnings are said when the command uses or lists it
    for line in [*plugins.errors(), *config.warnings]:
        warn(line)
    return plugins, config, registry


# -- shell completion: values are looked up only when the shell asks, so start-up stays light -----------
def complete_hosts(incomplete: str) -> list[str]:
    """Host names for ``--host`` and ``hosts show/check/export`` (plugin problems stay quiet here)."""
    try:
        config = Config.load()
        names = load_plugins().hosts(config).names()
    except PicbeamError:
        return []
    return [name for name in names if name.startswith(incomplete)]


def complete_formats(incomplete: str) -> list[str]:
    from ..output import formats

    return [name for name in formats() if name.startswith(incomplete)]


def complete_convert(incomplete: str) -> list[str]:
    from ..processing import CONVERT_CHOICES

    return [name for name in (*CONVERT_CHOICES, "none") if name.startswith(incomplete)]


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
    from ..output import check_format

    given = fmt is not None
    fmt = fmt or config.get("format", "url")
    try:
        check_format(fmt, "--format" if given else f"{config_file()}: setting 'format'")
    except ConfigError as exc:
        fail(str(exc))
    return fmt


def quiet_library_logs() -> None:
    """picbeam reports failures in its own one-line words; without a handler of their own, asyncio's and
    asyncssh's warnings (dozens of "socket.send() raised exception." when an SSH connection drops) would
    reach stderr through logging's last-resort handler."""
    import logging

    for name in ("asyncio", "asyncssh"):
        logging.getLogger(name).addHandler(logging.NullHandler())


def command(function: Callable[..., Any], name: str, *, processing: bool = True) -> Callable[..., Any]:
    """``function`` as a typer command with the run options ``name`` takes (and the processing options of
    every loaded processor): declared once in :mod:`picbeam.options`."""
    from ..options import COMMANDS, RUN_OPTIONS, with_options

    process: list[Any] = []
    if processing:
        from ..processing import process_options

        process = list(process_options().values())
    return with_options(function, [RUN_OPTIONS[option] for option in COMMANDS[name]], process)


class Run:
    """The run options a command was given (None: not given, so config.toml or the default applies)."""

    def __init__(self, given: dict[str, Any]) -> None:
        self.given = given

    def __getattr__(self, name: str) -> Any:
        from ..options import RUN_OPTIONS

        value = self.given.get(name)
        if value is None and RUN_OPTIONS[name].type in (bool, list[str]):
            return False if RUN_OPTIONS[name].type is bool else []
        return value

    @property
    def hosts_dirs(self) -> list[Path]:
        return [Path(p) for p in self.given.get("hosts_dir") or ()]

    def batch_options(self) -> dict[str, Any]:
        """The keywords of :func:`picbeam.api.open_batch` these options set."""
        ledger: Any = False if self.no_ledger else (self.ledger or True)
        return {"jobs": self.jobs, "retries": self.retries, "ledger": ledger, "force": self.force,
                "dry_run": self.dry_run}  # fmt: skip


def report_plugin_errors(plugins: Plugins) -> None:
    """Problems plugins had during the run (an ``after_upload`` that raised), each said once."""
    for line in plugins.errors():
        warn(line)


def run_async(work: Coroutine[Any, Any, T]) -> T:
    """Run a command's work on its own event loop. Start-up is over: what it made lives until the
    process ends, so it is frozen out of the collector's sight, and collection (paused by
    :func:`picbeam.cli.main` while the imports and the app were made) resumes for the work."""
    gc.freeze()
    gc.enable()
    return asyncio.run(work)


def run_app(app: Any, args: list[str]) -> None:
    """Run typer; an expected failure is one line (exit 2 for configuration, 1 otherwise)."""
    quiet_library_logs()
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
