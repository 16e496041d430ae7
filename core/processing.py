"""Processing files before they are uploaded: the plumbing every processor shares.

Processors are plugins on the public ``register_processors(register)`` hook (the built-in ones live in
``picbeam.plugins``: ``strip_metadata``, ``resize``, ``watermark``, ``convert``, ``rename``). This module
holds what they have in common:

- **settings**: ``[process]`` options resolved as command-line flags > the host's ``[process]`` table >
  config.toml's ``[process]`` table > defaults (:func:`resolve`), checked when they are read;
- **processors**: :class:`Processor` objects registered with ``register_processors``, each with its
  order and its own options (a plain ``prepare_upload`` implementation is a processor at order 500);
- **signature**: a text naming what the chain does with these settings; the ledger keys dedupe on the
  original content hash plus this signature (:func:`signature`);
- **the pool**: processing is CPU-bound, so the chain runs in a process pool sized to the machine,
  never on the event loop (:class:`Processing`);
- **temporary files**: each file's outputs go to its own folder under the run's temporary folder,
  removed after its upload and, whatever happens, when the run ends (:class:`Processing`);
- **pixels**: processors that work on decoded images share one decoded copy per file and encode it
  once (:func:`pixels`, :func:`encode`), so a resized, watermarked, converted JPEG loses quality once.
"""

from __future__ import annotations

import asyncio
import functools
import io
import os
import secrets
import shutil
import signal
import tempfile
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, PicbeamError, UploadError
from .items import UploadItem
from .options import Option, from_text, unknown

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from PIL import Image

    from .loader import Plugins

PILLOW_MISSING = "needs Pillow, which is not installed: pip install 'picbeam[image]'"
DEFAULT_ORDER = 500
WARNING = "warning: "
POSITIONS = ("top-left", "top", "top-right", "left", "center", "right", "bottom-left", "bottom", "bottom-right")
# --convert NAME -> (Pillow format, extension, MIME type); GIF only as a source kept in its format.
FORMATS = {
    "jpeg": ("JPEG", ".jpg", "image/jpeg"),
    "png": ("PNG", ".png", "image/png"),
    "webp": ("WEBP", ".webp", "image/webp"),
    "avif": ("AVIF", ".avif", "image/avif"),
    "gif": ("GIF", ".gif", "image/gif"),
}
CONVERT_CHOICES = ("webp", "avif", "jpeg", "png")
DEFAULT_QUALITY = {"JPEG": 85, "WEBP": 80, "AVIF": 60}
# Encoder effort: libwebp's method 2 and libavif's speed 8 measured 3-4x faster than their defaults (4, 6)
# for files no larger on 1600x1200 photos; an uploader sends hundreds of them.
EFFORT = {"WEBP": {"method": 2}, "AVIF": {"speed": 8}}
# Decoded frames of one animation may take at most this much memory (RGBA bytes).
MAX_DECODED_BYTES = 512 * 1024 * 1024
ORIENTATION = 0x0112  # the EXIF tag


# -- processors and their settings ---------------------------------------------------------------------
@dataclass(frozen=True)
class Processor:
    """One processing step, registered with ``register_processors(register)``.

    ``process(item)`` changes the file (see :class:`~picbeam.UploadItem`: ``item.replace(...)`` with a file
    written to ``item.temp_path(suffix)``). ``order`` places it in the chain (lower runs first; the
    built-ins use 100 strip_metadata, 200 resize, 300 watermark, 400 convert, 900 rename; 500 when not
    said). ``options`` are its own options: flags of ``upload``/``watch``, entries of ``[process]``
    tables and keywords of :func:`picbeam.upload`; it reads them as ``item.settings.NAME``.
    ``signature(settings)`` says what it does with those settings as text ("" when it would do nothing,
    and then it is not called; the ledger dedupes on this text). ``pixels`` marks a processor that works
    on the shared decoded image (:func:`pixels`); ``worker`` one that should run in a worker process (a
    cheap byte-level one says False and runs in a thread). ``process`` and ``signature`` must be
    module-level functions, so that worker processes can find them.
    """

    name: str
    process: Callable[[UploadItem], Any]
    order: int = DEFAULT_ORDER
    options: tuple[Option, ...] = ()
    signature: Callable[[ProcessSettings], str] | None = None
    pixels: bool = False
    worker: bool = True
    version: str | None = None

    def __call__(self, item: UploadItem) -> None:
        self.process(item)

    def describe(self, settings: ProcessSettings) -> str:
        """What this processor does with ``settings``; one that does not say is named (it always runs)."""
        if self.signature is not None:
            return self.signature(settings) or ""
        return f"+{self.name}" + (f"@{self.version}" if self.version else "")


@dataclass(frozen=True)
class SimpleStep:
    """A ``prepare_upload`` implementation (the simple form of a processor): called with the item."""

    function: Callable[..., Any]
    takes_item: bool

    def __call__(self, item: UploadItem) -> None:
        self.function(**({"item": item} if self.takes_item else {}))


class ProcessSettings:
    """The processing options of a run, read as attributes (``settings.max_width``); every declared option
    is there, with its default when nobody set it. ``None`` means "off" for the optional ones."""

    def __init__(self, values: Mapping[str, Any] | None = None, /, **given: Any) -> None:
        defaults = {name: option.default for name, option in process_options().items()}
        self.__dict__["_values"] = {**defaults, **(values or {}), **given}

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(f"no processing option {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("processing settings are read-only")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ProcessSettings) and self.values == other.values

    def __repr__(self) -> str:
        return f"ProcessSettings({self.values!r})"

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.__dict__["_values"])

    def get(self, name: str, default: Any = None) -> Any:
        return self.__dict__["_values"].get(name, default)

    @functools.cached_property
    def needs_pixels(self) -> bool:
        """Whether some option that needs Pillow (decoding and encoding images) is set (asked per file, and
        the settings do not change)."""
        known = process_options()
        return any(known[name].pillow and value not in (None, False, "", 0)
                   for name, value in self.__dict__["_values"].items() if name in known)  # fmt: skip


def process_options(*, available_only: bool = False) -> dict[str, Option]:
    """Every processing option the loaded processors declare (with ``available_only``, not those of
    disabled processors)."""
    from .loader import load_plugins

    hooks = load_plugins().hooks
    options: dict[str, Option] = {}
    for processor in [*hooks.register_processors(), *([] if available_only else hooks.disabled_processors())]:
        for option in processor.options:
            options.setdefault(option.name, option)
    return options


def option_owner(name: str) -> str | None:
    """The disabled processor that declares option ``name``, if one does."""
    from .loader import load_plugins

    for processor in load_plugins().hooks.disabled_processors():
        if any(option.name == name for option in processor.options):
            return processor.name
    return None


def check_options(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Check a ``[process]`` table (or the flags given), naming ``where`` in every error.

    Returns it normalised: ``none`` / empty / 0 values mean "off" and become None.
    """
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: [process] must be a table, not {table!r}")
    known = process_options()
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise unknown(key, known, where)
        if value is None:  # not given, or already checked and off
            out[key] = None
            continue
        owner = option_owner(key)
        if owner is not None:
            raise ConfigError(
                f"{where}: option '{key}' needs the '{owner}' processor, which PICBEAM_DISABLE_PLUGINS disables"
            )
        out[key] = known[key].validate(value, where)
    return out


def parse_option(key: str, text: str) -> Any:
    """A value typed on the command line (`picbeam config set process.quality 80`), converted."""
    known = process_options()
    if key not in known:
        raise unknown(f"process.{key}", [f"process.{name}" for name in known], "setting")
    value = from_text(text, known[key].type, f"option 'process.{key}'")
    check_options({key: value}, "config")
    return value


def resolve(
    flags: Mapping[str, Any] | None = None,
    host: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    *,
    host_name: str = "host",
    flags_from: str = "command line",
) -> ProcessSettings:
    """The settings in force: flags > the host's ``[process]`` > config.toml's ``[process]`` > defaults.

    A file named by an option must exist, and an option that needs Pillow fails here, once, when it is
    not installed: a user error is one line before anything is sent.
    """
    merged: dict[str, Any] = {}
    merged.update(check_options(config or {}, "config.toml [process]"))
    merged.update(check_options(host or {}, f"host '{host_name}' [process]"))
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    merged.update(check_options(given, flags_from))
    for key in ("watermark_image", "watermark_font"):
        if merged.get(key):
            path = Path(merged[key]).expanduser()
            if not path.is_file():
                raise ConfigError(f"--{key.replace('_', '-')} {path}: no such file")
            merged[key] = str(path.resolve())
    settings = ProcessSettings(merged)
    if settings.needs_pixels:
        _check_pillow(settings)
    return settings


def _check_pillow(settings: ProcessSettings) -> None:
    try:
        from PIL import features
    except ImportError:
        known = process_options()
        wanted = [
            option.flag_name
            for name, option in known.items()
            if option.pillow and settings.get(name) not in (None, False, "", 0)
        ] or ["image processing"]
        raise ConfigError(f"{wanted[0]} {PILLOW_MISSING}") from None
    if settings.get("convert") == "avif" and not features.check("avif"):
        raise ConfigError("--convert avif: this Pillow was built without AVIF support; upgrade Pillow (11.2 or newer)")


# -- the chain of processors ----------------------------------------------------------------------------
def collect_steps(plugins: Plugins | None) -> list[Processor]:
    """Every processor the plugins registered (``register_processors`` and ``prepare_upload``), in the
    order they run: by ``order``, equal orders in registration order."""
    if plugins is None:
        return []
    return plugins.hooks.register_processors()


def signature(settings: ProcessSettings, steps: Sequence[Processor]) -> str:
    """What the chain does to a file with these settings, as text: empty when it does nothing.

    The ledger keys dedupe on the original file's hash plus this: same original and same settings, the
    earlier upload is reused; other settings, the file is processed and sent again.
    """
    return ";".join(part for step in steps if (part := step.describe(settings)))


@dataclass
class Outcome:
    """What the chain did to one file, sent back from the worker process."""

    path: str | None = None
    data: bytes | None = None
    name: str = ""
    mime: str = ""
    notes: list[str] = field(default_factory=list)
    error: str | None = None


def run_steps(item: UploadItem, steps: Sequence[Processor]) -> Outcome:
    """Run the chain on one file (in a worker process). A processor that fails fails this file alone."""
    original, original_data = item.path, item.data
    current: Processor | None = None
    error = None
    try:
        for step in steps:
            current = step
            if not step.pixels:
                encode(item)  # a processor that reads the file must see the pixel changes made before it
            step(item)
        current = None
        encode(item)
    except PicbeamError as exc:
        error = f"{current.name}: {exc}" if current else str(exc)
    except MemoryError:
        error = f"{current.name if current else 'processing'}: out of memory (the image is too large)"
    except Exception as exc:  # a processor's bug fails this file, not the run
        error = f"{current.name if current else 'processing'} failed: {type(exc).__name__}: {exc}"
    finally:
        _pending.pop(id(item), None)
    # Intermediate files are not needed any more: only what is sent stays, until its upload is over.
    keep = item.path if error is None and item.data is None else None
    for path in item._temps:
        if path != keep:
            path.unlink(missing_ok=True)
    item._temps[:] = [keep] if keep in item._temps else []
    if error is not None:
        return Outcome(error=error, notes=item.notes)
    changed = str(item.path) if item.path != original and item.data is None else None
    data = item.data if item.data is not original_data else None
    return Outcome(path=changed, data=data, name=item.name, mime=item.mime, notes=item.notes)


def _ignore_interrupts() -> None:
    """Worker processes leave Ctrl-C to the main process, which stops the run in order."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def machine_workers() -> int:
    """Worker processes for this machine: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class Processing:
    """The processing of one run: its settings, its chain, its process pool and its temporary folder."""

    def __init__(
        self,
        settings: ProcessSettings | None = None,
        steps: Sequence[Processor] = (),
        *,
        explain: bool = False,
        workers: int | None = None,
    ) -> None:
        self.settings = settings or ProcessSettings()
        # Processors that would do nothing with these settings are not called at all.
        self.steps = [step for step in steps if step.describe(self.settings)]
        self.signature = signature(self.settings, self.steps)
        self.explain = explain
        self.workers = workers or machine_workers()
        # Problems worth one line on stderr at the end of the run (e.g. metadata that could not be removed).
        self.warnings: list[str] = []
        self._pool: ProcessPoolExecutor | None = None
        self._alone: set[ProcessPoolExecutor] = set()  # one-file pools that retry after a crash
        self._dir: Path | None = None
        self._lock = threading.Lock()
        # A worker process for any processor that decodes images or is not known to be light; light work
        # alone (lossless metadata stripping, renaming) is not worth starting processes for.
        heavy = self.settings.needs_pixels or any(step.worker for step in self.steps)
        self._light = not heavy
        self._in_threads = not heavy or not _picklable(self.steps)
        self._finalizer: weakref.finalize | None = None

    @classmethod
    def for_run(
        cls,
        plugins: Plugins | None,
        *,
        flags: Mapping[str, Any] | None = None,
        host: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        host_name: str = "host",
        explain: bool = False,
        flags_from: str = "command line",
    ) -> Processing:
        settings = resolve(flags, host, config, host_name=host_name, flags_from=flags_from)
        return cls(settings, collect_steps(plugins), explain=explain)

    @property
    def reencodes(self) -> bool:
        """Whether files may change size or type much (they are decoded and encoded again)."""
        return self.active and self.settings.needs_pixels

    @property
    def active(self) -> bool:
        """Whether any processor would do anything (otherwise files go as they are, and no pool starts)."""
        return bool(self.signature)

    # -- one file -------------------------------------------------------------------------------------
    async def prepare(self, item: UploadItem, *, splice: bool = False) -> None:
        """Run the chain on ``item``; raises :class:`UploadError` when a processor cannot handle it.

        ``splice``: the host reads the file only through ``item.open()``, so a light chain may send a big
        file as a :class:`~picbeam.items.Splice` of it rather than write a copy.
        """
        if not self.active:
            return
        item.settings = self.settings
        item.workdir = self._workdir()
        item.may_splice = splice and self._light
        # A big file is read again from disk by the processors: it must still be what was hashed.
        streamed = (item.size, item.mtime_ns) if item.data is None and item.path == item.source else None
        if self._in_threads:
            # Light work on bytes in memory costs less than a hop to a thread and back: it runs right here.
            if self._light and item.data is not None:
                outcome = run_steps(item, self.steps)
            else:
                outcome = await asyncio.to_thread(run_steps, item, self.steps)
        else:
            outcome = await self._in_pool(item)
            if outcome.path is not None:
                item.replace(path=Path(outcome.path))
            elif outcome.data is not None:
                item.replace(data=outcome.data)
            if outcome.name:
                item.name, item.mime = outcome.name, outcome.mime
            item.notes[:] = outcome.notes
        if streamed is not None and (outcome.path is not None or item.splice is not None):
            info = await asyncio.to_thread(os.stat, item.source)
            if (info.st_size, info.st_mtime_ns) != streamed:
                raise UploadError("the file changed while it was being processed; run again to send its new content")
        for note in outcome.notes:
            if note.startswith(WARNING):
                self.warn(note.removeprefix(WARNING))
        if outcome.error is not None:
            raise UploadError(outcome.error)

    async def _in_pool(self, item: UploadItem) -> Outcome:
        from concurrent.futures.process import BrokenProcessPool  # with the pool: most runs never start one

        loop = asyncio.get_running_loop()
        pool = self._get_pool()
        try:
            return await loop.run_in_executor(pool, run_steps, item, self.steps)
        except BrokenProcessPool:  # a worker died (a crash in an image library, the OOM killer) ...
            self._drop_pool(pool)
        # ... and every file the pool held failed with it: try this one again in a process of its own, so
        # that only the file that kills its process fails.
        alone = _new_pool(1)
        self._alone.add(alone)
        try:
            return await loop.run_in_executor(alone, run_steps, item, self.steps)
        except BrokenProcessPool:
            raise UploadError("processing this file crashed its worker process") from None
        finally:
            self._alone.discard(alone)
            alone.shutdown(wait=False)

    def release(self, item: UploadItem) -> None:
        """Remove the file processing wrote for ``item`` (its upload is over): one unlink, when there is one."""
        if self._dir is not None and item.data is None and item.path.parent == self._dir:
            item.path.unlink(missing_ok=True)
        for path in item._temps:
            path.unlink(missing_ok=True)
        item._temps.clear()

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    # -- resources ------------------------------------------------------------------------------------
    def _workdir(self) -> Path:
        """The run's folder for processed files, named but not made: the first file written makes it
        (UploadItem.temp_path), and a run that writes nothing touches no disk. The name is unguessable."""
        with self._lock:
            if self._dir is None:
                self._dir = Path(tempfile.gettempdir()) / f"picbeam-{os.getpid()}-{secrets.token_hex(8)}"
                # Removed at interpreter exit too, should close() never be called.
                self._finalizer = weakref.finalize(self, shutil.rmtree, self._dir, True)
            return self._dir

    def _get_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = _new_pool(self.workers)
            return self._pool

    def _drop_pool(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers (each finishes the file it holds) and remove every temporary file."""
        with self._lock:
            pools, self._pool = [self._pool, *self._alone], None
        for pool in pools:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        if self._finalizer is not None:
            self._finalizer()  # removes the temporary folder


def _new_pool(workers: int) -> ProcessPoolExecutor:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn: a fresh interpreter, never a fork of this process's threads and open connections.
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_ignore_interrupts
    )


def _picklable(steps: Sequence[Processor]) -> bool:
    import pickle

    try:
        pickle.dumps(list(steps))
    except Exception:
        return False
    return True


# -- pixels: one decoded image per file, shared by the processors that need it -------------------------
@dataclass
class Pixels:
    """A decoded image (all frames of an animation) waiting to be encoded once."""

    frames: list[Image.Image]
    format: str  # Pillow's name of the source format: JPEG, PNG, GIF, WEBP...
    durations: list[int] = field(default_factory=list)
    loop: int | None = None
    icc: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    changed: bool = False

    @property
    def size(self) -> tuple[int, int]:
        return self.frames[0].size

    @property
    def animated(self) -> bool:
        return len(self.frames) > 1

    def apply(self, change: Callable[[Image.Image], Image.Image]) -> None:
        """Change every frame (``change(frame)`` returns the new frame)."""
        self.frames = [change(frame) for frame in self.frames]
        self.changed = True


_pending: dict[int, Pixels] = {}
RASTER = ("image/jpeg", "image/png", "image/gif", "image/webp", "image/avif", "image/bmp", "image/tiff")


def pending(item: UploadItem) -> Pixels | None:
    """The decoded image of ``item`` if a processor already decoded it."""
    return _pending.get(id(item))


def pixels(item: UploadItem) -> Pixels | None:
    """The decoded image of ``item`` (decoded once, EXIF orientation applied), or None when it is not a
    raster image. A raster image that cannot be decoded raises :class:`UploadError`."""
    if id(item) in _pending:
        return _pending[id(item)]
    if item.mime not in RASTER:
        return None
    try:
        from PIL import Image, ImageOps, ImageSequence
    except ImportError:
        raise UploadError(PILLOW_MISSING) from None
    try:
        with Image.open(io.BytesIO(item.data) if item.data is not None else item.path) as image:
            count = getattr(image, "n_frames", 1)
            width, height = image.size
            if count * width * height * 4 > MAX_DECODED_BYTES:
                raise UploadError(f"{count} frame(s) of {width}x{height} are too large to process here")
            info = dict(image.info)
            loaded = Pixels(
                [], image.format or "PNG", loop=info.get("loop"), icc=info.get("icc_profile"), xmp=info.get("xmp")
            )
            if count > 1:
                for frame in ImageSequence.Iterator(image):
                    loaded.durations.append(int(frame.info.get("duration", info.get("duration", 100)) or 100))
                    loaded.frames.append(frame.convert("RGBA"))
            else:
                image.load()
                # Encoders do not carry the EXIF orientation over: turn the pixels upright instead.
                loaded.changed = image.getexif().get(ORIENTATION, 1) not in (1, None)
                upright = ImageOps.exif_transpose(image) if loaded.changed else image.copy()
                loaded.frames.append(upright)
                loaded.exif = upright.info.get("exif", info.get("exif"))
    except UploadError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise UploadError(f"cannot decode this {item.mime.split('/')[-1].upper()} image ({exc})") from None
    _pending[id(item)] = loaded
    return loaded


def encode(
    item: UploadItem, target: str | None = None, quality: int | None = None, *, only_if_smaller: bool = False
) -> bool:
    """Write the decoded image of ``item`` (if any) to a new file in ``target`` format (a Pillow format
    name; default: the source's) and send that file instead. Returns whether the file was replaced.

    Without ``target`` and unchanged pixels it does nothing. ``only_if_smaller`` keeps the file as it
    was when the new one would not be smaller (recompressing in the same format).
    """
    image = _pending.get(id(item))
    if image is None or (target is None and not image.changed):
        return False
    del _pending[id(item)]
    settings = item.settings or ProcessSettings()
    fmt = target or (image.format if image.format in {f[0] for f in FORMATS.values()} else "PNG")
    _, extension, mime = next(v for v in FORMATS.values() if v[0] == fmt)
    frames = image.frames
    if image.animated and fmt == "JPEG":
        frames = frames[:1]
        item.notes.append("convert: JPEG has no animation; kept the first frame")
    frames = [_fit_mode(frame, fmt) for frame in frames]
    options: dict[str, Any] = {}
    if fmt in DEFAULT_QUALITY:
        options["quality"] = quality or settings.quality or DEFAULT_QUALITY[fmt]
    if fmt in ("PNG", "JPEG"):
        options["optimize"] = True
    options.update(EFFORT.get(fmt, {}))
    if image.icc:
        options["icc_profile"] = image.icc
    if settings.keep_metadata:
        options.update({k: v for k, v in (("exif", image.exif), ("xmp", image.xmp)) if v})
    if len(frames) > 1:
        options.update(save_all=True, append_images=frames[1:], duration=image.durations, loop=image.loop or 0)
    path = item.temp_path(extension)
    try:
        frames[0].save(path, fmt, **options)
    except (OSError, ValueError, KeyError) as exc:
        raise UploadError(f"cannot write {fmt} ({exc})") from None
    if only_if_smaller and path.stat().st_size >= item.size:
        path.unlink()
        item.notes.append(f"convert: kept the file as it was (re-encoding made it no smaller than {item.size} bytes)")
        return False
    name = PurePosixPath(item.name)
    item.replace(path=path, name=str(name.with_name(name.stem + extension)), mime=mime)
    return True


def _fit_mode(frame: Image.Image, fmt: str) -> Image.Image:
    """A frame in a mode ``fmt`` can store (JPEG has no transparency: it goes onto white)."""
    from PIL import Image

    if fmt == "JPEG":
        if frame.mode in ("RGB", "L", "CMYK"):
            return frame
        rgba = frame.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if fmt in ("WEBP", "AVIF") and frame.mode not in ("RGB", "RGBA"):
        has_alpha = "A" in frame.mode or "transparency" in frame.info
        return frame.convert("RGBA" if has_alpha else "RGB")
    return frame


def warn(item: UploadItem, message: str) -> None:
    """Note a problem worth one line on stderr at the end of the run (said once per distinct message)."""
    item.notes.append(WARNING + message)


def settings_of(item: UploadItem) -> ProcessSettings:
    """The settings in force for ``item`` (the defaults when it is processed outside a run)."""
    return item.settings or ProcessSettings()
