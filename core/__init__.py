"""picbeam: upload images and files to any image host, concurrently; every host is a plugin.

The public API. Every name loads on first use, so that ``picbeam --version`` and shell completion
import nothing but this file.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .api import delete, history, upload, upload_async
    from .errors import AlreadyGone, ConfigError, PicbeamError, PluginError, UploadError
    from .hookspecs import hookimpl
    from .hosts import BrokenHost, Host, HostDraft, SpecHost
    from .items import UploadItem, UploadResult
    from .options import Option
    from .processing import Processor
    from .spec import HostSpec, expand_options

# Public name -> the module that defines it.
_PUBLIC = {
    "AlreadyGone": "errors",
    "BrokenHost": "hosts",
    "ConfigError": "errors",
    "Host": "hosts",
    "HostDraft": "hosts",
    "HostSpec": "spec",
    "PicbeamError": "errors",
    "PluginError": "errors",
    "SpecHost": "hosts",
    "UploadError": "errors",
    "UploadItem": "items",
    "UploadResult": "items",
    "Option": "options",
    "Processor": "processing",
    "hookimpl": "hookspecs",
    "delete": "api",
    "expand_options": "spec",
    "history": "api",
    "upload": "api",
    "upload_async": "api",
}
__all__ = [
    "AlreadyGone",
    "BrokenHost",
    "ConfigError",
    "Host",
    "HostDraft",
    "HostSpec",
    "Option",
    "PicbeamError",
    "PluginError",
    "Processor",
    "SpecHost",
    "UploadError",
    "UploadItem",
    "UploadResult",
    "__version__",
    "delete",
    "expand_options",
    "history",
    "hookimpl",
    "upload",
    "upload_async",
]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'picbeam' has no attribute {name!r}")
