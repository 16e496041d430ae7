"""Loading one file for a run: stat, read, hash, recognise its type and check it against the host's limits.

Runs in a worker thread. Small files are read once and kept in memory; large ones are hashed in chunks
and streamed later. What this module decides about a file is one of: an :class:`~picbeam.UploadItem`
ready to send, a :class:`Refused` file (one line saying why), ``None`` for a file a folder walk passes
over (not an image, a FIFO), or :data:`NOT_LOADED` when the file is bigger than the caller wanted to
read here.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UploadError
from .hosts import Host
from .inputs import SNIFF_BYTES, Found, guess_type, sniff_image
from .items import IN_MEMORY_LIMIT, UploadItem

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

HASH_CHUNK = 1024 * 1024
NOT_LOADED: Any = object()
# Files from this size on may be hashed in a thread while they are sent (see load's ``hash_while_sending``):
# below it, hashing first costs less than the bookkeeping of a hash that arrives late.
HASH_WHILE_SENDING_FROM = 16 * 1024 * 1024


@dataclass
class Refused:
    """A file that cannot be sent, and why (the engine turns it into a failed result)."""

    path: Path
    message: str
    item: UploadItem | None = None


def load(
    index: int,
    found: Found,
    host: Host,
    *,
    limit: int | None = None,
    check_limits: bool = True,
    hash_while_sending: bool = False,
) -> Any:
    """The file ``found`` as an UploadItem (or Refused, None, NOT_LOADED; see the module's docstring).

    ``check_limits`` False leaves the host's size and type limits to after processing (a big photo may
    fit once converted). ``hash_while_sending``: a file of :data:`HASH_WHILE_SENDING_FROM` bytes or more
    is hashed in a thread of its own, started now, so that its upload need not wait for it
    (``item.hashing``; reading ``item.sha256`` waits for it)."""
    path = found.path
    if found.error:
        return Refused(path, found.error)
    mtime_ns, later = 0, False
    try:
        if found.data is not None:  # content handed in memory (picbeam serve): nothing to read
            data: bytes | None = found.data
        else:
            info = path.stat()
            if limit is not None and info.st_size > limit:
                return NOT_LOADED
            if not stat.S_ISREG(info.st_mode):
                # A FIFO or a device in a folder is passed over like a file that is not an image.
                return Refused(path, "not a regular file") if found.explicit else None
            mtime_ns = info.st_mtime_ns
            with open(path, "rb") as handle:
                if info.st_size <= IN_MEMORY_LIMIT:
                    data = handle.read()
                else:
                    data, head = None, handle.read(SNIFF_BYTES)
                    later = hash_while_sending and info.st_size >= HASH_WHILE_SENDING_FROM
                    digest = "" if later else hash_rest(handle, head)
        if data is not None:
            head, digest = data[:SNIFF_BYTES], hashlib.sha256(data).hexdigest()
    except OSError as exc:
        if not found.explicit and isinstance(exc, FileNotFoundError) and path.is_symlink():
            return None  # a dangling symlink in a folder, passed over like a file that is not an image
        return Refused(path, f"cannot read: {exc.strerror or exc}")
    mime = sniff_image(head)
    if mime is None and not found.explicit:
        return None
    item = UploadItem(
        source=path,
        index=index,
        mime=mime or guess_type(path.name),
        size=len(data) if data is not None else info.st_size,
        sha256=digest,
        data=data,
        mtime_ns=mtime_ns,
    )
    problem = refuse(item, host) if check_limits else None
    if problem:
        return Refused(path, problem, item)
    if later:
        item.hashing = _hashers().submit(hash_file, path, item.size)
    return item


def refuse(item: UploadItem, host: Host) -> str | None:
    """Why ``host`` cannot take ``item`` as it is (empty, too large, a type it does not take), or None."""
    if item.size == 0:
        return "the file is empty"
    if host.max_bytes and item.size > host.max_bytes:
        return f"{size_text(item.size)} is over the host's limit of {size_text(host.max_bytes)}"
    if host.accept and not any(mime_matches(item.mime, pattern) for pattern in host.accept):
        return f"the host takes only {', '.join(host.accept)}, and this file is {item.mime}"
    return None


def hash_rest(handle: Any, head: bytes) -> str:
    """The SHA-256 of ``head`` and the rest of ``handle``, read in chunks."""
    digest = hashlib.sha256(head)
    while chunk := handle.read(HASH_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def hash_file(path: Path, size: int) -> str:
    """The SHA-256 of the first ``size`` bytes of the file at ``path`` (what is sent of it); a file that
    cannot be read (removed meanwhile) is an UploadError for whoever reads the hash."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while size > 0 and (chunk := handle.read(min(HASH_CHUNK, size))):
                digest.update(chunk)
                size -= len(chunk)
    except FileNotFoundError:
        raise UploadError("the file disappeared while it was being uploaded; run again") from None
    except OSError as exc:
        raise UploadError(f"cannot read the file to hash it: {exc.strerror or exc}") from None
    return digest.hexdigest()


@functools.cache
def _hashers() -> ThreadPoolExecutor:
    """Threads for hashes computed while files are sent: as many as cores (hashlib runs without the GIL)."""
    from concurrent.futures import ThreadPoolExecutor  # most runs have no file big enough

    return ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="picbeam-hash")


def check_unchanged(item: UploadItem) -> None:
    """A streamed file that changed while it was sent may have arrived mixed: say so, do not record it."""
    problem = changed(item)
    if problem:
        raise UploadError(problem)


def changed(item: UploadItem) -> str | None:
    """How a streamed file changed since it was read first (it grew, shrank, was rewritten or removed), or
    None: a failure to send it is then explained by the change rather than by the broken request."""
    read = item.on_disk()
    if read is None:
        return None
    path, size, mtime_ns = read
    try:
        info = path.stat()
    except OSError:
        return "the file disappeared while it was being uploaded; run again"
    if (info.st_size, info.st_mtime_ns) != (size, mtime_ns):
        return "the file changed while it was being uploaded; run again to send its new content"
    return None


def mime_matches(mime: str, pattern: str) -> bool:
    return pattern in ("*", "*/*", mime) or (pattern.endswith("/*") and mime.startswith(pattern[:-1]))


def size_text(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
