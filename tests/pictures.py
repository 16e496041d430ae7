"""Images generated for the processing tests and the benchmark (Pillow; nothing downloaded)."""

from __future__ import annotations

import io

from PIL import Image, ImageCms, ImageDraw, PngImagePlugin

GPS = {1: "N", 2: (48.0, 51.0, 29.6), 3: "E", 4: (2.0, 17.0, 40.2)}
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="48,51.49N"/></rdf:RDF>'
    b"</x:xmpmeta>"
)


def scene(width: int, height: int, seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A photo-like picture: gradients, shapes and sensor noise; ``seed`` makes each one different."""
    red = Image.linear_gradient("L").resize((width, height))
    green = Image.linear_gradient("L").rotate(90).resize((width, height))
    blue = Image.effect_noise((width, height), 40 + seed % 20)
    image = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(image)
    for i in range(6):
        x, y = (seed * 97 + i * 131) % width, (seed * 53 + i * 71) % height
        draw.ellipse((x, y, x + width // 4, y + height // 4), fill=((seed * 40 + i * 50) % 256, 90, 160))
    noise = Image.effect_noise((width, height), 12).convert("RGB")
    return Image.blend(image, noise, 0.15).convert(mode)


def exif_bytes(orientation: int = 6, gps: bool = True) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Picbeam Camera Co."
    exif[0xA431] = "SERIAL-0042"  # BodySerialNumber... kept in IFD0 here for simplicity
    if gps:
        exif.get_ifd(0x8825).update(GPS)
    return exif.tobytes()


def srgb() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def jpeg_with_exif(width: int = 320, height: int = 240, seed: int = 0, quality: int = 92) -> bytes:
    """A JPEG with EXIF (GPS, orientation 6, camera serial), XMP, an ICC profile and a comment."""
    out = io.BytesIO()
    scene(width, height, seed).save(
        out, "JPEG", quality=quality, exif=exif_bytes(), icc_profile=srgb(), xmp=XMP, comment=b"shot at home"
    )
    return out.getvalue()


def png_with_text(width: int = 200, height: int = 150, seed: int = 1) -> bytes:
    """A PNG with tEXt, zTXt and iTXt chunks and an eXIf chunk with GPS."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "taken at 12 Rue Example")
    info.add_text("Author", "someone", zip=True)
    info.add_itxt("Location", "48.85N 2.29E", lang="en")
    out = io.BytesIO()
    scene(width, height, seed, "RGBA").save(out, "PNG", pnginfo=info, exif=exif_bytes(orientation=1))
    return out.getvalue()


def webp_with_exif(width: int = 200, height: int = 150, seed: int = 2) -> bytes:
    out = io.BytesIO()
    scene(width, height, seed).save(
        out, "WEBP", quality=90, exif=exif_bytes(orientation=1), xmp=XMP, icc_profile=srgb()
    )
    return out.getvalue()


def animated_gif(frames: int = 4, size: int = 64) -> bytes:
    pictures = [scene(size, size, seed).convert("P", palette=Image.Palette.ADAPTIVE) for seed in range(frames)]
    out = io.BytesIO()
    pictures[0].save(out, "GIF", save_all=True, append_images=pictures[1:], duration=80, loop=0)
    return out.getvalue()


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
