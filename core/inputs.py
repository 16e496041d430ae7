"""Turning the paths a user gives into the files to upload, and recognising images by their bytes."""

from __future__ import annotations

import fnmatch
import mimetypes
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from .errors import ConfigError, UploadError
from .items import printable

if TYPE_CHECKING:
    import aiohttp

SNIFF_BYTES = 512


def sniff_image(head: bytes) -> str | None:
    """The image MIME type of a file from its first bytes, or None if it is not an image."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis"):
            return "image/heic"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head[:2] == b"BM" and len(head) >= 26 and head[6:10] == b"\x00\x00\x00\x00":
        return "image/bmp"
    if head[:4] == b"\x00\x00\x01\x00" and len(head) > 6 and head[4] > 0:
        return "image/x-icon"
    if head[:2] == b"\xff\x0a" or head[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n":
        return "image/jxl"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if (text.startswith((b"<?xml", b"<svg", b"<!--")) or text[:9].lower() == b"<!doctype") and re.search(
        rb"<svg[\s>]", head
    ):
        return "image/svg+xml"
    return None


def leads_outside(path: str | os.PathLike[str], real_root: str) -> bool:
    """Whether ``path`` is a symbolic link whose target lies outside the folder ``real_root`` (a real path):
    following it would publish what the user did not name."""
    if not os.path.islink(path):
        return False
    target = os.path.realpath(path)
    return os.path.commonpath([target, real_root]) != real_root


def _identity(folder: str) -> tuple[int, int]:
    info = os.stat(folder)
    return info.st_dev, info.st_ino


def guess_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


@dataclass
class Found:
    """A file to consider: ``explicit`` when the user named it (uploaded whatever its type). ``url`` is set
    for an address to download first; ``path`` is then only a name for it until it is downloaded."""

    path: Path
    explicit: bool
    error: str | None = None
    # The file's bytes when they are in memory already (a file posted to `picbeam serve`): ``path`` then
    # only names it, and nothing is read from disk.
    data: bytes | None = field(default=None, repr=False)
    url: str | None = None

    @property
    def label(self) -> str:
        """What the user named: the address, or the path as printable text."""
        return self.url or printable(self.path)


@dataclass
class Discovery:
    """Walks the given paths lazily and counts what it passed over."""

    paths: Sequence[Path | str]
    recursive: bool = False
    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    # Follow symbolic links that lead outside the folder named (loops are still detected).
    follow_symlinks: bool = False
    skipped_dirs: int = 0
    skipped_excluded: int = 0
    excluded: list[Path] = field(default_factory=list)
    unreadable_dirs: list[str] = field(default_factory=list)
    symlink_loops: list[str] = field(default_factory=list)
    # Folder named -> how many links leading outside it were passed over.
    outside_links: dict[str, int] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Found]:
        for path in self.paths:
            if isinstance(path, str):  # an address: see as_input()
                yield Found(Path(url_file_name(path)), explicit=True, url=path)
            elif path.is_dir():
                yield from self._walk(path)
            elif path.exists() or path.is_symlink():
                yield Found(path, explicit=True)
            else:
                yield Found(path, explicit=True, error="no such file or folder")

    def _walk(self, root: Path) -> Iterator[Found]:
        def on_error(error: OSError) -> None:
            self.unreadable_dirs.append(f"{error.filename}: {error.strerror}")

        seen: set[tuple[int, int]] = set()
        real_root = os.path.realpath(root)

        def outside(folder: str, name: str) -> bool:
            if self.follow_symlinks or not leads_outside(os.path.join(folder, name), real_root):
                return False
            named = printable(root)
            self.outside_links[named] = self.outside_links.get(named, 0) + 1
            return True

        for folder, dirs, files in os.walk(root, onerror=on_error, followlinks=True):
            identity = _identity(folder)
            if identity in seen:  # a symlink back to a folder already walked: a loop, or a duplicate
                self.symlink_loops.append(folder)
                dirs.clear()
                continue
            seen.add(identity)
            if not self.recursive:
                self.skipped_dirs += len(dirs)
                dirs.clear()
            dirs[:] = sorted(name for name in dirs if not outside(folder, name))
            for name in sorted(files):
                if outside(folder, name):
                    continue
                path = Path(folder, name)
                relative = path.relative_to(root).as_posix()
                if not self._wanted(relative, name):
                    self.skipped_excluded += 1
                    self.excluded.append(path)
                    continue
                yield Found(path, explicit=False)

    def wants(self, path: Path, root: Path) -> bool:
        """Whether ``--include`` / ``--exclude`` let ``path`` (a file under ``root``) through."""
        relative = Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root))).as_posix()
        return self._wanted(relative, path.name)

    def _wanted(self, relative: str, name: str) -> bool:
        def matches(patterns: Sequence[str]) -> bool:
            return any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(name, p) for p in patterns)

        if self.include and not matches(self.include):
            return False
        return not (self.exclude and matches(self.exclude))

    def summary(self, non_images: int = 0) -> list[str]:
        """Lines for stderr about what was passed over (``non_images``: counted by the engine)."""
        lines = []
        if non_images:
            lines.append(f"skipped {non_images} non-image file(s) found in folders (name a file to upload it anyway)")
        if self.skipped_dirs:
            lines.append(f"skipped {self.skipped_dirs} sub-folder(s) (use -r to include them)")
        if self.skipped_excluded:
            lines.append(f"skipped {self.skipped_excluded} file(s) by --include/--exclude")
        for folder, count in self.outside_links.items():
            links = "1 symlink that leads" if count == 1 else f"{count} symlinks that lead"
            shown = folder if folder.endswith("/") else folder + "/"
            lines.append(f"skipped {links} outside {shown} (--follow-symlinks to follow them)")
        lines.extend(f"cannot read folder {entry}" for entry in self.unreadable_dirs)
        lines.extend(
            f"skipped {printable(entry)}: a symbolic link to a folder already walked" for entry in self.symlink_loops
        )
        return lines


def expected(found: Found) -> tuple[int, int]:
    """What one input will add to a run, (files, bytes), read ahead of it for the progress bar: a file found
    in a folder counts only when it is an image (its first bytes say), a download's size is not known yet."""
    if found.url is not None or found.error:
        return 1, 0
    try:
        size = found.path.stat().st_size
        if found.explicit:
            return 1, size
        with open(found.path, "rb") as handle:
            return (1, size) if sniff_image(handle.read(SNIFF_BYTES)) else (0, 0)
    except OSError:
        return 1, 0


# -- addresses and standard input: `picbeam upload https://...` and `picbeam upload -` ----------------------
URL = re.compile(r"https?://", re.IGNORECASE)
DOWNLOAD_MAX_BYTES = 1024**3
DOWNLOAD_TIMEOUT = 300.0
DOWNLOAD_CHUNK = 256 * 1024
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\\u2028\u2029\u0085]+")


def as_input(text: str | os.PathLike[str]) -> Path | str:
    """A command-line argument as an input: an http(s) address stays text (to download), anything else is a
    path. A Path would turn ``https://x/a.png`` into the file ``https:/x/a.png``."""
    if isinstance(text, str) and URL.match(text):
        return text
    return Path(text)


def read_inputs(arguments: Iterable[str], stdin: IO[str] | None = None) -> list[Path | str]:
    """The inputs named on the command line; ``-`` stands for one path or address per line of ``stdin``."""
    inputs: list[Path | str] = []
    for argument in arguments:
        if argument == "-":
            if stdin is None:
                raise ConfigError("'-' reads paths and URLs from standard input, which this run does not have")
            inputs.extend(as_input(line.strip()) for line in stdin.read().splitlines() if line.strip())
        else:
            inputs.append(as_input(argument))
    return inputs


def url_file_name(url: str, disposition: str | None = None, mime: str | None = None) -> str:
    """A safe file name for a download: the Content-Disposition name, else the URL path's last part, else
    ``download``; an extension from the Content-Type when the name has none."""
    name = disposition or unquote(urlsplit(url).path.rstrip("/").rpartition("/")[2])
    name = _UNSAFE_NAME.sub("_", os.path.basename(name.replace("\\", "/"))).strip(" .")[:200] or "download"
    if mime and not os.path.splitext(name)[1]:
        name += mimetypes.guess_extension(mime.split(";")[0].strip()) or ""
    return name


async def download(
    url: str,
    session: aiohttp.ClientSession,
    folder: Path,
    *,
    max_bytes: int = DOWNLOAD_MAX_BYTES,
    timeout: float = DOWNLOAD_TIMEOUT,
    **request: Any,
) -> Path:
    """Fetch ``url`` into ``folder`` (redirects followed, at most ``max_bytes``, within ``timeout`` seconds) and
    return the file; any failure is an UploadError naming what went wrong. The command line is the user's
    own, so any address is allowed (loopback and LAN included), unlike ``picbeam serve``."""
    import aiohttp

    limits = aiohttp.ClientTimeout(total=timeout, sock_connect=15.0, sock_read=min(timeout, 60.0))
    try:
        async with session.get(url, timeout=limits, max_redirects=10, **request) as response:
            if response.status != 200:
                reason = f" {response.reason}" if response.reason else ""
                raise UploadError(f"cannot download: HTTP {response.status}{reason}")
            if response.content_length is not None and response.content_length > max_bytes:
                raise UploadError(f"cannot download: {response.content_length} bytes is over the limit of {max_bytes}")
            disposition = response.content_disposition.filename if response.content_disposition else None
            target = folder / url_file_name(str(response.url), disposition, response.content_type)
            folder.mkdir(parents=True, exist_ok=True)
            size = 0
            with open(target, "wb") as handle:
                async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise UploadError(f"cannot download: the answer is over the limit of {max_bytes} bytes")
                    handle.write(chunk)
    except TimeoutError:
        raise UploadError(f"cannot download: no complete answer within {timeout:g} s") from None
    except aiohttp.TooManyRedirects:
        raise UploadError("cannot download: more than 10 redirects") from None
    except aiohttp.ClientConnectorError as exc:
        raise UploadError(
            f"cannot download: cannot connect to {exc.host}:{exc.port} ({exc.os_error.strerror})"
        ) from None
    except aiohttp.ClientError as exc:
        raise UploadError(f"cannot download: {type(exc).__name__}: {exc}") from None
    except OSError as exc:
        raise UploadError(f"cannot download: cannot write {folder}: {exc.strerror or exc}") from None
    return target
