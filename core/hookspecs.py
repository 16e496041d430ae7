"""The hooks a picbeam plugin may implement.

Every hook is synchronous: hooks register and configure things. The asynchronous work lives
in the objects they register (a :class:`~picbeam.Host`'s ``async def upload``).
A plugin implements any subset of a hook's arguments; pluggy passes only the ones it names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import typer

    from .config import Config
    from .hosts import Host
    from .importers import Importer
    from .items import UploadItem, UploadResult
    from .processing import Processor
    from .spec import HostSpec

hookspec = pluggy.HookspecMarker("picbeam")
hookimpl = pluggy.HookimplMarker("picbeam")


@hookspec
def register_hosts(register: Callable[[HostSpec | Host], None], config: Config) -> None:
    """Call ``register(host)`` once for each host this plugin provides.

    ``host`` is a declarative :class:`~picbeam.HostSpec` or an instance of a :class:`~picbeam.Host`
    subclass. ``config`` (optional to accept) carries the run's settings, such as the hosts folders.
    """


@hookspec
def register_commands(app: typer.Typer) -> None:
    """Add commands to the ``picbeam`` command line with ``@app.command()`` or ``app.add_typer()``."""


@hookspec
def register_processors(register: Callable[[Processor], None]) -> None:
    """Call ``register(processor)`` with a :class:`~picbeam.Processor` for each processing step this plugin
    provides: its name, order, options, ``process(item)``, ``signature(settings)``, and whether it works
    on decoded pixels or needs a worker process. Its options become flags, ``[process]`` entries and
    keywords of :func:`picbeam.upload`.
    """


@hookspec
def prepare_upload(item: UploadItem) -> Any:
    """The simple form of a processor: change one file before it is uploaded, like PicGo's ``beforeUpload``.

    Runs once per file, in a worker process or thread, at order 500 (after convert, before rename) and
    always (it declares no options; use ``register_processors`` for options or another place in the
    chain). Replace the bytes sent with ``item.replace(path=..., name=..., mime=...)`` and a file written
    to ``item.temp_path(suffix)`` (or ``item.replace(data=...)`` with bytes; read the content with
    ``item.read()``); raising :class:`~picbeam.UploadError` fails this file alone. The return value is
    ignored.
    """


@hookspec
def register_formats(register: Callable[[str, Callable[[UploadResult], str]], None]) -> None:
    """Call ``register(name, render)`` for each output format this plugin provides; ``render(result)``
    returns the text printed for one successful upload (``--format NAME`` in ``upload``, ``watch`` and
    ``serve``, and ``format`` in config.toml).
    """


@hookspec
def register_importers(register: Callable[[Importer], None]) -> None:
    """Call ``register(importer)`` with a :class:`~picbeam.importers.Importer` (name, description,
    ``detect(data)``, ``convert(data, where, name)``) for each configuration format that
    ``picbeam hosts import`` should read.
    """


@hookspec
def after_upload(result: UploadResult) -> Any:
    """See each file's outcome after its upload ended (``result.ok`` tells success), like ``afterUpload``.

    Runs in a worker thread once per file; it may change ``result.url`` (for example to rewrite a CDN
    domain) before the result is printed and recorded. An exception is reported once, naming the
    plugin, and changes nothing else: the result is still printed and recorded. The return value is
    ignored.
    """
