"""The local folder host: copies files under a root folder, at paths made from the ``path`` template.

It is the default host when none is configured (it needs no account and no network); serve the
folder from your own web server and set ``url_prefix`` (or ``url_template``) to its address.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from picbeam import Host, UploadError, UploadItem, UploadResult, hookimpl
from picbeam.config import data_dir
from picbeam.storage import StorageHost, StorageSettings


@dataclass(frozen=True)
class LocalSettings(StorageSettings):
    # The folder files are stored under (default: picbeam's data folder, images/).
    root: str = ""
    path: str = "{sha256:16}{ext}"


class LocalHost(StorageHost):
    """Stores files under ``root`` (by default ``<first 16 hex digits of sha256><ext>``); the URL is
    ``url_template`` / ``url_prefix`` + the path, or a ``file://`` URI."""

    url_schemes = ("file", "http", "https")

    kind = "local"
    settings_class = LocalSettings
    default_description = "a folder on this machine (no account, no network)"
    settings: LocalSettings

    @property
    def root(self) -> Path:
        return Path(self.settings.root or data_dir() / "images").expanduser()

    @property
    def destination(self) -> str:
        return str(self.root)

    async def upload(self, item: UploadItem, session: Any) -> UploadResult:
        relative, context = self.place(item)
        target = self.root / relative
        await asyncio.to_thread(self._store, item, target)
        return self.stored(item, relative, self.public_url(relative, context, target.resolve().as_uri()))

    def _store(self, item: UploadItem, target: Path) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_file() and target.stat().st_size == item.size and _sha256(target) == item.content_sha256():
                return  # the same content is already there
            with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".picbeam-", delete=False) as out:
                if item.data is not None:
                    out.write(item.data)
                else:  # stream: a large file is never held in memory
                    with open(item.path, "rb") as source:
                        shutil.copyfileobj(source, out, 1024 * 1024)
            os.replace(out.name, target)
        except OSError as exc:
            raise UploadError(f"cannot write {target}: {exc.strerror or exc}") from None

    async def delete(self, record: Mapping[str, Any], session: Any) -> None:
        target = self.root / self.recorded_path(record)
        if not target.is_file():
            raise UploadError(f"{target} is not there any more")
        target.unlink()


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@hookimpl
def register_hosts(register: Callable[[Host], None]) -> None:
    register(LocalHost())
