"""Every option, declared once: its name, type, default, help, limits and whether it is a secret.

From these declarations come the command-line flags of ``upload``, ``watch`` and ``serve``, the checks of
config.toml and of ``[process]`` tables, the keyword arguments of :func:`picbeam.upload`, what
``hosts show`` and ``config list`` print, and the tables in the README (``python -m picbeam.options``
rewrites them; a test fails when they are stale).

A processor plugin declares its own options the same way (``Option("name_suffix", str, help=...)`` in
its :class:`~picbeam.processing.Processor`); they become flags, ``[process]`` entries and keywords.

This module imports nothing heavy: the typer parts load typer only when a command is built.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from .errors import ConfigError
from .inputs import DOWNLOAD_MAX_BYTES, DOWNLOAD_TIMEOUT

RUN_PANEL = "Run"
PROCESS_PANEL = "Processing (see the README's 'Processing')"


@dataclass(frozen=True)
class Option:
    """One option. ``type`` is bool, int, float, str, Path or list[str] (a repeatable flag).

    ``off`` marks an option where none / "" / 0 mean "off" (read as None). ``check(value, where)`` may
    refine a value once it has the right type (raise :class:`~picbeam.ConfigError` naming ``where``).
    ``pillow`` marks an option that needs Pillow when set. ``flag`` defaults to ``--name-with-dashes``;
    for a bool, ``negative`` names the flag that turns it off (``--strip-metadata``). ``complete(incomplete)``
    gives the shell's completions of the flag's value (an option with ``choices`` completes them unasked).
    """

    name: str
    type: Any = str
    default: Any = None
    help: str = ""
    flag: str | None = None
    short: str | None = None
    negative: str | None = None
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    secret: bool = False
    off: bool = False
    pillow: bool = False
    check: Callable[[Any, str], Any] | None = None
    # Where the option lives besides the command line: "config" (config.toml), "process" ([process] tables).
    scope: tuple[str, ...] = ()
    envvar: str | None = None
    complete: Callable[[str], list[str]] | None = None
    # The help panel the flag shows in, when not its command's usual one.
    panel: str | None = None

    @property
    def flag_name(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def repeatable(self) -> bool:
        return self.type == list[str]

    def describe_default(self) -> str:
        if self.default is None or self.default == () or (self.default is False and self.type is bool):
            return ""
        return str(self.default)

    def validate(self, value: Any, where: str) -> Any:
        """``value`` checked against this declaration; a ConfigError that starts with ``where`` otherwise."""
        what = f"{where}: option '{self.name}'"
        if value is None:
            return None
        kind = Path if self.type is Path else self.type
        if self.repeatable:
            if isinstance(value, str) or not isinstance(value, Iterable):
                raise ConfigError(f"{what} must be a list of text, not {value!r}")
            value = [str(v) for v in value]
        elif kind is Path:
            if not isinstance(value, str | os.PathLike):
                raise ConfigError(f"{what} must be a path, not {value!r}")
            value = Path(value)
        else:
            value = typed(value, kind, what)
        if self.check is not None:
            value = self.check(value, what)
        if self.choices:
            value = value.lower()
            if value not in self.choices and not (self.off and value in ("none", "")):
                raise ConfigError(f"{what} must be one of {', '.join(self.choices)}{' or none' if self.off else ''}")
        if self.min is not None and self.max is not None and not self.min <= value <= self.max:
            raise ConfigError(f"{what} must be between {self.min:g} and {self.max:g}, not {value}")
        if self.min is not None and value < self.min:
            raise ConfigError(f"{what} must be at least {self.min:g}, not {value}")
        if self.max is not None and value > self.max:
            raise ConfigError(f"{what} must be at most {self.max:g}, not {value}")
        if self.off and value in ("none", "", 0):
            return None
        return value

    def parse(self, text: str, where: str) -> Any:
        """A value typed as text (``config set``, ``--set``), converted and checked."""
        return self.validate(from_text(text, self.type, f"{where}: option '{self.name}'"), where)


# How a type reads in a message ("must be a whole number", never "must be a int").
KIND_NAMES = {int: "a whole number", float: "a number", str: "text", dict: "a table", bool: "true or false"}


def typed(value: Any, kind: type, what: str) -> Any:
    """``value`` checked to be a ``kind`` (a whole number is a fine float; a bool is no number), or a
    ConfigError that starts with ``what``."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(f"{what} must be {KIND_NAMES.get(kind, kind.__name__)}, not {value!r}")
    return value


def from_text(text: str, kind: Any, what: str) -> Any:
    """A ``kind`` typed on the command line (true/false/yes/no/1/0 for a bool)."""
    if kind is bool:
        if text.lower() not in ("true", "false", "yes", "no", "1", "0"):
            raise ConfigError(f"{what} must be true or false, not {text!r}")
        return text.lower() in ("true", "yes", "1")
    if kind == list[str]:
        return [part.strip() for part in text.split(",") if part.strip()]
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(f"{what} must be {KIND_NAMES.get(kind, kind.__name__)}, not {text!r}") from None


def unknown(name: str, known: Iterable[str], where: str, what: str = "option") -> ConfigError:
    """The error for a name nobody declared, with a "did you mean"."""
    known = list(known)
    import difflib  # for a mistyped name only

    close = difflib.get_close_matches(name, known, n=1)
    hint = f", did you mean {close[0]}?" if close else f" (known: {', '.join(known)})"
    shown = name if name.isprintable() else repr(name)  # a name holding a line break stays on one line
    return ConfigError(f"{where} {shown}: unknown {what}{hint}")


# -- the options of a run ------------------------------------------------------------------------------
def _check_format(value: str, what: str) -> str:
    from .output import check_format

    check_format(value, what)
    return value


# -- shell completion: values are looked up only when the shell asks, so start-up stays light -----------
def _complete_hosts(incomplete: str) -> list[str]:
    from .cli.common import complete_hosts

    return complete_hosts(incomplete)


def _complete_formats(incomplete: str) -> list[str]:
    from .errors import PicbeamError
    from .output import formats

    try:
        known = list(formats())
    except PicbeamError:
        return []
    return [name for name in known if name.startswith(incomplete)]


def _complete_choices(option: Option) -> Callable[[str], list[str]]:
    def complete(incomplete: str) -> list[str]:
        return [name for name in (*option.choices, *(("none",) if option.off else ())) if name.startswith(incomplete)]

    return complete


RUN_OPTIONS: dict[str, Option] = {
    option.name: option
    for option in (
        Option(
            "host",
            list[str],
            (),
            "Host name (default: PICBEAM_HOST, config default_host, or 'local'); repeat it to send every file to "
            "every host (mirrors: stdout has the first host's URL).",
            short="-H",
            complete=_complete_hosts,
        ),
        Option(
            "fallback",
            list[str],
            (),
            "A host for the files the first host fails on (repeatable).",
            complete=_complete_hosts,
        ),
        Option("jobs", int, 4, "Uploads in flight at once.", short="-j", min=1, max=256, scope=("config",)),
        Option("retries", int, 3, "Retries of transient failures.", min=0, max=20, scope=("config",)),
        Option("recursive", bool, False, "Include sub-folders.", short="-r"),
        Option("follow_symlinks", bool, False, "In folders, follow symbolic links that lead outside the folder named."),
        Option("include", list[str], (), "Only files in folders matching this glob (repeatable)."),
        Option("exclude", list[str], (), "Skip files in folders matching this glob (repeatable)."),
        Option(
            "format",
            str,
            "url",
            "Output format: url, markdown, html, bbcode, json, one a plugin adds, or a template like "
            "'![{name}]({url})'.",
            short="-f",
            check=_check_format,
            scope=("config",),
            complete=_complete_formats,
        ),
        Option(
            "overrides",
            list[str],
            (),
            "Override a host field for this run: FIELD=VALUE, headers.NAME=VALUE (repeatable).",
            flag="--set",
        ),
        Option("dry_run", bool, False, "Show what would be uploaded; send nothing."),
        Option("force", bool, False, "Upload even files the ledger says this host already has."),
        Option("ledger", Path, None, "Ledger database (also PICBEAM_LEDGER).", scope=("config",)),
        Option("no_ledger", bool, False, "Neither consult nor write the ledger."),
        Option("hosts_dir", list[str], (), "Extra folder of host TOML files (also PICBEAM_HOSTS_DIR)."),
    )
}
# Settings of config.toml that are not flags.
CONFIG_ONLY: dict[str, Option] = {
    option.name: option
    for option in (
        Option("default_host", str, "local", "Host used when --host and PICBEAM_HOST are not given."),
        Option("retry_wait", float, 0.5, "Seconds before the first retry; later ones back off exponentially.", min=0),
        Option(
            "download_max_bytes",
            int,
            DOWNLOAD_MAX_BYTES,
            "Largest file `picbeam upload https://...` downloads, in bytes.",
            min=1,
        ),
        Option("download_timeout", float, DOWNLOAD_TIMEOUT, "Seconds a download from an address may take.", min=0),
        Option("process", dict, None, "Processing defaults, a [process] table (see 'Processing')."),
    )
}
# Which run options each command takes (watch takes what upload takes, serve what applies to a server).
COMMANDS: dict[str, tuple[str, ...]] = {
    "upload": tuple(RUN_OPTIONS),
    "watch": tuple(RUN_OPTIONS),
    "serve": (
        "host",
        "fallback",
        "jobs",
        "retries",
        "overrides",
        "ledger",
        "no_ledger",
        "format",
        "hosts_dir",
        "force",
    ),
}


def config_settings() -> dict[str, Option]:
    """The settings config.toml may hold, in the order ``config list`` shows them."""
    settings = {name: o for name, o in RUN_OPTIONS.items() if "config" in o.scope}
    settings.update(CONFIG_ONLY)
    return {name: settings[name] for name in ("default_host", "jobs", "format", "retries", "retry_wait", "ledger",
                                              "download_max_bytes", "download_timeout", "process")}  # fmt: skip


class UploadOptions(TypedDict, total=False):
    """The keyword arguments of :func:`picbeam.upload` and :func:`picbeam.upload_async` (a test checks that
    they match the declarations above and the built-in processors' options)."""

    jobs: int | None
    retries: int | None
    recursive: bool
    follow_symlinks: bool
    include: Sequence[str]
    exclude: Sequence[str]
    overrides: Sequence[str] | Mapping[str, Any]
    dry_run: bool
    force: bool
    ledger: bool | str | os.PathLike[str]
    hosts_dirs: Sequence[str | os.PathLike[str]]
    process: Mapping[str, Any] | None
    # The built-in processors' options.
    keep_metadata: bool | None
    apply_orientation: bool | None
    convert: str | None
    quality: int | None
    max_width: int | None
    max_height: int | None
    watermark: str | None
    watermark_image: str | None
    watermark_position: str | None
    watermark_opacity: float | None
    watermark_scale: float | None
    watermark_font: str | None
    rename: str | None


# Keywords of the API that are not run options of the command line.
API_ONLY = ("hosts_dirs", "process")
API_RUN = (
    "jobs",
    "retries",
    "recursive",
    "follow_symlinks",
    "include",
    "exclude",
    "overrides",
    "dry_run",
    "force",
    "ledger",
)


def split_keywords(options: Mapping[str, Any], process_names: Iterable[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The API's keywords as (run options, processing options); an unknown one is a ConfigError naming it."""
    process_names = set(process_names)
    run: dict[str, Any] = {}
    process: dict[str, Any] = {}
    for key, value in options.items():
        if key in API_RUN or key in API_ONLY:
            run[key] = value
        elif key in process_names:
            process[key] = value
        else:
            raise unknown(key, [*API_RUN, *API_ONLY, *sorted(process_names)], "keyword argument")
    return run, process


# -- deriving typer parameters ------------------------------------------------------------------------
def typer_parameter(option: Option, panel: str | None = None) -> inspect.Parameter:
    """The typer parameter of one option (every flag defaults to None: "not given", so config applies)."""
    from typing import Annotated

    import typer

    names = [option.flag_name]
    if option.type is bool and option.negative:
        names = [f"{option.flag_name}/{option.negative}"]
    if option.short:
        names.append(option.short)
    default = option.describe_default()
    help_text = option.help + (f" (default: {default})" if default and option.type is not bool else "")
    kind: Any = list[str] if option.repeatable else option.type
    extra: dict[str, Any] = {}
    if option.type in (int, float):
        extra.update(min=option.min, max=option.max)
    completion = option.complete or (_complete_choices(option) if option.choices else None)
    if completion is not None:
        extra["autocompletion"] = completion
    chosen_panel = option.panel or panel
    info = typer.Option(*names, help=help_text, show_default=False, rich_help_panel=chosen_panel, envvar=option.envvar,
                        **extra)  # fmt: skip
    return inspect.Parameter(
        option.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[kind | None, info]
    )


def with_options(
    function: Callable[..., Any], options: Sequence[Option], process: Sequence[Option] = ()
) -> Callable[..., Any]:
    """A typer command: ``function``'s own parameters plus one flag per option. ``function`` receives the
    given values as ``options`` (run options, None when not given) and ``process`` (processing flags)."""
    import functools

    own = [p for p in inspect.signature(function, eval_str=True).parameters.values()
           if p.name not in ("options", "process")]  # fmt: skip
    run_names = {o.name for o in options}
    process_names = {o.name for o in process}

    @functools.wraps(function)
    def command(**given: Any) -> Any:
        mine = {k: v for k, v in given.items() if k not in run_names and k not in process_names}
        return function(
            **mine,
            options={k: v for k, v in given.items() if k in run_names},
            process={k: v for k, v in given.items() if k in process_names},
        )

    parameters = [
        *own,
        *(typer_parameter(o, RUN_PANEL) for o in options),
        *(typer_parameter(o, PROCESS_PANEL) for o in process),
    ]
    parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if p.default is not p.empty else p
                  for p in parameters]  # fmt: skip
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    del command.__wrapped__  # typer must read the signature above, not the function's own
    return command


# -- generated documentation --------------------------------------------------------------------------
def markdown_table(options: Iterable[Option], *, flags: bool = True, keys: str = "config") -> str:
    """A Markdown table of options (the README's tables are generated from this). ``keys`` names where the
    option's key applies: "config" (config.toml, for options with that scope), "process" (every option:
    ``[process]`` tables and API keywords) or "" (no key column)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    key_column = {"config": ["config.toml"], "process": ["[process] / keyword"]}.get(keys, [])
    head = [*(["flag"] if flags else []), *key_column, "type", "default", "meaning"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for option in options:
        kind = "list" if option.repeatable else getattr(option.type, "__name__", str(option.type))
        row = []
        if flags:
            row.append(f"`{option.flag_name}`" + (f", `{option.short}`" if option.short else "")
                       + (f" / `{option.negative}`" if option.negative else ""))  # fmt: skip
        if keys == "config":
            row.append(f"`{option.name}`" if "config" in option.scope or not flags else "")
        elif keys == "process":
            row.append(f"`{option.name}`")
        row += [kind, cell(option.describe_default()), cell(option.help)]
        rows.append("| " + " | ".join(row) + " |")
    return "\n".join(rows)


def readme_tables() -> dict[str, str]:
    """The generated tables of the README, by marker name."""
    from .processing import process_options

    return {
        "run-options": markdown_table(RUN_OPTIONS.values()),
        "process-options": markdown_table(process_options().values(), keys="process"),
        "config-settings": markdown_table(config_settings().values(), flags=False),
    }


def rewrite(text: str, tables: Mapping[str, str]) -> str:
    """``text`` with each ``<!-- options:NAME -->`` ... ``<!-- /options -->`` block holding its table."""
    import re

    def fill(match: re.Match[str]) -> str:
        return f"{match.group(1)}\n{tables[match.group(2)]}\n{match.group(3)}"

    return re.sub(r"(<!-- options:([\w-]+) -->)\n.*?\n?(<!-- /options -->)", fill, text, flags=re.S)


@dataclass
class _Readme:
    path: Path = field(default_factory=lambda: Path(__file__).resolve().parent.parent / "README.md")


if __name__ == "__main__":  # python -m picbeam.options: regenerate the README's tables
    readme = _Readme().path
    readme.write_text(rewrite(readme.read_text(encoding="utf-8"), readme_tables()), encoding="utf-8")
    print(f"rewrote the option tables of {readme}")
