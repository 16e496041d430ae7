"""Strip location and identifying metadata, losslessly: byte surgery on the file, no re-encoding.

On by default (``--keep-metadata`` turns it off). JPEG loses its EXIF, XMP, IPTC/Photoshop, comment,
JFXX-thumbnail, MPF and other application segments and anything after the end of the image; PNG loses
its ``eXIf``, ``tEXt``, ``iTXt``, ``zTXt`` and ``tIME`` chunks; WebP its ``EXIF`` and ``XMP`` chunks.
What decoders need stays: JFIF, the ICC colour profile (APP2 / ``iCCP`` / ``ICCP``), Adobe's colour
transform (APP14), gamma and colour chunks. The pixels are the same bytes.

The EXIF orientation is kept, alone in a minimal EXIF block, so a portrait photo still shows upright;
``--apply-orientation`` rotates the pixels instead (that re-encodes, and needs Pillow).
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from typing import BinaryIO

from picbeam import Option, Processor, UploadError, UploadItem, hookimpl
from picbeam.processing import ORIENTATION, ProcessSettings, pixels, settings_of, warn

CHUNK = 1024 * 1024
NOT_SUPPORTED = ("image/heic", "image/avif", "image/tiff", "image/jxl")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_DROPPED = {b"eXIf": "EXIF", b"tEXt": "text", b"iTXt": "text", b"zTXt": "text", b"tIME": "time"}
GPS_IFD = 0x8825


OPTIONS = (
    Option("keep_metadata", bool, False, "Send EXIF/XMP/IPTC (GPS location, camera serial...) as they are "
           "(default: strip).", negative="--strip-metadata"),
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
        warn(item, f"metadata was not removed from {item.mime} files: picbeam strips JPEG, PNG and WebP")
        return
    if item.mime not in STRIPPERS:
        return
    path = item.temp_path(STRIPPERS[item.mime][0])
    try:  # streamed: a big file is never held in memory
        with (
            io.BytesIO(item.data) if item.data is not None else open(item.path, "rb") as source,
            open(path, "wb") as out,
        ):
            removed = STRIPPERS[item.mime][1](Source(source), out)
    except (ValueError, struct.error) as exc:
        kind = item.mime.split("/")[1].upper()
        raise UploadError(f"this {kind} file is damaged ({exc}); --keep-metadata sends it as it is") from None
    if not removed:
        path.unlink()
        item.notes.append("strip_metadata: nothing to remove")
        return
    item.replace(path=path)
    item.notes.append(f"strip_metadata: removed {', '.join(removed)}")


def strip(mime: str, data: bytes) -> tuple[bytes, list[str]]:
    """``data`` without its metadata, and what was removed (for tests and scripts)."""
    out = io.BytesIO()
    removed = STRIPPERS[mime][1](Source(io.BytesIO(data)), out)
    return out.getvalue(), removed


class Source:
    """A file read forward in bounded pieces, with exact reads that call a short file damaged."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self._back, self._at = b"", 0  # bytes given back, and how far they have been read again

    def read(self, size: int = CHUNK) -> bytes:
        if self._at < len(self._back):
            data = self._back[self._at : self._at + size]
            self._at += len(data)
            return data
        return self._handle.read(size)

    def exact(self, size: int, what: str) -> bytes:
        data = self.read(size)
        while len(data) < size and (more := self.read(size - len(data))):
            data += more
        if len(data) < size:
            raise ValueError(f"it ends inside {what}")
        return data

    def unread(self, data: bytes) -> None:
        self._back, self._at = data + self._back[self._at :], 0

    def copy(self, size: int, out: BinaryIO | None, what: str) -> None:
        """Copy (or skip, without ``out``) the next ``size`` bytes, a piece at a time."""
        while size > 0:
            data = self.read(min(size, CHUNK))
            if not data:
                raise ValueError(f"{what} runs past the end of the file")
            if out is not None:
                out.write(data)
            size -= len(data)


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
def strip_jpeg(source: Source, out: BinaryIO) -> list[str]:
    """A JPEG without its metadata segments; the entropy-coded image data is copied as it is."""
    if source.read(2) != b"\xff\xd8":
        raise ValueError("no start-of-image marker")
    out.write(b"\xff\xd8")
    removed: list[str] = []
    while True:
        byte = source.read(1)
        if not byte:
            raise ValueError("it ends before the image data")
        if byte != b"\xff":
            raise ValueError("a marker was expected")
        while byte == b"\xff":  # fill bytes
            byte = source.exact(1, "a marker")
        marker = byte[0]
        if marker == 0xD9:  # end of image: anything after it (appended previews, MPF images) is dropped
            out.write(b"\xff\xd9")
            if source.read(1):
                removed.append("data after the image")
            return removed
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            out.write(b"\xff" + byte)
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
                out.write(b"\xff\xe1" + struct.pack(">H", len(block) + 2) + block)
        elif label is None:
            out.write(b"\xff" + byte + struct.pack(">H", length) + payload)
        if label is not None and label not in removed:
            removed.append(label)
        if marker == 0xDA and not _copy_scan(source, out):  # no end-of-image marker: keep what there is
            return removed


def _copy_scan(source: Source, out: BinaryIO) -> bool:
    """Copy entropy-coded data up to the next marker other than a stuffed zero, a restart marker or a
    fill byte; False when the file ends first."""
    while block := source.read():
        pos = 0
        while True:
            found = block.find(b"\xff", pos)
            if found < 0:
                out.write(block)
                break
            if found + 1 == len(block):  # the byte that says what this 0xFF is comes in the next piece
                following = source.read(1)
                if not following:
                    out.write(block)
                    return False
                block += following
            if block[found + 1] == 0x00 or 0xD0 <= block[found + 1] <= 0xD7 or block[found + 1] == 0xFF:
                pos = found + 1
                continue
            out.write(block[:found])
            source.unread(block[found:])
            return True
    return False


def _jpeg_metadata(marker: int, payload: bytes) -> str | None:
    """The kind of metadata a JPEG segment holds, or None for a segment the image needs."""
    if marker == 0xFE:
        return "comment"
    if not 0xE0 <= marker <= 0xEF:
        return None
    if marker == 0xE0:
        return "JFIF thumbnail" if payload.startswith(b"JFXX\x00") else None
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
def strip_png(source: Source, out: BinaryIO) -> list[str]:
    """A PNG without its text, time and EXIF chunks; other chunks are copied with their CRCs."""
    if source.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
        raise ValueError("no PNG signature")
    out.write(PNG_SIGNATURE)
    removed: list[str] = []
    while True:
        head = source.read(8)
        if len(head) < 8:
            raise ValueError("it ends before its IEND chunk")
        length, kind = struct.unpack(">I4s", head)
        what = f"chunk {kind.decode('latin-1')!r}"
        if kind not in PNG_DROPPED:
            out.write(head)
            source.copy(length + 4, out, what)  # the data and the CRC
        elif kind == b"eXIf":
            kept, label = exif_replacement(source.exact(length, what))
            source.copy(4, None, what)
            if kept is not None:
                out.write(_png_chunk(b"eXIf", kept))
            if label is not None and label not in removed:
                removed.append(label)
        else:
            source.copy(length + 4, None, what)
            if PNG_DROPPED[kind] not in removed:
                removed.append(PNG_DROPPED[kind])
        if kind == b"IEND":
            if source.read(1):
                removed.append("data after the image")
            return removed


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


# -- WebP -------------------------------------------------------------------------------------------------
VP8X_EXIF, VP8X_XMP = 0x08, 0x04


def strip_webp(source: Source, out: BinaryIO) -> list[str]:
    """A WebP without its EXIF and XMP chunks, with the VP8X flags and the RIFF size to match."""
    header = source.read(12)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WEBP":
        raise ValueError("no RIFF/WEBP header")
    remaining = struct.unpack_from("<I", header, 4)[0] - 4
    start = out.tell()
    out.write(header)
    removed: list[str] = []
    flags_at, flags, kept_exif, chunks = None, 0, False, 0
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
            source.copy(padded - size, None, what)
            if label is not None:
                removed.append(label)
            if kept is not None:
                out.write(b"EXIF" + struct.pack("<I", len(kept)) + kept + b"\x00" * (len(kept) & 1))
                kept_exif = True
        elif kind == b"XMP ":
            source.copy(padded, None, what)
            removed.append("XMP")
        elif kind == b"VP8X" and chunks == 0:
            body = source.exact(size, what) + (source.read(1) if size & 1 else b"")
            flags_at, flags = out.tell() + 8, body[0]
            out.write(head + body)
        else:
            out.write(head)
            source.copy(size, out, what)
            if size & 1:  # the pad byte may be missing at the very end
                out.write(source.read(1) or b"\x00")
        chunks += 1
    if chunks == 0:
        raise ValueError("it holds no image chunk")
    if source.read(1):
        removed.append("data after the image")
    end = out.tell()
    out.seek(start + 4)
    out.write(struct.pack("<I", end - start - 8))
    if flags_at is not None:
        out.seek(flags_at)
        out.write(bytes([flags & ~(VP8X_XMP | (0 if kept_exif else VP8X_EXIF)) & 0xFF]))
    out.seek(end)
    return removed


STRIPPERS = {"image/jpeg": (".jpg", strip_jpeg), "image/png": (".png", strip_png), "image/webp": (".webp", strip_webp)}
