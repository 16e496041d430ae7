"""Finding and loading plugins: entry points in the ``picbeam`` group, each one loaded on its own, and
:class:`Hooks`, the one place that calls them.

A plugin that fails to import, implements a hook wrongly or fails while registering is reported in
one line and skipped; the others keep working. The built-in plugins (``picbeam.plugins``) always
load. ``PICBEAM_LOAD_PLUGINS`` chooses the third-party plugins: unset loads all, an empty value none,
a comma list only those. ``PICBEAM_DISABLE_PLUGINS`` (a comma list) disables plugins by name, built-in
ones included; a flag that needs a disabled processor is then a usage error.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .config import Config, cache_dir
from .errors import PicbeamError
from .hosts import FILES_PLUGIN, BrokenHost, Host, HostDraft, HostRegistry
from .spec import HostSpec

if TYPE_CHECKING:
    import importlib.metadata

    from .importers import Importer
    from .items import UploadResult
    from .processing import Processor

ENTRY_POINT_GROUP = "picbeam"
PROJECT = "picbeam"
BUILTIN_PREFIX = "picbeam.plugins."
HOOKS = tuple(name for name, value in vars(hookspecs).items() if hasattr(value, f"{PROJECT}_spec"))
# Hooks that only some commands call: a plugin implementing nothing else is imported when one is called.
DEFERRABLE = frozenset({"register_hosts", "register_commands", "register_importers"})


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
    builtin: bool = False
    disabled: bool = False

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def debugging() -> bool:
    """``--debug`` or ``PICBEAM_DEBUG=1``: plugin failures print their traceback to stderr."""
    return os.environ.get("PICBEAM_DEBUG", "") not in ("", "0")


def print_traceback(exc: BaseException) -> None:
    if debugging():
        import traceback

        traceback.print_exception(exc, file=sys.stderr)


def _names(value: str | None) -> set[str] | None:
    return None if value is None else {n.strip() for n in value.split(",") if n.strip()}


class Plugins:
    """The loaded plugins of one process and what each one provided or failed to do."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        # Built-in plugins PICBEAM_DISABLE_PLUGINS turned off, loaded only to know what they declare.
        self.disabled: dict[str, ModuleType] = {}
        # Plugins found but not imported yet (see load_entry_points), by name.
        self.pending: dict[str, Point] = {}
        self.index = HookIndex()
        self.hooks = Hooks(self)

    # -- loading ------------------------------------------------------------------------------------
    def load_entry_points(self, selection: str | None = None, disable: str | None = None) -> None:
        """Load the built-ins, then the third-party plugins ``selection`` names (all when None).

        A plugin whose hooks the index (:class:`HookIndex`) knows, and which implements only hooks some
        commands need (:data:`DEFERRABLE`), is imported when one of them is called: a one-file upload
        does not import every host plugin."""
        wanted, off = _names(selection), _names(disable) or set()
        # Built-ins first: they register first, so a third-party clash is the one reported.
        for point in sorted(self.index.points(), key=lambda p: not p.value.startswith(BUILTIN_PREFIX)):
            builtin = point.value.startswith(BUILTIN_PREFIX)
            if not builtin and wanted is not None and point.name not in wanted:
                continue
            if point.name in self.infos:
                continue  # the same distribution seen twice on sys.path
            if point.name in off and not builtin:
                continue
            info = PluginInfo(name=point.name, module=point.value, builtin=builtin)
            info.distribution, info.version = point.distribution, point.version
            self.infos[info.name] = info
            known = None if point.name in off else self.index.hooks(point)
            if known is not None and known and set(known) <= DEFERRABLE:
                info.hooks = known
                self.pending[info.name] = point
                continue
            self._load(point, info, disabled=point.name in off)
        self.index.save()

    def load_pending(self, hook: str | None = None, names: Iterable[str] | None = None) -> None:
        """Import the plugins not imported yet that implement ``hook`` (any hook when None), or those
        ``names`` names."""
        for name, point in list(self.pending.items()):
            if (names is None or name in names) and (hook is None or hook in self.infos[name].hooks):
                del self.pending[name]
                self._load(point, self.infos[name], disabled=False)
        self.index.save()

    def _load(self, point: Point, info: PluginInfo, *, disabled: bool) -> None:
        try:
            module = point.load()
        except Exception as exc:  # any import-time failure of a third-party module
            info.errors.append(f"import failed: {type(exc).__name__}: {exc}")
            print_traceback(exc)
            return
        if disabled:
            info.disabled = True
            self.disabled[info.name] = module
            return
        self.add(module, info.name)
        if not info.errors:  # a plugin with a problem is imported (and reported) by every run
            self.index.learn(point, info.hooks)

    def add(self, plugin: ModuleType | object, name: str) -> None:
        """Register one plugin object (a module or an instance with hook methods) under ``name``."""
        info = self.infos.setdefault(name, PluginInfo(name=name, module=getattr(plugin, "__name__", "")))
        problem = _check_hooks(plugin)
        if problem:
            info.errors.append(problem)
            return
        try:
            self.manager.register(plugin, name=name)
        except Exception as exc:  # pluggy's PluginValidationError, in one line
            info.errors.append(f"invalid hook: {str(exc).strip().splitlines()[0]}")
            return
        info.hooks = sorted(hook.name for hook in self.manager.get_hookcallers(plugin) or [])
        if not info.hooks:
            info.errors.append("implements no hook (decorate its functions with @picbeam.hookimpl)")

    def report(self, plugin: str, message: str) -> None:
        errors = self.infos.setdefault(plugin, PluginInfo(name=plugin)).errors
        if message not in errors:
            errors.append(message)

    def label(self, name: str) -> str:
        """How messages name a plugin: ``plugin 'NAME' (DISTRIBUTION)``."""
        info = self.infos.get(name)
        return f"plugin '{name}'" + (f" ({info.distribution})" if info is not None and info.distribution else "")

    def errors(self) -> Iterator[str]:
        """One line per problem: which plugin, what failed."""
        for info in self.infos.values():
            for error in info.errors:
                yield f"{self.label(info.name)}: {error}"

    def hosts(self, config: Config, *, lazy: bool = False) -> HostRegistry:
        """Every host the plugins provide (see :meth:`Hooks.register_hosts`)."""
        return self.hooks.register_hosts(config, lazy=lazy)


def _check_hooks(plugin: object) -> str | None:
    """A misspelled hook or an argument the hook does not have, as one line with a "did you mean"."""
    for attribute in dir(plugin):
        function = getattr(plugin, attribute, None)
        if not callable(function) or getattr(function, f"{PROJECT}_impl", None) is None:
            continue
        if attribute not in HOOKS:
            import difflib  # for a misspelled hook only

            close = difflib.get_close_matches(attribute, HOOKS, n=1)
            hint = f", did you mean {close[0]}?" if close else f" (hooks: {', '.join(HOOKS)})"
            return f"unknown hook '{attribute}'{hint}"
        takes = list(inspect.signature(getattr(hookspecs, attribute)).parameters)
        extra = [name for name in inspect.signature(function).parameters if name not in takes]
        if extra:
            return f"hook '{attribute}' has no argument '{extra[0]}' (it passes: {', '.join(takes)})"
    return None


@dataclass(frozen=True)
class _Impl:
    """The parts of a pluggy hook implementation :meth:`Hooks._call` uses."""

    plugin_name: str
    function: Callable[..., Any]
    argnames: tuple[str, ...]


class Hooks:
    """The one place that calls plugins' hooks: one method per hook. Each plugin's implementation is called
    on its own, so one that raises is reported once, with its name, and changes nothing else."""

    def __init__(self, plugins: Plugins) -> None:
        self.plugins = plugins
        self._processors: list[Processor] | None = None
        self._disabled: list[Processor] | None = None
        self._formats: dict[str, Callable[[UploadResult], str]] | None = None
        self._importers: dict[str, Importer] | None = None
        self._failed: set[tuple[str, str]] = set()

    def _impls(self, hook: str, *, load: bool = True) -> list[Any]:
        if load:
            self.plugins.load_pending(hook)
        # pluggy calls the last registered first; registration order reads better (built-ins first).
        return list(reversed(getattr(self.plugins.manager.hook, hook).get_hookimpls()))

    def _call(
        self, impl: Any, hook: str, arguments: dict[str, Any], on_error: Callable[[str, str], None] | None = None
    ) -> bool:
        try:
            impl.function(*[arguments[name] for name in impl.argnames])
        except PicbeamError as exc:
            self._failure(impl.plugin_name, hook, str(exc), on_error)
            return False
        except Exception as exc:  # a third-party plugin's bug must not stop the others
            print_traceback(exc)
            self._failure(impl.plugin_name, hook, f"{type(exc).__name__}: {exc}", on_error)
            return False
        return True

    def _failure(self, plugin: str, hook: str, message: str, on_error: Callable[[str, str], None] | None) -> None:
        if on_error is not None:
            on_error(plugin, f"{hook} failed: {message}")
        elif (plugin, hook) not in self._failed:  # reported once, however many files it failed on
            self._failed.add((plugin, hook))
            self.plugins.report(plugin, f"{hook} failed: {message}")

    def register_hosts(self, config: Config, *, lazy: bool = False) -> HostRegistry:
        """Every host the plugins provide; a plugin's failure is reported and its other hosts kept.

        ``lazy``: for a command that uses the hosts it names (``upload``), the plugins already imported
        and the hosts.d folders register now; a name they do not settle is asked of the plugin of that
        name, and only then of every plugin (see :meth:`HostRegistry.settle`). The same host results:
        a hosts.d file's host replaces any plugin's of its name."""
        registry = HostRegistry()
        asked: set[str] = set()

        def registrar(plugin: str) -> Callable[[HostSpec | Host | HostDraft | BrokenHost], None]:
            def register(item: HostSpec | Host | HostDraft | BrokenHost) -> None:
                try:
                    registry.register(item, plugin)
                except PicbeamError as exc:  # a clash or an invalid host: name it, keep the rest
                    self.plugins.report(plugin, str(exc))

            return register

        def ask(impls: list[Any]) -> None:
            for impl in impls:
                if impl.plugin_name not in asked:
                    asked.add(impl.plugin_name)
                    self._call(impl, "register_hosts", {"register": registrar(impl.plugin_name), "config": config})
            for name, messages in config.host_warnings.items():
                for message in messages:
                    registry.warn_about(name, message)

        def finish() -> None:
            registry.more = None
            ask(self._impls("register_hosts"))
            registry.complete_drafts()
            for name, entry in registry.entries.items():
                info = self.plugins.infos.setdefault(entry.plugin, PluginInfo(name=entry.plugin))
                if name not in info.hosts:
                    info.hosts.append(name)

        def more(name: str | None) -> None:
            if name is not None and name in self.plugins.pending:
                self.plugins.load_pending("register_hosts", names=[name])
                ask(self._impls("register_hosts", load=False))
                if registry.defines(name):
                    return
            finish()

        if not lazy:
            finish()
            return registry
        self.plugins.load_pending("register_hosts", names=[FILES_PLUGIN])
        ask(self._impls("register_hosts", load=False))
        registry.more = more
        return registry

    def register_commands(self, app: Any) -> None:
        """Let plugins add commands to the typer ``app``."""
        for impl in self._impls("register_commands"):
            self._call(impl, "register_commands", {"app": app})

    def register_processors(self) -> list[Processor]:
        """Every processor, in the order they run (``order``, then registration order); a plain
        ``prepare_upload`` implementation is a processor at the default order, named after its plugin."""
        if self._processors is None:
            self._processors = self._collect_processors(self._impls("register_processors"))
            from .processing import Processor, SimpleStep

            for impl in self._impls("prepare_upload"):
                info = self.plugins.infos.get(impl.plugin_name)
                step = SimpleStep(impl.function, "item" in impl.argnames)
                self._processors.append(Processor(impl.plugin_name, step, version=info.version if info else None))
            self._processors.sort(key=lambda processor: processor.order)
        return self._processors

    def disabled_processors(self) -> list[Processor]:
        """The processors of disabled built-in plugins: their options exist, and using them is an error."""
        if self._disabled is not None:
            return self._disabled
        impls = [
            _Impl(name, module.register_processors, ("register",))
            for name, module in self.plugins.disabled.items()
            if hasattr(module, "register_processors")
        ]
        self._disabled = self._collect_processors(impls)
        return self._disabled

    def _collect_processors(self, impls: list[Any]) -> list[Processor]:
        from .processing import Processor

        found: list[Processor] = []
        for impl in impls:

            def register(processor: Processor, plugin: str = impl.plugin_name) -> None:
                if not isinstance(processor, Processor):
                    raise PicbeamError(f"register() takes a picbeam.Processor, not {type(processor).__name__}")
                if any(p.name == processor.name for p in found):
                    raise PicbeamError(f"processor '{processor.name}' is registered twice")
                found.append(processor)

            self._call(impl, "register_processors", {"register": register})
        return found

    def register_formats(self) -> dict[str, Callable[[UploadResult], str]]:
        """Output formats by name (``url``, ``markdown``, ... and the plugins' own)."""
        if self._formats is None:
            formats: dict[str, Callable[[UploadResult], str]] = {}
            for impl in self._impls("register_formats"):

                def register(name: str, render: Callable[[UploadResult], str], plugin: str = impl.plugin_name) -> None:
                    if name in formats:
                        self.plugins.report(plugin, f"format '{name}' is already registered; kept the first")
                    elif not callable(render) or not isinstance(name, str) or not name:
                        self.plugins.report(plugin, f"register({name!r}, ...) needs a name and a render(result)")
                    else:
                        formats[name] = render

                self._call(impl, "register_formats", {"register": register})
            self._formats = formats
        return self._formats

    def register_importers(self) -> dict[str, Importer]:
        """The formats ``picbeam hosts import`` reads, in the order they are detected."""
        if self._importers is None:
            from .importers import Importer

            importers: dict[str, Importer] = {}
            for impl in self._impls("register_importers"):

                def register(importer: Importer, plugin: str = impl.plugin_name) -> None:
                    if not isinstance(importer, Importer):
                        raise PicbeamError(f"register() takes a picbeam.importers.Importer, not {importer!r}")
                    if importer.name in importers:
                        raise PicbeamError(f"importer '{importer.name}' is already registered")
                    importers[importer.name] = importer

                self._call(impl, "register_importers", {"register": register})
            self._importers = importers
        return self._importers

    def after_upload(self, result: UploadResult, on_error: Callable[[str, str], None] | None = None) -> None:
        """Show each plugin the outcome of one upload; a plugin that raises changes nothing else (it is
        reported to ``on_error(plugin, message)``, by default kept for :meth:`Plugins.errors`)."""
        for impl in self._impls("after_upload"):
            self._call(impl, "after_upload", {"result": result}, on_error)

    def has(self, hook: str) -> bool:
        return bool(getattr(self.plugins.manager.hook, hook).get_hookimpls())


@dataclass(frozen=True)
class Point:
    """One entry point of the ``picbeam`` group and its distribution: what loading needs, listed without
    importlib.metadata when the index's listing is current."""

    name: str
    value: str
    distribution: str | None = None
    version: str | None = None

    @property
    def module(self) -> str:
        return self.value.partition(":")[0].strip()

    def load(self) -> Any:
        """Import the module and fetch the attribute ``module:attr`` names, as EntryPoint.load does
        (without importing importlib.metadata, which a run with a current listing never needs)."""
        import importlib

        target = importlib.import_module(self.module)
        attributes = self.value.partition(":")[2].partition("[")[0].strip()  # "[extras]" select nothing here
        for attribute in filter(None, attributes.split(".")):
            target = getattr(target, attribute)
        return target


class HookIndex:
    """What the last runs learnt about the plugins, so a run can leave a plugin unimported until a hook it
    implements is called: which hooks each plugin implements, and the ``picbeam`` entry points.

    A plugin's hooks are keyed by its entry point, its distribution's version and its module file's size
    and modification time: a plugin upgraded or edited is imported again and learnt anew. Only plugins that
    loaded cleanly are remembered; one that fails is imported, and reported, by every run. The listing of
    entry points is kept with the modification times of sys.path's folders and of the entry_points.txt
    files that declared them: installing, removing or reinstalling a distribution changes one. The index
    is a cache (``$XDG_CACHE_HOME/picbeam/plugins.json``): deleting it costs one slower run, and a folder
    that cannot be written only means no plugin is deferred."""

    VERSION = 2
    LIMIT = 500  # hook entries kept: enough for many environments sharing one cache folder

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_dir() / "plugins.json"
        self._data: dict[str, Any] | None = None
        self._keys: dict[str, str | None] = {}
        self._changed = False

    def _read(self) -> dict[str, Any]:
        if self._data is None:
            self._data = {"hooks": {}, "points": None}
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return self._data
            if not isinstance(data, dict) or data.get("version") != self.VERSION:
                return self._data
            hooks = data.get("hooks")
            if isinstance(hooks, dict):
                self._data["hooks"] = {
                    key: value
                    for key, value in hooks.items()
                    if isinstance(value, list) and all(isinstance(hook, str) for hook in value)
                }
            self._data["points"] = data.get("points")
        return self._data

    # -- the entry points -------------------------------------------------------------------------
    def points(self) -> list[Point]:
        """The ``picbeam`` entry points, from the listing when nothing was installed or removed since."""
        listing = self._read()["points"]
        try:
            if listing["stamp"] == _stamp(sys.path) and all(
                isinstance(p, str) and _stamp([p])[0] == [p, t] for p, t in listing["metadata"]
            ):
                points = [Point(*entry) for entry in listing["entries"]]
                if all(isinstance(p.name, str) and isinstance(p.value, str) for p in points):
                    return points
        except (TypeError, KeyError, ValueError):  # an older or damaged listing: list them again
            pass
        import importlib.metadata

        points, metadata = [], {}
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            distribution = version = None
            if entry_point.dist is not None:
                distribution, version = _name_and_version(entry_point.dist)
                folder = getattr(entry_point.dist, "_path", None)
                if folder is not None:  # rewritten in place by an editable reinstall
                    metadata[os.path.join(str(folder), "entry_points.txt")] = None
            points.append(Point(entry_point.name, entry_point.value, distribution, version))
        self._read()["points"] = {
            "stamp": _stamp(sys.path),
            "metadata": _stamp(list(metadata)),
            "entries": [[p.name, p.value, p.distribution, p.version] for p in points],
        }
        self._changed = True
        return points

    # -- the hooks of each plugin -----------------------------------------------------------------
    def key(self, point: Point) -> str | None:
        """The entry point's identity, None when its module file cannot be found without importing it."""
        if point.value not in self._keys:
            self._keys[point.value] = self._identity(point)
        return self._keys[point.value]

    @staticmethod
    def _identity(point: Point) -> str | None:
        import importlib.util

        try:
            spec = importlib.util.find_spec(point.module)
            origin = spec.origin if spec is not None else None
            stat = os.stat(origin) if origin else None
        except Exception:  # a parent package that fails to import: the plugin's own import will say so
            return None
        if stat is None:
            return None
        return f"{point.value}|{point.distribution}|{point.version}|{origin}|{stat.st_mtime_ns}|{stat.st_size}"

    def hooks(self, point: Point) -> list[str] | None:
        key = self.key(point)
        return None if key is None else self._read()["hooks"].get(key)

    def learn(self, point: Point, hooks: list[str]) -> None:
        key = self.key(point)
        known = self._read()["hooks"]
        if key is not None and known.get(key) != hooks:
            known.pop(key, None)
            known[key] = list(hooks)
            self._changed = True

    def save(self) -> None:
        if not self._changed or self._data is None:
            return
        self._changed = False
        hooks = dict(list(self._data["hooks"].items())[-self.LIMIT :])
        text = json.dumps({"version": self.VERSION, "hooks": hooks, "points": self._data["points"]}, indent=0)
        try:  # another run may write at the same time: each writes a whole file, the last one stays
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError:
            pass


def _stamp(paths: list[str]) -> list[list[Any]]:
    """Each path with its modification time (None when it does not exist): a distribution installed in,
    or removed from, a folder changes the folder's."""
    stamped: list[list[Any]] = []
    for path in paths:
        try:
            stamped.append([path, os.stat(path or ".").st_mtime_ns])
        except OSError:
            stamped.append([path, None])
    return stamped


def _name_and_version(dist: importlib.metadata.Distribution) -> tuple[str, str]:
    """A distribution's name and version, parsed once per distribution: each ``.name`` or ``.version``
    re-reads its METADATA, which for a dozen plugins of one distribution cost ~70 ms per run."""
    key = str(getattr(dist, "_path", id(dist)))
    if key not in _dist_names:
        # Only the header block: parsing the whole file as an email message includes the long
        # description (picbeam's README), which is most of the cost.
        text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
        headers = dict(
            line.split(": ", 1) for line in text.partition("\n\n")[0].splitlines() if line[:1].strip() and ": " in line
        )
        if "Name" in headers and "Version" in headers:
            _dist_names[key] = (headers["Name"].strip(), headers["Version"].strip())
        else:  # an unusual file: the full parser
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
        plugins.load_entry_points(os.environ.get("PICBEAM_LOAD_PLUGINS"), os.environ.get("PICBEAM_DISABLE_PLUGINS"))
        _loaded = plugins
    return _loaded
