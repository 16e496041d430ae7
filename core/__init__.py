"""picbeam: upload images and files to any image host, concurrently; every host is a plugin.

The public API. Heavy modules (aiohttp, the engine) load on first use, so that ``picbeam --version``
and shell completion stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from .errors import ConfigError, PicbeamError, PluginError, UploadError
from .hookspecs import hookimpl
from .hosts import BrokenHost, Host, HostDraft, SpecHost
from .items import UploadItem, UploadResult
from .spec import HostSpec

if TYPE_CHECKING:
    from .engine import upload, upload_async

__all__ = [
    "BrokenHost",
    "ConfigError",
    "Host",
    "HostDraft",
    "HostSpec",
    "PicbeamError",
    "PluginError",
    "SpecHost",
    "UploadError",
    "UploadItem",
    "UploadResult",
    "__version__",
    "hookimpl",
    "upload",
    "upload_async",
]


def __getattr__(name: str) -> Any:
    if name in ("upload", "upload_async"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'picbeam' has no attribute {name!r}")
