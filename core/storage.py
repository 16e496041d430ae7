"""StorageHost: the shared base of hosts that store files under a path (local, S3, WebDAV, GitHub, SFTP).

A storage host declares its fields as a frozen dataclass of :class:`StorageSettings`; this module does
what every such host needs and nothing host-specific: a hosts.d file's fields checked and typed
(``extends = "s3"`` plus fields, or ``--set FIELD=VALUE``), ``${ENV}`` expanded when a run uses the host,
required fields enforced, secrets masked in ``hosts show`` and redacted from errors, the stored path made
from the ``path`` template and the public URL from ``url_template`` / ``url_prefix``.

A field is marked with :func:`secret` (masked, redacted) or :func:`required` (must be non-empty when the
host is used) in the settings dataclass::

    @dataclass(frozen=True)
    class BoxSettings(StorageSettings):
        endpoint: str = required()
        token: str = secret("${BOX_TOKEN}")
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import os
import types
import typing
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Self, TypeVar
from urllib.parse import quote

from .errors import ConfigError, UploadError, transient_status
from .hosts import Host
from .items import UploadItem, UploadResult
from .redaction import ENV_REFERENCE, MASK, mask_url, url_secrets
from .spec import check_fields, expand
from .templates import TemplateContext, check_template, render_path, render_url

DEFAULT_PATH = "{year}/{month}/{sha256:16}{ext}"


def secret(default: str = "") -> Any:
    """A settings field holding a credential: masked by ``hosts show``, redacted from every message."""
    return dataclasses.field(default=default, metadata={"secret": True})


def required(default: str = "") -> Any:
    """A settings field that must be set (after ``${ENV}`` expansion) before the host can be used."""
    return dataclasses.field(default=default, metadata={"required": True})


@dataclass(frozen=True)
class StorageSettings:
    """The fields every storage host has."""

    description: str = ""
    # Where a file is stored, relative to the host's root (see picbeam.templates for placeholders).
    path: str = DEFAULT_PATH
    # The public URL of a stored file: a template with {path}, or a prefix the stored path is appended to.
    url_template: str = ""
    url_prefix: str = ""
    max_bytes: int | None = None
    concurrency: int | None = None


class StorageHost(Host):
    """A host that stores each file under a path made from a template.

    Subclasses set ``kind`` (the registered name), ``settings_class`` and implement ``upload`` (using
    :meth:`place` and :meth:`stored`) and ``delete``. ``url_names`` lists the placeholders a
    subclass adds to ``url_template`` through :meth:`url_values`.
    """

    kind: ClassVar[str] = ""
    settings_class: ClassVar[type[StorageSettings]] = StorageSettings
    url_names: ClassVar[tuple[str, ...]] = ()
    default_description: ClassVar[str] = ""
    # An optional dependency the host needs: (module, picbeam extra that installs it).
    requires: ClassVar[tuple[str, str] | None] = None

    def __init__(self, name: str | None = None, settings: Any = None, source: str | None = None) -> None:
        self.name = name or self.kind
        self.settings = settings if settings is not None else self.settings_class()
        self.source = source or f"picbeam.plugins.{self.kind}"
        self.description = self.settings.description or self.default_description
        self.max_bytes = self.settings.max_bytes or type(self).max_bytes
        self.concurrency = self.settings.concurrency or type(self).concurrency
        # The settings as the host file wrote them, ${ENV} references unexpanded (hints name the variables).
        self.written = self.settings

    # -- configuration --------------------------------------------------------------------------------
    def configured(self, name: str, options: Mapping[str, Any], *, source: str) -> Host:
        known = [f.name for f in dataclasses.fields(self.settings_class)]
        check_fields(options, source, known)
        types_ = typing.get_type_hints(self.settings_class)
        changes = {
            key: _typed(f"{source}: host '{name}'", key, value, types_[key])
            for key, value in options.items()
            if key != "extends"
        }
        settings = dataclasses.replace(self.settings, **changes)
        where = f"{source}: host '{name}'"
        check_template(settings.path, where=f"{where}: field 'path'")
        check_template(settings.url_template, where=f"{where}: field 'url_template'", extra=("path", *self.url_names))
        self.check(settings, where)
        return type(self)(name, settings, source)

    def check(self, settings: Any, where: str) -> None:
        """Refuse settings that are wrong whatever the environment (a bad choice, a conflict); ``where``
        names the file and host. Called when a hosts.d file or ``--set`` configures the host."""

    def prepared(self) -> Self:
        if self.requires and importlib.util.find_spec(self.requires[0]) is None:
            raise missing_extra(*self.requires)
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(self.settings):
            value = getattr(self.settings, f.name)
            if isinstance(value, str) and "$" in value:
                changes[f.name] = expand(value, os.environ, host=self.name, field=f.name)
        settings = dataclasses.replace(self.settings, **changes)
        for f in dataclasses.fields(settings):
            if f.metadata.get("required") and not getattr(settings, f.name):
                raise ConfigError(
                    f"{self.source}: host '{self.name}': field '{f.name}' is required "
                    f'(set it in a hosts.d file with extends = "{self.kind}", or with --set {f.name}=...)'
                )
        host = type(self)(self.name, settings, self.source)
        host.written = self.written
        return host

    def field_name(self, name: str) -> str:
        """How a hint names field ``name``: with the environment variables its value comes from, as this
        host's file wrote it (``field 'secret_access_key' (R2_SECRET)``)."""
        variables = [m.group(1) for m in ENV_REFERENCE.finditer(str(getattr(self.written, name, "")))]
        return f"field '{name}'" + (f" ({', '.join(variables)})" if variables else "")

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        for f in dataclasses.fields(self.settings):
            value = getattr(self.settings, f.name)
            if value in ("", None):
                continue
            if f.metadata.get("secret") and not ENV_REFERENCE.search(str(value)):
                value = MASK
            elif isinstance(value, str) and "://" in value:  # a password or key written into a URL
                value = mask_url(value)
            out[f.name] = value
        out["description"] = self.description
        return out

    def secret_values(self) -> list[str]:
        values = [getattr(self.settings, f.name) for f in dataclasses.fields(self.settings)]
        in_urls = [s for v in values if isinstance(v, str) and "://" in v for s in url_secrets(v)]
        return [
            str(getattr(self.settings, f.name))
            for f in dataclasses.fields(self.settings)
            if f.metadata.get("secret") and getattr(self.settings, f.name)
        ] + in_urls

    # -- paths and URLs -------------------------------------------------------------------------------
    def place(self, item: UploadItem) -> tuple[str, TemplateContext]:
        """Where ``item`` is stored (a safe relative path from the ``path`` template) and the template
        context, for :meth:`public_url`."""
        context = TemplateContext.of(item)
        return render_path(self.settings.path, context), context

    def url_values(self) -> dict[str, str]:
        """This host's own URL placeholders (``{bucket}``, ``{repo}``...)."""
        return {}

    def public_url(self, path: str, context: TemplateContext, default: str) -> str:
        """The URL of a stored file: ``url_template``, else ``url_prefix`` + path, else ``default``."""
        if self.settings.url_template:
            return render_url(self.settings.url_template, path, context, self.url_values())
        if self.settings.url_prefix:
            return self.settings.url_prefix + quote(path)
        return default

    def stored(self, item: UploadItem, path: str, url: str, **answer: Any) -> UploadResult:
        """The result of storing ``item`` at ``path``; ``answer`` (with the path) is what
        :meth:`~picbeam.Host.delete` gets back in ``record["answer"]``."""
        return self.result(item, url, answer={"path": path, **answer}, endpoint=self.destination)

    @staticmethod
    def recorded_path(record: Mapping[str, Any]) -> str:
        """The stored path of an upload, from what the ledger kept (checked again: it is data from disk)."""
        from .templates import safe_relative_path

        answer = record.get("answer") or {}
        path = answer.get("path") if isinstance(answer, Mapping) else None
        if not path:
            raise UploadError("the record has no stored path (was it uploaded by this host?)")
        return safe_relative_path(str(path))


T = TypeVar("T")


class RunOnce(Generic[T]):
    """Async work done once per run and key (a login, a folder, a directory listing), whatever the
    number of concurrent uploads that need it: they all wait for the one attempt.

    A lasting failure is kept, so every file fails with the same line and no more requests; a transient
    one (or a network error) is forgotten, so the next file, or the engine's retry, tries again.
    """

    def __init__(self) -> None:
        self._tasks: dict[Hashable, asyncio.Future[T]] = {}

    async def get(self, key: Hashable, make: Callable[[], Awaitable[T]]) -> T:
        task = self._tasks.get(key)
        if task is None:
            task = self._tasks[key] = asyncio.ensure_future(make())
        try:
            return await asyncio.shield(task)
        except UploadError as exc:
            from .sending import is_transient

            if is_transient(exc):  # the one classifier: the engine's retry will call again
                self._forget(key, task)
            # A copy: the engine adds to the message of the error it is given.
            raise UploadError(exc.message, status=exc.status, transient=exc.transient) from None
        except Exception:
            self._forget(key, task)
            raise

    def forget(self, key: Hashable, result: object = None) -> None:
        """Drop what was done for ``key`` (a connection that broke), so the next caller does it again;
        given ``result``, only when that is still what was done (a concurrent caller that saw the same
        connection break may have made a new one already)."""
        task = self._tasks.get(key)
        if task is None:
            return
        if result is not None and not (task.done() and not task.cancelled() and task.exception() is None):
            return
        if result is None or task.result() is result:
            del self._tasks[key]

    def _forget(self, key: Hashable, task: asyncio.Future[T]) -> None:
        if task.done() and self._tasks.get(key) is task:
            del self._tasks[key]


def status_error(
    status: int, detail: str, hints: Mapping[int, str], *, retry_after: float | None = None
) -> UploadError:
    """An UploadError for an HTTP status: ``hints`` says what a status means on this host (what to do);
    the one classifier (:func:`picbeam.errors.transient_status`) says which are transient."""
    hint = hints.get(status) or ("the server had a problem; try again later" if status >= 500 else "")
    message = f"HTTP {status}" + (f": {detail}" if detail else "") + (f" ({hint})" if hint else "")
    return UploadError(message, status=status, transient=transient_status(status), retry_after=retry_after)


def missing_extra(module: str, extra: str) -> ConfigError:
    """The error for an optional dependency that is not installed."""
    return ConfigError(f"this host needs {module}: install picbeam[{extra}] (pip install 'picbeam[{extra}]')")


def _typed(where: str, key: str, value: Any, kind: Any) -> Any:
    """A field's value as its declared type (``--set`` gives strings; TOML gives its own types)."""
    kinds = set(typing.get_args(kind)) if isinstance(kind, types.UnionType) else {kind}
    if (value is None or value == "") and type(None) in kinds:
        return None  # "--set max_bytes=" removes a limit
    if bool in kinds:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return value.lower() in ("true", "yes", "on", "1")
        raise ConfigError(f"{where}: field '{key}' must be true or false, not {value!r}")
    if int in kinds:
        try:
            number = int(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or number <= 0:
            raise ConfigError(f"{where}: field '{key}' must be a positive whole number, not {value!r}")
        return number
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ConfigError(f"{where}: field '{key}' must be a string, not {type(value).__name__}")
    return str(value)
