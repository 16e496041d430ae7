"""Compress and convert: ``--convert webp|avif|jpeg|png`` and ``--quality N``.

It is also the encoder of the pixel processors: an image that was resized, watermarked or turned
upright is encoded here, once (in its own format when there is no ``--convert``). PNG output is
optimised losslessly; animated GIF and WebP keep their frames (JPEG keeps the first). Recompressing in
the same format keeps the original when the result would not be smaller. Needs Pillow
(``pip install 'picbeam[image]'``).
"""

from __future__ import annotations

from collections.abc import Callable

from picbeam import Option, Processor, UploadItem, hookimpl
from picbeam.processing import CONVERT_CHOICES, FORMATS, ProcessSettings, encode, pending, pixels, settings_of


def _jpg(value: str, what: str) -> str:
    return "jpeg" if value.lower() == "jpg" else value


OPTIONS = (
    Option("convert", str, None, "Convert images to webp, avif, jpeg or png (none: keep the format).",
           choices=CONVERT_CHOICES, off=True, pillow=True, check=_jpg),
    Option("quality", int, None, "Quality 1-100 for JPEG, WebP and AVIF (recompresses).", min=1, max=100,
           pillow=True),
)  # fmt: skip


@hookimpl
def register_processors(register: Callable[[Processor], None]) -> None:
    register(Processor("convert", process, order=400, options=OPTIONS, signature=signature, pixels=True))


def signature(settings: ProcessSettings) -> str:
    parts = [f"convert={settings.convert}"] if settings.convert else []
    if settings.quality is not None:
        parts.append(f"q={settings.quality}")
    return ",".join(parts)


def process(item: UploadItem) -> None:
    settings = settings_of(item)
    if not settings.convert and settings.quality is None and pending(item) is None:
        return
    image = pixels(item)
    if image is None:
        if settings.convert:
            item.notes.append(f"convert: {item.mime} is not a raster image; sent as it is")
        return
    source = image.format
    target = FORMATS[settings.convert][0] if settings.convert else source
    if target not in {f[0] for f in FORMATS.values()}:
        target = "PNG"
    if target == source and not image.changed:
        if target == "GIF" or (target != "PNG" and settings.quality is None):
            item.notes.append(f"convert: already {target}")
            return
        if encode(item, target, only_if_smaller=True):
            item.notes.append(f"convert: recompressed {_how(target, settings)}")
        return
    before = item.size
    encode(item, target)
    change = f"{source} -> {_how(target, settings)}" if target != source else f"re-encoded {_how(target, settings)}"
    item.notes.append(f"convert: {change}, {before} -> {item.size} bytes")


def _how(fmt: str, settings: ProcessSettings) -> str:
    from picbeam.processing import DEFAULT_QUALITY

    if fmt in DEFAULT_QUALITY:
        return f"{fmt} quality {settings.quality or DEFAULT_QUALITY[fmt]}"
    return f"{fmt} (lossless)" if fmt == "PNG" else fmt
