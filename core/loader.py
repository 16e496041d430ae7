"""Finding and loading plugins: entry points in the ``picbeam`` group, each one loaded on its own.

A plugin that fails to import, implements a hook wrongly or fails while registering is reported in
one line and skipped; the others keep working. ``PICBEAM_LOAD_PLUGINS`` chooses which are loaded:
unset loads all, an empty value loads none, a comma list loads only those.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .config import Config
from .errors import PicbeamError
from .hosts import BrokenHost, Host, HostDraft, HostRegistry
from .spec import HostSpec

ENTRY_POINT_GROUP = "picbeam"
PROJECT = "picbeam"


@dataclass
class PluginInfo:
    """What `picbeam plugins` shows about one plugin."""

    name: str
    module: str = ""
    distribution: str | None = None
    version: str | None = None
    hosts: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Plugins:
    """The loaded plugins of one process and what each one provided or failed to do."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}

    # -- loading ------------------------------------------------------------------------------------
    def load_entry_points(self, selection: str | None = None) -> None:
        wanted = None if selection is None else {n.strip() for n in selection.split(",") if n.strip()}
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if wanted is not None and entry_point.name not in wanted:
                continue
            if entry_point.name in self.infos:
                continue  # the same distribution seen twice on sys.path
            info = PluginInfo(name=entry_point.name, module=entry_point.value)
            if entry_point.dist is not None:
                info.distribution, info.version = _name_and_version(entry_point.dist)
            self.infos[info.name] = info
            try:
                module = entry_point.load()
            except Exception as exc:  # any import-time failure of a third-party module
                info.errors.append(f"import failed: {type(exc).__name__}: {exc}")
                continue
            self.add(module, info.name)

    def add(self, plugin: ModuleType | object, name: str) -> None:
        """Register one plugin object (a module or an instance with hook methods) under ``name``."""
        info = self.infos.setdefault(name, PluginInfo(name=name, module=getattr(plugin, "__name__", "")))
        try:
            self.manager.register(plugin, name=name)
        except Exception as exc:  # pluggy's PluginValidationError: a hook with arguments the spec lacks
            info.errors.append(f"invalid hook: {exc}")
            return
        try:
            self.manager.check_pending()
        except pluggy.PluginValidationError as exc:  # a misspelled hook name
            self.manager.unregister(name=name)
            info.errors.append(f"invalid hook: {exc}")
            return
        info.hooks = sorted(hook.name for hook in self.manager.get_hookcallers(plugin) or [])

    def report(self, plugin: str, message: str) -> None:
        self.infos.setdefault(plugin, PluginInfo(name=plugin)).errors.append(message)

    def errors(self) -> Iterator[str]:
        """One line per problem: which plugin, what failed."""
        for info in self.infos.values():
            for error in info.errors:
                yield f"plugin '{info.name}'{f' ({info.distribution})' if info.distribution else ''}: {error}"

    # -- calling hooks one plugin at a time -------------------------------------------------------
    def run_each(self, hook: str, *, on_error: Callable[[str, str], None] | None = None, **arguments: Any) -> None:
        """Call a hook in every plugin; one failing plugin is reported (to ``on_error(plugin, message)``,
        by default kept for :meth:`errors`) and skipped."""
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            self._call(impl, hook, arguments, on_error)

    def _call(
        self, impl: Any, hook: str, arguments: dict[str, Any], on_error: Callable[[str, str], None] | None = None
    ) -> None:
        report = on_error or self.report
        try:
            impl.function(*[arguments[name] for name in impl.argnames])
        except PicbeamError as exc:
            report(impl.plugin_name, f"{hook} failed: {exc}")
        except Exception as exc:  # a third-party plugin's bug must not stop the others
            report(impl.plugin_name, f"{hook} failed: {type(exc).__name__}: {exc}")

    def hosts(self, config: Config) -> HostRegistry:
        """Every host the plugins provide; a plugin's failure is reported and its other hosts kept."""
        registry = HostRegistry()

        def registrar(plugin: str) -> Callable[[HostSpec | Host | HostDraft | BrokenHost], None]:
            def register(item: HostSpec | Host | HostDraft | BrokenHost) -> None:
                try:
                    registry.register(item, plugin)
                except PicbeamError as exc:  # a clash or an invalid host: name it, keep the rest
                    self.report(plugin, str(exc))

            return register

        for impl in self.manager.hook.register_hosts.get_hookimpls():
            self._call(impl, "register_hosts", {"register": registrar(impl.plugin_name), "config": config})
        registry.complete_drafts()
        for name, entry in registry.entries.items():
            info = self.infos.setdefault(entry.plugin, PluginInfo(name=entry.plugin))
            if name not in info.hosts:
                info.hosts.append(name)
        return registry


def _name_and_version(dist: importlib.metadata.Distribution) -> tuple[str, str]:
    """A distribution's name and version, parsed once per distribution: each ``.name`` or ``.version``
    re-reads its METADATA, which for a dozen plugins of one distribution cost ~70 ms per run."""
    key = str(getattr(dist, "_path", id(dist)))
    if key not in _dist_names:
        metadata = dist.metadata
        _dist_names[key] = (metadata["Name"], metadata["Version"])
    return _dist_names[key]


_dist_names: dict[str, tuple[str, str]] = {}
_loaded: Plugins | None = None


def load_plugins(*, reload: bool = False) -> Plugins:
    """The process's plugins, loaded from entry points on first use."""
    global _loaded
    if _loaded is None or reload:
        plugins = Plugins()
        plugins.load_entry_points(os.environ.get("PICBEAM_LOAD_PLUGINS"))
        _loaded = plugins
    return _loaded
