"""Strip location and identifying metadata, losslessly: byte surgery on the file, no re-encoding.

On by default (``--keep-metadata`` turns it off). JPEG loses its EXIF, XMP, IPTC/Photoshop, comment,
JFIF and JFXX thumbnails, MPF and other application segments and anything after the end of the image;
PNG loses its ``eXIf``, ``tEXt``, ``iTXt``, ``zTXt`` and ``tIME`` chunks; WebP its ``EXIF`` and ``XMP``
chunks; GIF its comment and application extensions (XMP and others). What decoders need stays: the JFIF
header, the ICC colour profile (APP2 / ``iCCP`` / ``ICCP`` / GIF's ``ICCRGBG1012``), Adobe's colour
transform (APP14), gamma and colour chunks, GIF's loop count. The pixels are the same bytes.

A small file is edited in memory and, when it holds nothing to remove, sent as it is, never copied. A
big one is read for its structure only; the stripper names the ranges to keep (a :class:`Splice`), and
the file streams through that edit as it is sent, or, for a host that needs a file, is copied once.

The EXIF orientation is kept, alone in a minimal EXIF block, so a portrait photo still shows upright;
``--apply-orientation`` rotates the pixels instead (that re-encodes, and needs Pillow).
"""

from __future__ import annotations

import io
import os
import re
import struct
import zlib
from collections.abc import Callable
from typing import BinaryIO

from picbeam import Option, Processor, UploadError, UploadItem, hookimpl
from picbeam.items import Splice
from picbeam.processing import ORIENTATION, ProcessSettings, pixels, settings_of, warn

CHUNK = 1024 * 1024
NOT_SUPPORTED = ("image/heic", "image/avif", "image/tiff", "image/jxl")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_DROPPED = {b"eXIf": "EXIF", b"tEXt": "text", b"iTXt": "text", b"zTXt": "text", b"tIME": "time"}
GPS_IFD = 0x8825
JFIF_THUMBNAIL = "JFIF thumbnail"


OPTIONS = (
    Option("keep_metadata", bool, False, "Send EXIF/XMP/IPTC (GPS location, camera serial...) as they are "
           "(default: strip).", negative="--strip-metadata",
           panel="Metadata (GPS location, camera serial: stripped unless kept)"),
    Option("apply_orientation", bool, False, "Rotate the pixels as the EXIF orientation says (re-encodes; needs "
           "Pillow).", pillow=True),
)  # fmt: skip


@hookimpl
def register_processors(register: Callable[[Processor], None]) -> None:
    # Byte work, so no worker process; with --apply-orientation it leaves rotated pixels to the encoder.
    register(Processor("strip_metadata", process, order=100, options=OPTIONS, signature=signature, pixels=True,
                       worker=False))  # fmt: skip


def signature(settings: ProcessSettings) -> str:
    if settings.keep_metadata:
        return "orient" if settings.apply_orientation else ""
    return "strip+orient" if settings.apply_orientation else "strip"


def process(item: UploadItem) -> None:
    settings = settings_of(item)
    if settings.apply_orientation and item.mime in STRIPPERS:
        image = pixels(item)  # decoding turns it upright; the encoder writes it without the tag
        if image is not None and image.changed:
            item.notes.append("strip_metadata: rotated the pixels upright (EXIF orientation)")
            if not settings.keep_metadata:
                item.notes.append("strip_metadata: removed all metadata (the image is re-encoded)")
            return
    if settings.keep_metadata:
        return
    if item.mime in NOT_SUPPORTED:
        item.notes.append(f"strip_metadata: kept the metadata ({item.mime} is not supported)")
        warn(item, f"metadata was not removed from {item.mime} files: picbeam strips JPEG, PNG, WebP and GIF")
        return
    if item.mime not in STRIPPERS:
        return
    extension, stripper = STRIPPERS[item.mime]
    try:
        if item.data is not None:  # a small file: edited in memory, and not copied when nothing changes
            splice, removed = stripper(Source(io.BytesIO(item.data), len(item.data)))
            if removed:
                item.replace(data=splice.join(item.data))
        else:  # a big file is never held in memory: the stripper reads its structure and plans the edit
            with open(item.path, "rb") as handle:
                splice, removed = stripper(Source(handle, os.fstat(handle.fileno()).st_size))
                if removed and item.may_splice:
                    item.replace(splice=splice)  # streamed through the edit as it is sent
                elif removed:
                    copy = item.temp_path(extension)
                    with open(copy, "wb") as out:
                        for chunk in splice.chunks(handle):
                            out.write(chunk)
                    item.replace(path=copy)
    except (ValueError, struct.error) as exc:
        kind = item.mime.split("/")[1].upper()
        raise UploadError(f"this {kind} file is damaged ({exc}); --keep-metadata sends it as it is") from None
    except OSError as exc:
        raise UploadError(f"cannot read the file ({exc.strerror or exc})") from None
    if not removed:
        item.notes.append("strip_metadata: nothing to remove")
        return
    item.notes.append(f"strip_metadata: removed {', '.join(removed)}")


def strip(mime: str, data: bytes) -> tuple[bytes, list[str]]:
    """``data`` without its metadata, and what was removed (for tests and scripts)."""
    splice, removed = STRIPPERS[mime][1](Source(io.BytesIO(data), len(data)))
    return splice.join(data), removed


class Source:
    """A file of known size read forward, with exact reads and skips that call a short file damaged.

    The strippers read only structure (headers, small segments); what they keep of the file they name
    as ranges of it (:meth:`keep`), so its bulk is never copied here."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self._handle, self.size = handle, size

    def tell(self) -> int:
        return self._handle.tell()

    def seek(self, position: int) -> None:
        self._handle.seek(position)

    def read(self, size: int) -> bytes:
        return self._handle.read(size)

    def at_end(self) -> bool:
        return self.tell() >= self.size

    def exact(self, size: int, what: str) -> bytes:
        data = self._handle.read(size)
        if len(data) < size:
            raise ValueError(f"it ends inside {what}")
        return data

    def skip(self, size: int, what: str) -> int:
        """Pass over the next ``size`` bytes without reading them; returns where they start."""
        at = self.tell()
        if at + size > self.size:
            raise ValueError(f"{what} runs past the end of the file")
        self._handle.seek(at + size)
        return at

    def keep(self, size: int, out: Splice, what: str) -> None:
        """Keep the next ``size`` bytes as they are."""
        out.keep(self.skip(size, what), size)


# -- EXIF: read the orientation, write a block that holds only it -----------------------------------------
def exif_facts(tiff: bytes) -> tuple[int, bool]:
    """The orientation (1 when absent) of a TIFF-structured EXIF block, and whether it has GPS data."""
    if tiff.startswith(b"Exif\x00\x00"):
        tiff = tiff[6:]
    try:
        order = {b"II": "<", b"MM": ">"}[tiff[:2]]
        (offset,) = struct.unpack_from(order + "I", tiff, 4)
        (count,) = struct.unpack_from(order + "H", tiff, offset)
        orientation, gps = 1, False
        for index in range(count):
            tag, kind, _, value = struct.unpack_from(order + "HHI4s", tiff, offset + 2 + 12 * index)
            if tag == ORIENTATION and kind == 3:
                orientation = struct.unpack_from(order + "H", value)[0]
            gps = gps or tag == GPS_IFD
        return (orientation if 1 <= orientation <= 8 else 1), gps
    except (KeyError, struct.error):
        return 1, False


def orientation_only(orientation: int) -> bytes:
    """A minimal TIFF-structured EXIF block with one entry, the orientation."""
    return b"II*\x00" + struct.pack("<IHHHIHHI", 8, 1, ORIENTATION, 3, 1, orientation, 0, 0)


def exif_replacement(block: bytes) -> tuple[bytes | None, str | None]:
    """What an EXIF block becomes: (a minimal block holding only the orientation, or None; what was
    removed). A block that is already minimal stays as it is: (``block``, None)."""
    orientation, gps = exif_facts(block)
    minimal = orientation_only(orientation) if orientation != 1 else None
    if minimal is not None and block.removeprefix(b"Exif\x00\x00") == minimal:
        return block, None
    return minimal, "EXIF (with GPS location)" if gps else "EXIF"


# -- JPEG -------------------------------------------------------------------------------------------------
# In entropy-coded data, 0xFF is followed by 0x00 (a stuffed zero), a restart marker or another 0xFF (fill):
# anything else starts the next marker.
NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def strip_jpeg(source: Source) -> tuple[Splice, list[str]]:
    """A JPEG without its metadata segments; the entropy-coded image data is kept as it is."""
    if source.read(2) != b"\xff\xd8":
        raise ValueError("no start-of-image marker")
    out = Splice()
    out.keep(0, 2)
    removed: list[str] = []
    while True:
        byte = source.read(1)
        if not byte:
            raise ValueError("it ends before the image data")
        if byte != b"\xff":
            raise ValueError("a marker was expected")
        while byte == b"\xff":  # fill bytes
            byte = source.exact(1, "a marker")
        marker, at = byte[0], source.tell() - 2
        if marker == 0xD9:  # end of image: anything after it (appended previews, MPF images) is dropped
            out.keep(at, 2)
            if not source.at_end():
                removed.append("data after the image")
            return out, removed
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            out.keep(at, 2)
            continue
        (length,) = struct.unpack(">H", source.exact(2, "a segment length"))
        if length < 2:
            raise ValueError("a segment has an impossible length")
        payload = source.exact(length - 2, "a segment")  # at most 64 KiB
        label = _jpeg_metadata(marker, payload)
        if label == "EXIF":
            kept, label = exif_replacement(payload)
            if kept is not None:
                block = b"Exif\x00\x00" + kept.removeprefix(b"Exif\x00\x00")
                out.add(b"\xff\xe1" + struct.pack(">H", len(block) + 2) + block)
        elif label == JFIF_THUMBNAIL and payload.startswith(b"JFIF\x00"):
            # The JFIF header stays (decoders read its density); its thumbnail goes.
            out.add(b"\xff\xe0" + struct.pack(">H", 16) + payload[:12] + b"\x00\x00")
        elif label is None:
            out.keep(at, length + 2)
        if label is not None and label not in removed:
            removed.append(label)
        if marker == 0xDA and not _keep_scan(source, out):  # no end-of-image marker: keep what there is
            return out, removed


def _keep_scan(source: Source, out: Splice) -> bool:
    """Keep the entropy-coded data up to the next marker; False when the file ends first."""
    start = position = source.tell()
    while True:
        block = source.read(CHUNK)
        found = NEXT_MARKER.search(block)
        if found is not None:
            out.keep(start, position + found.start() - start)
            source.seek(position + found.start())
            return True
        if len(block) < CHUNK:  # the end of the file
            out.keep(start, position + len(block) - start)
            return False
        # A 0xFF at the very end is decided by the next block's first byte: read it again with that.
        position += len(block) - (block[-1] == 0xFF)
        source.seek(position)


def _jpeg_metadata(marker: int, payload: bytes) -> str | None:
    """The kind of metadata a JPEG segment holds, or None for a segment the image needs."""
    if marker == 0xFE:
        return "comment"
    if not 0xE0 <= marker <= 0xEF:
        return None
    if marker == 0xE0:
        if payload.startswith(b"JFXX\x00"):  # the JFIF extension: a thumbnail and nothing else
            return JFIF_THUMBNAIL
        # JFIF itself: X and Y thumbnail sizes at bytes 12 and 13, the thumbnail's pixels after them.
        thumbnail = payload.startswith(b"JFIF\x00") and len(payload) >= 14 and (payload[12] or payload[13])
        return JFIF_THUMBNAIL if thumbnail else None
    if marker == 0xE1:
        if payload.startswith(b"Exif\x00"):
            return "EXIF"
        return "XMP" if b"ns.adobe.com/xap" in payload[:64] or b"ns.adobe.com/xmp" in payload[:64] else "APP1 data"
    if marker == 0xE2:
        if payload.startswith(b"ICC_PROFILE\x00"):
            return None
        return "MPF previews" if payload.startswith(b"MPF\x00") else "APP2 data"
    if marker == 0xED:
        return "IPTC"
    if marker == 0xEE and payload.startswith(b"Adobe"):
        return None  # its colour transform flag changes how the pixels decode
    return f"APP{marker - 0xE0} data"


# -- PNG --------------------------------------------------------------------------------------------------
def strip_png(source: Source) -> tuple[Splice, list[str]]:
    """A PNG without its text, time and EXIF chunks; other chunks are kept with their CRCs."""
    if source.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
        raise ValueError("no PNG signature")
    out = Splice()
    out.keep(0, len(PNG_SIGNATURE))
    removed: list[str] = []
    while True:
        head = source.read(8)
        if len(head) < 8:
            raise ValueError("it ends before its IEND chunk")
        length, kind = struct.unpack(">I4s", head)
        what = f"chunk {kind.decode('latin-1')!r}"
        if kind not in PNG_DROPPED:
            out.keep(source.skip(length + 4, what) - 8, length + 12)  # the head, the data and the CRC
        elif kind == b"eXIf":
            kept, label = exif_replacement(source.exact(length, what))
            source.skip(4, what)
            if kept is not None:
                out.add(_png_chunk(b"eXIf", kept))
            if label is not None and label not in removed:
                removed.append(label)
        else:
            source.skip(length + 4, what)
            if PNG_DROPPED[kind] not in removed:
                removed.append(PNG_DROPPED[kind])
        if kind == b"IEND":
            if not source.at_end():
                removed.append("data after the image")
            return out, removed


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


# -- WebP -------------------------------------------------------------------------------------------------
VP8X_EXIF, VP8X_XMP = 0x08, 0x04


def strip_webp(source: Source) -> tuple[Splice, list[str]]:
    """A WebP without its EXIF and XMP chunks, with the VP8X flags and the RIFF size to match."""
    header = source.read(12)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WEBP":
        raise ValueError("no RIFF/WEBP header")
    remaining = struct.unpack_from("<I", header, 4)[0] - 4
    out = Splice()
    header_at = out.add(header)  # its size is written at the end
    removed: list[str] = []
    flags_at, kept_exif, chunks = None, False, 0
    while remaining >= 8:
        head = source.read(8)
        if len(head) < 8:
            break  # a RIFF size larger than the file: keep what there is, as decoders do
        kind, size = struct.unpack("<4sI", head)
        padded = size + (size & 1)
        what = f"chunk {kind.decode('latin-1')!r}"
        remaining -= 8 + padded
        if kind == b"EXIF":
            kept, label = exif_replacement(source.exact(size, what))
            source.skip(padded - size, what)
            if label is not None:
                removed.append(label)
            if kept is not None:
                out.add(b"EXIF" + struct.pack("<I", len(kept)) + kept + b"\x00" * (len(kept) & 1))
                kept_exif = True
        elif kind == b"XMP ":
            source.skip(padded, what)
            removed.append("XMP")
        elif kind == b"VP8X" and chunks == 0:
            body = source.exact(size, what) + (source.read(1) if size & 1 else b"")
            flags_at = out.add(head + body)
        else:
            out.keep(source.skip(size, what) - 8, size + 8)
            if size & 1:  # the pad byte may be missing at the very end
                if source.at_end():
                    out.add(b"\x00")
                else:
                    source.keep(1, out, what)
        chunks += 1
    if chunks == 0:
        raise ValueError("it holds no image chunk")
    if not source.at_end():
        removed.append("data after the image")
    if flags_at is not None:
        chunk = out.pieces[flags_at]
        assert isinstance(chunk, bytes)
        flags = chunk[8] & ~(VP8X_XMP | (0 if kept_exif else VP8X_EXIF)) & 0xFF
        out.put(flags_at, chunk[:8] + bytes([flags]) + chunk[9:])
    out.put(header_at, header[:4] + struct.pack("<I", out.size - 8) + header[8:])
    return out, removed


# -- GIF --------------------------------------------------------------------------------------------------
# Application extensions decoders need: the loop count (Netscape's and its twin) and the colour profile.
GIF_APPLICATIONS_KEPT = (b"NETSCAPE2.0", b"ANIMEXTS1.0", b"ICCRGBG1012")


def strip_gif(source: Source) -> tuple[Splice, list[str]]:
    """A GIF without its comment extensions and application extensions (XMP, IPTC and the like); the
    images, their colour tables and timing, the loop count and the colour profile are kept."""
    header = source.exact(13, "the header")
    if header[:6] not in (b"GIF87a", b"GIF89a"):
        raise ValueError("no GIF signature")
    out = Splice()
    out.keep(0, 13)
    if header[10] & 0x80:  # the global colour table
        source.keep(3 << ((header[10] & 7) + 1), out, "the colour table")
    removed: list[str] = []
    while True:
        at = source.tell()
        kind = source.read(1)
        if not kind:  # no trailer: keep what there is, as decoders do
            return out, removed
        if kind == b";":  # the trailer
            out.keep(at, 1)
            if not source.at_end():
                removed.append("data after the image")
            return out, removed
        if kind == b",":  # an image: its descriptor, local colour table and compressed data
            descriptor = source.exact(9, "an image descriptor")
            if descriptor[8] & 0x80:
                source.skip(3 << ((descriptor[8] & 7) + 1), "a colour table")
            source.exact(1, "an image")  # the LZW code size
            _skip_sub_blocks(source, "an image")
            out.keep(at, source.tell() - at)
        elif kind == b"!":
            label = source.exact(1, "an extension")[0]
            dropped = None
            if label == 0xFE:
                dropped = "comment"
            elif label == 0xFF:
                size = source.exact(1, "an application extension")[0]
                name = source.exact(size, "an application extension")
                if name[:11] not in GIF_APPLICATIONS_KEPT:
                    dropped = "XMP" if name.startswith(b"XMP DataXMP") else "application data"
            _skip_sub_blocks(source, "an extension")
            if dropped is None:
                out.keep(at, source.tell() - at)
            elif dropped not in removed:
                removed.append(dropped)
        else:
            raise ValueError(f"an unknown block type 0x{kind[0]:02x}")


def _skip_sub_blocks(source: Source, what: str) -> None:
    """Pass over data sub-blocks (a size byte, then that many bytes) up to the empty one that ends them."""
    while size := source.exact(1, what)[0]:
        source.skip(size, what)


Stripper = Callable[[Source], tuple[Splice, list[str]]]
STRIPPERS: dict[str, tuple[str, Stripper]] = {
    "image/jpeg": (".jpg", strip_jpeg),
    "image/png": (".png", strip_png),
    "image/webp": (".webp", strip_webp),
    "image/gif": (".gif", strip_gif),
}
