"""What flows through a run: the file to upload (UploadItem) and its outcome (UploadResult)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .processing import ProcessSettings

# Files up to this size are read once, hashed and sent from memory; larger ones are streamed from disk.
IN_MEMORY_LIMIT = 1024 * 1024


@dataclass
class UploadItem:
    """One file on its way to a host.

    ``source`` is the path the user gave (or found in a folder); ``path``, ``name`` and ``mime`` describe
    what is actually sent, which a processor may replace. ``data`` holds the bytes of small files so
    they are read from disk only once.
    """

    source: Path
    index: int = 0
    path: Path = field(default=None)  # type: ignore[assignment]
    name: str = ""
    mime: str = "application/octet-stream"
    size: int = 0
    sha256: str = ""
    data: bytes | None = None
    # What each processor did, "processor: what" (shown by --dry-run --explain).
    notes: list[str] = field(default_factory=list)
    # The file's modification time when it was hashed: a streamed file that changes is caught.
    mtime_ns: int = 0
    # The ledger's record of the same content at the same destination, when there is one.
    previous: UploadResult | None = None
    # Set while processors run (see picbeam.processing): the run's settings, and this file's own folder
    # for what they write, removed after the upload.
    settings: ProcessSettings | None = None
    workdir: Path | None = None
    _sent_sha256: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.path is None:
            self.path = self.source
        if not self.name:
            self.name = clean_name(self.source.name)

    def replace(self, *, path: Path | None = None, name: str | None = None, mime: str | None = None) -> None:
        """Send another file (a processed copy) in place of this one."""
        if path is not None:
            info = os.stat(path)
            self.path, self.size, self.mtime_ns, self.data = path, info.st_size, info.st_mtime_ns, None
            self._sent_sha256 = ""
        if name is not None:
            self.name = name
        if mime is not None:
            self.mime = mime

    def content_sha256(self) -> str:
        """The SHA-256 of the bytes that are sent: ``sha256`` (the original file's, the ledger's key) unless
        a processor replaced the file. Content-addressed names use it, so two versions of one photo
        (say, two qualities) never take each other's place."""
        if self.path == self.source:
            return self.sha256
        if not self._sent_sha256:
            digest = hashlib.sha256()
            with open(self.path, "rb") as handle:
                while chunk := handle.read(1024 * 1024):
                    digest.update(chunk)
            self._sent_sha256 = digest.hexdigest()
        return self._sent_sha256

    def temp_path(self, suffix: str = "") -> Path:
        """A new empty file for a processor to write this item's processed bytes to; picbeam removes it
        after the upload (and whatever happens, when the run ends)."""
        if self.workdir is None:
            raise RuntimeError("temp_path() is for processors that picbeam runs (the item has no workdir)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self.workdir, suffix=suffix)
        os.close(handle)
        return Path(name)

    def open(self) -> bytes | IO[bytes]:
        """A fresh body for one attempt: the bytes in memory, or a newly opened file (closed by aiohttp)
        that ends at the size the file had when it was read, however it grows while it is sent."""
        if self.data is not None:
            return self.data
        return ExactFile(self.path, self.size)

    def read(self) -> bytes:
        """All the bytes to send (for hosts that need them whole, such as base64 JSON bodies)."""
        if self.data is not None:
            return self.data
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
