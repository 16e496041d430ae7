"""The ``picbeam`` command line: typer at the edges, the async engine inside.

Plugins are loaded before the app runs only when a plugin command may be asked for; the built-in
commands load them lazily, so ``--version``, ``--help`` of a built-in command and completion stay fast.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence

from .. import __version__

# Each built-in command and the module (in this package) that registers it.
BUILTIN_COMMANDS = {
    "upload": "upload",
    "hosts": "hosts",
    "config": "config",
    "plugins": "plugins",
    "history": "history",
    "delete": "delete",
    "serve": "serve",
    "watch": "watch",
    "migrate": "migrate",
    "links": "links",
}


def build_app(command: str | None = None) -> object:
    """The typer app; with ``command``, only the module of that built-in command is imported, which
    keeps a Typora paste (`picbeam upload ...`) from importing the server, the watcher and the rest."""
    import importlib

    import typer

    app = typer.Typer(
        name="picbeam",
        help="Upload images and files to any image host, concurrently. Every host is a plugin.",
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_show_locals=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def root(
        version: bool = typer.Option(False, "--version", "-V", help="Print the version and exit."),
    ) -> None:
        if version:
            print(f"picbeam {__version__}")
            raise typer.Exit()

    modules = [BUILTIN_COMMANDS[command]] if command in BUILTIN_COMMANDS else dict.fromkeys(BUILTIN_COMMANDS.values())
    for module in modules:
        importlib.import_module(f"{__name__}.{module}").register(app)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    # Start-up makes some 65,000 objects that live as long as the process (modules, classes, the app, the
    # hosts); collecting while they are made only walks them again and again: ~40 ms of a one-file paste.
    # Collection resumes, with them frozen, when the command's work begins (run_async).
    collecting = gc.isenabled()
    gc.disable()
    try:
        _main(list(sys.argv[1:] if argv is None else argv))
    finally:
        if argv is None:  # the process ends: its last collection need not walk them again (~40 ms)
            gc.freeze()
        else:  # called from Python: the caller's collector as it was
            gc.unfreeze()
            (gc.enable if collecting else gc.disable)()


def _main(args: list[str]) -> None:
    if "--debug" in args[: args.index("--") if "--" in args else len(args)]:
        # Anywhere on the command line, for every command: plugin failures print their traceback.
        args.remove("--debug")
        os.environ["PICBEAM_DEBUG"] = "1"
    if args[:1] in (["--version"], ["-V"]):
        print(f"picbeam {__version__}")
        return
    from .common import run_app

    command = next((a for a in args if not a.startswith("-")), None)
    app = build_app(command)
    if command not in BUILTIN_COMMANDS:
        from .common import load_plugins_reporting

        load_plugins_reporting().hooks.register_commands(app)
    run_app(app, args)
