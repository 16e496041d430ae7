"""Small images generated on the fly (no image library needed): probes, tests and benchmarks."""

from __future__ import annotations

import struct
import zlib


def png(width: int = 1, height: int = 1, seed: int = 0) -> bytes:
    """A valid RGB PNG whose pixels depend on ``seed``, so different seeds give different files."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            value = (seed * 2654435761 + y * 40503 + x * 9973) & 0xFFFFFF
            rows += value.to_bytes(3, "big")
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows))) + chunk(b"IEND", b"")
    )


def gif(seed: int = 0) -> bytes:
    """A valid 1x1 GIF89a whose colour depends on ``seed``."""
    r, g, b = (seed * 37) & 255, (seed * 91) & 255, (seed * 151) & 255
    return (
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00"
        + bytes([r, g, b, 0, 0, 0])
        + b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    )
