"""What flows through a run: the file to upload (UploadItem) and its outcome (UploadResult)."""

from __future__ import annotations

import bisect
import hashlib
import io
import os
import re
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .processing import ProcessSettings

# Files up to this size are read once, hashed and sent from memory; larger ones are streamed from disk.
IN_MEMORY_LIMIT = 1024 * 1024
CHUNK = 1024 * 1024


@dataclass
class Splice:
    """Bytes to send made of literal bytes and ``(offset, length)`` ranges of a file: how a processor that
    only removes or replaces parts of a big file (strip_metadata) has it sent without writing a copy."""

    pieces: list[bytes | tuple[int, int]] = field(default_factory=list)
    size: int = 0
    # The size of the file the ranges are read from, when it was spliced (a file that changes is caught).
    file_size: int = 0

    def add(self, data: bytes) -> int:
        """Append literal bytes; returns their index (for :meth:`put`)."""
        self.pieces.append(data)
        self.size += len(data)
        return len(self.pieces) - 1

    def put(self, index: int, data: bytes) -> None:
        """Replace the literal piece at ``index`` (a header whose fields are known at the end)."""
        old = self.pieces[index]
        assert isinstance(old, bytes)
        self.pieces[index] = data
        self.size += len(data) - len(old)

    def keep(self, offset: int, length: int) -> None:
        """Append ``length`` bytes of the file from ``offset`` (joined to the range before when adjacent)."""
        if length <= 0:
            return
        last = self.pieces[-1] if self.pieces else None
        if isinstance(last, tuple) and last[0] + last[1] == offset:
            self.pieces[-1] = (last[0], last[1] + length)
        else:
            self.pieces.append((offset, length))
        self.size += length

    def join(self, original: bytes) -> bytes:
        """The spliced bytes of a file held in memory."""
        view = memoryview(original)
        return b"".join(p if isinstance(p, bytes) else view[p[0] : p[0] + p[1]] for p in self.pieces)

    def chunks(self, handle: IO[bytes]) -> Iterator[bytes]:
        """The spliced bytes, a bounded piece at a time, read from ``handle`` (the file, open)."""
        for piece in self.pieces:
            if isinstance(piece, bytes):
                yield piece
                continue
            offset, length = piece
            handle.seek(offset)
            while length > 0:
                data = handle.read(min(length, CHUNK))
                if not data:
                    raise OSError("the file became shorter while it was being read")
                length -= len(data)
                yield data


class SpliceReader(io.RawIOBase):
    """A :class:`Splice` of a file as a readable, seekable file object: a request body aiohttp streams
    (with its exact Content-Length) and rewinds for another attempt or a redirect."""

    def __init__(self, path: Path, splice: Splice) -> None:
        super().__init__()
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        self.splice, self._at = splice, 0
        starts, position = [], 0
        for piece in splice.pieces:
            starts.append(position)
            position += len(piece) if isinstance(piece, bytes) else piece[1]
        self._starts = starts
        self._sendable: io.FileIO | None = None

    @property
    def declared_size(self) -> int:
        return self.splice.size

    def pieces(self) -> list[bytes | tuple[int, int]] | None:
        """What is left to send as literal bytes and ranges of the file (None once reading has begun)."""
        return list(self.splice.pieces) if self._at == 0 else None

    def sendable(self) -> io.FileIO:
        """The file itself, for ``sendfile`` (closed with this reader)."""
        if self._sendable is None:
            self._sendable = io.FileIO(self._fd, "rb", closefd=False)
        return self._sendable

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self.splice.size}[whence]
        self._at = max(0, base + offset)
        return self._at

    def read(self, size: int = -1) -> bytes:
        """At most ``size`` bytes, never more than one piece's worth."""
        if self._at >= self.splice.size:
            return b""
        index = bisect.bisect_right(self._starts, self._at) - 1
        piece, into = self.splice.pieces[index], self._at - self._starts[index]
        if isinstance(piece, bytes):
            left = len(piece) - into
            data = piece[into : into + (left if size < 0 else min(size, left))]
        else:
            left = piece[1] - into
            data = os.pread(self._fd, min(left, CHUNK if size < 0 else size), piece[0] + into)
            if not data:
                raise OSError("the file became shorter while it was being uploaded")
        self._at += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            if self._sendable is not None:
                self._sendable.close()
            os.close(self._fd)
        super().close()


class _ContentHash:
    """``UploadItem.sha256``. A big file may be hashed in a thread while it is sent (see
    :mod:`picbeam.loading`): reading the field then waits for that hash, so whoever reads it — a
    processor, a host, the ledger — always gets the file's real digest."""

    def __get__(self, item: UploadItem | None, owner: type | None = None) -> str:
        if item is None:
            return ""  # the dataclass's default
        pending = item.__dict__.get("hashing")
        if pending is not None:
            item.__dict__["_sha256"], item.__dict__["hashing"] = pending.result(), None
        return item.__dict__.get("_sha256", "")

    def __set__(self, item: UploadItem, value: str) -> None:
        item.__dict__["_sha256"] = value


@dataclass
class UploadItem:
    """One file on its way to a host.

    ``source`` is the path the user gave (or found in a folder); ``path``, ``name`` and ``mime`` describe
    what is actually sent, which a processor may replace. ``data`` holds the bytes of small files so
    they are read from disk only once: when it is set, it is what is sent (``path`` may still name the
    original). ``splice``, when set, is what is sent of ``path``. Read the content with :meth:`read`,
    :meth:`open` or :meth:`chunks`, which know all three.
    """

    source: Path
    index: int = 0
    path: Path = field(default=None)  # type: ignore[assignment]
    name: str = ""
    mime: str = "application/octet-stream"
    size: int = 0
    sha256: str = _ContentHash()  # type: ignore[assignment]
    data: bytes | None = None
    # The hash of a big file being computed in a thread while it is sent (``sha256`` waits for it).
    hashing: Future[str] | None = field(default=None, repr=False, compare=False)
    # What each processor did, "processor: what" (shown by --dry-run --explain).
    notes: list[str] = field(default_factory=list)
    # The file's modification time when it was hashed: a streamed file that changes is caught.
    mtime_ns: int = 0
    # The ledger's record of the same content at the same destination, when there is one.
    previous: UploadResult | None = None
    # Set while processors run (see picbeam.processing): the run's settings, and the run's folder for
    # what they write (each file's own temporary files are removed after its upload).
    settings: ProcessSettings | None = None
    workdir: Path | None = None
    # The host reads the file only through open() and nothing after this processor reads ``path``: a
    # processor may hand over a Splice of a big file (replace(splice=...)) instead of writing a copy.
    may_splice: bool = False
    splice: Splice | None = None
    _sent_sha256: str = field(default="", repr=False)
    # The address a downloaded file came from (``picbeam upload https://...``): results name it.
    origin: str = ""
    _replaced: bool = field(default=False, repr=False)
    _temps: list[Path] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.path is None:
            self.path = self.source
        if not self.name:
            self.name = clean_name(self.source.name)

    def __getstate__(self) -> dict[str, Any]:
        """For a worker process: the hash itself, not the thread computing it."""
        state = dict(self.__dict__)
        state["_sha256"], state["hashing"] = self.sha256, None
        return state

    @property
    def known_sha256(self) -> str:
        """``sha256`` when it is known, else "" (still being computed, or the file could not be read):
        for reports, which must neither wait nor fail."""
        pending = self.hashing
        if pending is None:
            return self.sha256
        return pending.result() if pending.done() and pending.exception() is None else ""

    @property
    def label(self) -> str:
        """What the user named, as results show it: the address of a download, else the path."""
        return self.origin or printable(self.source)

    def replace(
        self,
        *,
        path: Path | None = None,
        data: bytes | None = None,
        splice: Splice | None = None,
        name: str | None = None,
        mime: str | None = None,
    ) -> None:
        """Send other content in place of this file's: another file (a processed copy), other bytes (a
        small file processed in memory), or a :class:`Splice` of the file at ``path``."""
        if path is not None:
            info = os.stat(path)
            self.path, self.size, self.mtime_ns, self.data = path, info.st_size, info.st_mtime_ns, None
            self.splice = None
        if data is not None:
            self.data, self.size, self.splice = data, len(data), None
        if splice is not None:
            if self.data is not None or self.splice is not None:
                raise ValueError("replace(splice=...) splices the file at item.path, not bytes already replaced")
            splice.file_size, self.size, self.splice = self.size, splice.size, splice
        if path is not None or data is not None or splice is not None:
            self._replaced, self._sent_sha256 = True, ""
        if name is not None:
            self.name = name
        if mime is not None:
            self.mime = mime

    def content_sha256(self) -> str:
        """The SHA-256 of the bytes that are sent: ``sha256`` (the original file's, the ledger's key) unless
        a processor replaced the file. Content-addressed names use it, so two versions of one photo
        (say, two qualities) never take each other's place."""
        if not self._replaced:
            return self.sha256
        if not self._sent_sha256:
            digest = hashlib.sha256()
            for chunk in self.chunks():
                digest.update(chunk)
            self._sent_sha256 = digest.hexdigest()
        return self._sent_sha256

    def chunks(self) -> Iterator[bytes]:
        """The bytes that are sent, a bounded piece at a time (for hashing them)."""
        if self.data is not None:
            yield self.data
            return
        with open(self.path, "rb") as handle:
            if self.splice is not None:
                yield from self.splice.chunks(handle)
                return
            while chunk := handle.read(CHUNK):
                yield chunk

    def on_disk(self) -> tuple[Path, int, int] | None:
        """The file read while sending, with its size and modification time when it was read first
        (None when what is sent is in memory): a file that changes on the way is caught."""
        if self.data is not None:
            return None
        return self.path, (self.splice.file_size if self.splice else self.size), self.mtime_ns

    def temp_path(self, suffix: str = "") -> Path:
        """A new empty file for a processor to write this item's processed bytes to; picbeam removes it
        after the upload (and whatever happens, when the run ends)."""
        if self.workdir is None:
            raise RuntimeError("temp_path() is for processors that picbeam runs (the item has no workdir)")
        # The run's folder is made by the first file that needs it: most runs write nothing.
        self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self.workdir, suffix=suffix)
        os.close(handle)
        self._temps.append(Path(name))
        return self._temps[-1]

    def open(self) -> bytes | IO[bytes]:
        """A fresh body for one attempt: the bytes in memory, or a newly opened file (closed by aiohttp)
        that ends at the size the file had when it was read, however it grows while it is sent."""
        if self.data is not None:
            return self.data
        if self.splice is not None:
            return SpliceReader(self.path, self.splice)
        return ExactFile(self.path, self.size)

    def read(self) -> bytes:
        """All the bytes to send (for hosts that need them whole, such as base64 JSON bodies)."""
        if self.data is not None:
            return self.data
        if self.splice is not None:
            return b"".join(self.chunks())
        return self.path.read_bytes()


# Characters that move the cursor, change the terminal, reorder the line or end it: C0 and C1 controls,
# DEL, bidirectional controls, and the Unicode line and paragraph separators.
UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


def escape_controls(text: str) -> str:
    """``text`` safe to print on one terminal line: each unprintable character as ``\\xNN`` or ``\\uNNNN``."""
    return UNPRINTABLE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


class ExactFile(io.BufferedReader):
    """A file opened for sending that reads no further than ``length`` bytes: a file that grows while it
    is streamed is sent exactly as long as declared (the engine then reports the change)."""

    def __init__(self, path: os.PathLike[str] | str, length: int) -> None:
        super().__init__(io.FileIO(path, "rb"))
        self.length = length

    @property
    def declared_size(self) -> int:
        return self.length

    def pieces(self) -> list[bytes | tuple[int, int]]:
        """What is left to send, as one range of the file."""
        at = self.tell()
        return [(at, max(0, self.length - at))]

    def sendable(self) -> ExactFile:
        return self

    def _left(self, size: int | None) -> int:
        left = max(0, self.length - self.tell())
        return left if size is None or size < 0 else min(size, left)

    def read(self, size: int | None = -1) -> bytes:
        return super().read(self._left(size))

    def read1(self, size: int = -1) -> bytes:
        return super().read1(self._left(size))

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        return super().readinto(view[: self._left(len(view))])


def printable(path: os.PathLike[str] | str) -> str:
    """A path as text that can always be printed and stored on one line: undecodable bytes and control
    characters become ``\\xNN``."""
    return escape_controls(os.fsencode(path).decode("utf-8", errors="backslashreplace"))


def url_problem(url: str | None, schemes: tuple[str, ...], *, strict: bool = True) -> str | None:
    """Why a URL a host answered must not be printed (a control or bidi character, or a scheme other than
    ``schemes``), or None. Not ``strict``, text without a scheme passes (a delete token, not a URL)."""
    if url is None:
        return None
    if UNPRINTABLE.search(url):
        return f"the host answered a URL with a control or bidirectional character: {escape_controls(url)!r}"
    scheme = match[1].lower() if (match := _SCHEME.match(url)) else ""
    if scheme not in schemes and (strict or scheme):
        return (
            f"the host answered a {scheme or 'scheme-less'}: URL, not {' or '.join(schemes)}: "
            f"{escape_controls(url)[:120]!r}"
        )
    return None


def clean_name(name: str) -> str:
    """A file name as it may be sent to a host: control characters replaced (the local name is kept)."""
    return UNPRINTABLE.sub("_", os.fsencode(name).decode("utf-8", errors="backslashreplace"))


def absolute(path: str) -> str:
    """A path as the ledger keeps it: absolute, so a later `picbeam history` run elsewhere finds the file.
    A URL (an input downloaded from the web) stays as it is."""
    return path if "://" in path else os.path.abspath(path)


@dataclass
class UploadResult:
    """The outcome of one file: a URL, or an error message."""

    path: str
    host: str
    url: str | None = None
    delete_url: str | None = None
    thumbnail_url: str | None = None
    bytes: int = 0
    sha256: str = ""
    error: str | None = None
    status: int | None = None
    reused: bool = False
    index: int = 0
    answer: Any = None
    endpoint: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.url)

    def to_json(self) -> dict[str, Any]:
        """The public record: what ``--format json`` prints, one object per line."""
        record = {
            "path": self.path,
            "host": self.host,
            "url": self.url,
            "delete_url": self.delete_url,
            "thumbnail_url": self.thumbnail_url,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "reused": self.reused,
            "error": self.error,
        }
        if "mirrors" in self.extra:  # every host of a mirrored upload: [{"host": ..., "url": ...}]
            record["mirrors"] = self.extra["mirrors"]
        return record
