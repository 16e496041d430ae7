"""The local folder host: copies files under a root folder with content-addressed names.

It is the default host when none is configured (it needs no account and no network); serve the
folder from your own web server and set ``url_prefix`` to its address.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from picbeam import ConfigError, Host, UploadError, UploadItem, UploadResult, hookimpl
from picbeam.config import data_dir
from picbeam.spec import check_fields, expand

OPTIONS = ("description", "root", "url_prefix", "max_bytes")


class LocalHost(Host):
    """Stores ``<first 16 hex digits of sha256><ext>`` under ``root``; the URL is ``url_prefix`` + that
    name, or a ``file://`` URI when there is no prefix."""

    def __init__(
        self,
        name: str = "local",
        root: str | None = None,
        url_prefix: str = "",
        description: str = "",
        max_bytes: int | None = None,
        source: str = "picbeam.plugins.local",
    ) -> None:
        self.name = name
        self.root_text = root or str(data_dir() / "images")
        self.url_prefix = url_prefix
        self.description = description or "a folder on this machine (no account, no network)"
        self.max_bytes = max_bytes
        self.source = source

    @property
    def root(self) -> Path:
        return Path(self.root_text).expanduser()

    @property
    def destination(self) -> str:
        return str(self.root)

    def configured(self, name: str, options: Mapping[str, Any], *, source: str) -> Host:
        check_fields(options, source, OPTIONS)
        fields = {
            "root": self.root_text,
            "url_prefix": self.url_prefix,
            "max_bytes": self.max_bytes,
            "description": self.description,
            **options,
        }
        if fields["max_bytes"] is not None and not isinstance(fields["max_bytes"], int):
            raise ConfigError(f"{source}: field 'max_bytes' must be a whole number")
        return LocalHost(
            name,
            str(fields["root"]),
            str(fields["url_prefix"]),
            str(fields["description"]),
            fields["max_bytes"],
            source,
        )

    def prepared(self) -> Host:
        return LocalHost(
            self.name,
            expand(self.root_text, os.environ, host=self.name, field="root"),
            expand(self.url_prefix, os.environ, host=self.name, field="url_prefix"),
            self.description,
            self.max_bytes,
            self.source,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "kind": "local",
            "root": self.root_text,
            "url_prefix": self.url_prefix,
            "max_bytes": self.max_bytes,
        }

    async def upload(self, item: UploadItem, session: Any) -> UploadResult:
        relative = item.sha256[:16] + _extension(item)
        target = self.root / relative
        await asyncio.to_thread(self._store, item, target)
        url = self.url_prefix + relative if self.url_prefix else target.resolve().as_uri()
        return self.result(item, url, endpoint=str(self.root), answer={"path": relative})

    def _store(self, item: UploadItem, target: Path) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists() and target.stat().st_size == item.size:
                return  # same content, same name: already there
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
        answer = record.get("answer") or {}
        target = self.root / str(answer.get("path", ""))
        if target == self.root or not target.is_file():
            raise UploadError(f"{target} is not there any more")
        target.unlink()


def _extension(item: UploadItem) -> str:
    suffix = Path(item.name).suffix.lower()
    if suffix and len(suffix) <= 6:
        return suffix
    return mimetypes.guess_extension(item.mime) or ""


@hookimpl
def register_hosts(register: Callable[[Host], None]) -> None:
    register(LocalHost())
