"""Watermark: text (``--watermark TEXT``) or an image (``--watermark-image PATH``) drawn on each image.

Placed at ``--watermark-position`` (default bottom-right) with a margin, at ``--watermark-opacity``,
and scaled so its width is ``--watermark-scale`` of the image width. Text uses ``--watermark-font`` or
Pillow's own font: nothing is downloaded. Needs Pillow (``pip install 'picbeam[image]'``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from picbeam import ConfigError, Option, Processor, UploadError, UploadItem, hookimpl
from picbeam.processing import POSITIONS, ProcessSettings, pixels, settings_of

if TYPE_CHECKING:
    from PIL import Image


def _above_zero(value: float, what: str) -> float:
    if value <= 0:
        raise ConfigError(f"{what} must be above 0 and at most 1, not {value}")
    return value


OPTIONS = (
    Option("watermark", str, None, "Draw this text on each image.", off=True, pillow=True),
    Option("watermark_image", str, None, "Draw this image (a PNG with transparency) on each image.", off=True,
           pillow=True),
    Option("watermark_position", str, "bottom-right", f"Where: {', '.join(POSITIONS)}.", choices=POSITIONS),
    Option("watermark_opacity", float, 0.5, "0 (invisible) to 1 (opaque).", min=0, max=1),
    Option("watermark_scale", float, 0.25, "Watermark width as a fraction of the image width.", max=1,
           check=_above_zero),
    Option("watermark_font", str, None, "Font file for --watermark (default: Pillow's own font).", off=True),
)  # fmt: skip


@hookimpl
def register_processors(register: Callable[[Processor], None]) -> None:
    register(Processor("watermark", process, order=300, options=OPTIONS, signature=signature, pixels=True))


def signature(settings: ProcessSettings) -> str:
    if not (settings.watermark or settings.watermark_image):
        return ""
    what = f"text:{settings.watermark}" if settings.watermark else f"image:{_digest(settings.watermark_image)}"
    font = f",font:{_digest(settings.watermark_font)}" if settings.watermark and settings.watermark_font else ""
    return (
        f"watermark={what}{font},{settings.watermark_position},"
        f"{settings.watermark_opacity:g},{settings.watermark_scale:g}"
    )


def _digest(path: str | None) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12] if path else ""


def process(item: UploadItem) -> None:
    settings = settings_of(item)
    if not (settings.watermark or settings.watermark_image):
        return
    image = pixels(item)
    if image is None:
        return
    mark = _mark(settings, image.size[0])
    box = place(image.size, mark.size, settings.watermark_position)
    item.notes.append(f"watermark: {mark.size[0]}x{mark.size[1]} at {box[0]},{box[1]} ({settings.watermark_position})")
    image.apply(lambda frame: stamp(frame, mark, box))


def place(size: tuple[int, int], mark: tuple[int, int], position: str) -> tuple[int, int]:
    """Top-left corner of a ``mark``-sized box at ``position`` inside ``size``, with a margin."""
    margin = round(min(size) * 0.02)
    vertical, _, horizontal = position.partition("-") if "-" in position else (position, "", position)
    x = {"left": margin, "right": size[0] - mark[0] - margin}.get(horizontal, (size[0] - mark[0]) // 2)
    y = {"top": margin, "bottom": size[1] - mark[1] - margin}.get(vertical, (size[1] - mark[1]) // 2)
    return max(0, x), max(0, y)


def stamp(frame: Image.Image, mark: Image.Image, box: tuple[int, int]) -> Image.Image:
    """``frame`` with ``mark`` (RGBA) blended in at ``box``, in the frame's own mode."""
    mode = frame.mode
    canvas = frame.convert("RGBA")
    canvas.alpha_composite(mark, dest=box)
    if mode == "RGBA":
        return canvas
    return canvas.convert("RGB") if mode in ("RGB", "P", "CMYK", "YCbCr") else canvas.convert(mode)


def _mark(settings: ProcessSettings, width: int) -> Image.Image:
    """The watermark as an RGBA image of the right width, its alpha scaled by the opacity."""
    from PIL import Image, ImageDraw, ImageFont

    wanted = max(1, round(width * settings.watermark_scale))
    if settings.watermark_image:
        try:
            with Image.open(settings.watermark_image) as source:
                mark = source.convert("RGBA")
        except OSError as exc:
            raise UploadError(f"cannot read the watermark image {settings.watermark_image} ({exc})") from None
        height = max(1, round(mark.size[1] * wanted / mark.size[0]))
        mark = mark.resize((wanted, height), Image.Resampling.LANCZOS)
    else:
        text = settings.watermark or ""

        def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
            if settings.watermark_font:
                return ImageFont.truetype(settings.watermark_font, size)
            return ImageFont.load_default(size=size)

        probe = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font(100))
        size = max(6, round(100 * wanted / max(1, probe[2] - probe[0])))
        face = font(size)
        stroke = max(1, size // 16)
        left, top, right, bottom = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox(
            (0, 0), text, font=face, stroke_width=stroke
        )
        mark = Image.new("RGBA", (max(1, right - left), max(1, bottom - top)), (0, 0, 0, 0))
        ImageDraw.Draw(mark).text(
            (-left, -top), text, font=face, fill=(255, 255, 255, 255), stroke_width=stroke, stroke_fill=(0, 0, 0, 255)
        )
    alpha = mark.getchannel("A").point(lambda value: round(value * settings.watermark_opacity))
    mark.putalpha(alpha)
    return mark
