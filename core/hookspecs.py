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
    from .items import UploadItem, UploadResult
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
def prepare_upload(item: UploadItem) -> Any:
    """Process one file before it is uploaded, like PicGo's ``beforeUpload``.

    Runs once per file in a worker process (or thread), in the order of the plugins' ``PROCESS_ORDER``
    (see :mod:`picbeam.processing`). A processor replaces the bytes that are sent by calling
    ``item.replace(path=..., name=..., mime=...)`` with a file it wrote to ``item.temp_path(suffix)``
    (or ``item.replace(data=...)`` with bytes; read the content with ``item.read()``);
    ``item.settings`` holds the run's processing settings; raising :class:`~picbeam.UploadError` fails
    this file alone. The return value is ignored.
    """


@hookspec
def after_upload(result: UploadResult) -> Any:
    """See each file's outcome after its upload ended (``result.ok`` tells success), like ``afterUpload``.

    Runs in a worker thread once per file; it may change ``result.url`` (for example to rewrite a CDN
    domain) before the result is printed and recorded. The return value is ignored.
    """
