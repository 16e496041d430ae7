"""Resize: shrink images to fit ``--max-width`` / ``--max-height``, keeping the aspect ratio.

Never enlarges. Animations are resized frame by frame. Needs Pillow (``pip install 'picbeam[image]'``).
"""

from __future__ import annotations

from collections.abc import Callable

from picbeam import Option, Processor, UploadItem, hookimpl
from picbeam.processing import ProcessSettings, pixels, settings_of

OPTIONS = (
    Option("max_width", int, None, "Shrink wider images to this width (never enlarges; 0: no limit).", min=0,
           off=True, pillow=True),
    Option("max_height", int, None, "Shrink taller images to this height (never enlarges; 0: no limit).", min=0,
           off=True, pillow=True),
)  # fmt: skip


@hookimpl
def register_processors(register: Callable[[Processor], None]) -> None:
    register(Processor("resize", process, order=200, options=OPTIONS, signature=signature, pixels=True))


def signature(settings: ProcessSettings) -> str:
    if not (settings.max_width or settings.max_height):
        return ""
    return f"fit={settings.max_width or ''}x{settings.max_height or ''}"


def fitted(size: tuple[int, int], max_width: int | None, max_height: int | None) -> tuple[int, int] | None:
    """The size that fits the bounds with the same aspect ratio, or None when it already fits."""
    width, height = size
    scale = min((max_width or width) / width, (max_height or height) / height)
    if scale >= 1:
        return None
    return max(1, min(round(width * scale), max_width or width)), max(
        1, min(round(height * scale), max_height or height)
    )


def process(item: UploadItem) -> None:
    settings = settings_of(item)
    if not (settings.max_width or settings.max_height):
        return
    image = pixels(item)
    if image is None:
        return
    target = fitted(image.size, settings.max_width, settings.max_height)
    if target is None:
        item.notes.append(f"resize: {image.size[0]}x{image.size[1]} already fits")
        return
    from PIL import Image

    item.notes.append(f"resize: {image.size[0]}x{image.size[1]} -> {target[0]}x{target[1]}")
    image.apply(lambda frame: frame.resize(target, Image.Resampling.LANCZOS))
