"""Path templates: where a stored file goes (``img/{year}/{month}/{sha256:12}{ext}``) and its public URL.

Shared by every host that stores under a key or path (local, S3, WebDAV, GitHub, SFTP) and by the
rename processor. Placeholders:

``{year}`` (four digits), ``{month}``, ``{day}``, ``{hour}``, ``{minute}``, ``{second}`` (two digits),
``{timestamp}`` (unix seconds), ``{filename}`` (the file's name), ``{name}`` (original stem), ``{ext}`` (with
its dot, lower case), ``{sha256}`` / ``{md5}`` (of the bytes stored, after any processing; ``:N`` keeps the
first N hex digits), ``{uuid}``, ``{random:N}`` (N letters and digits). A URL template also has ``{path}``,
the stored path (percent-encoded), and whatever a host adds (``{bucket}``, ``{repo}``...).

``{{`` and ``}}`` stand for a literal ``{`` and ``}`` (so ``{{year}}`` is the text ``{year}``); importers
write other tools' literal text this way (:func:`escape_braces`).
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import string
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from .errors import ConfigError, UploadError
from .items import UploadItem

# A placeholder, or an escaped brace ({{ or }}, group 1 empty).
PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([a-z0-9]+)(?::(\d+))?\}")
DATE_FIELDS = {"year": "%Y", "month": "%m", "day": "%d", "hour": "%H", "minute": "%M", "second": "%S"}
NAMES = {*DATE_FIELDS, "timestamp", "filename", "name", "ext", "sha256", "md5", "uuid", "random"}
_UNSAFE = re.compile(r"[^\w.\-~]+", re.UNICODE)


@dataclass
class TemplateContext:
    """What placeholders are filled from: the file being stored and the moment it is stored."""

    name: str
    sha256: str = ""
    source: Path | None = None
    data: bytes | None = None
    now: datetime = field(default_factory=datetime.now)
    # The file's type: gives ``{ext}`` for a name without an extension.
    mime: str = ""
    # The file being stored: its hash is computed only when a template asks for ``{sha256}``.
    item: UploadItem | None = field(default=None, repr=False)
    _md5: str | None = None

    @classmethod
    def of(cls, item: UploadItem, now: datetime | None = None) -> TemplateContext:
        return cls(
            name=item.name,
            item=item,
            source=item.path,
            data=item.data,
            now=now or datetime.now(),
            mime=item.mime,
        )

    def sha256_hex(self) -> str:
        """The SHA-256 of the bytes stored (a processed file is hashed on first use, not on every upload)."""
        if not self.sha256 and self.item is not None:
            self.sha256 = self.item.content_sha256()
        return self.sha256

    def md5(self) -> str:
        if self._md5 is None:
            digest = hashlib.md5(usedforsecurity=False)
            if self.item is not None:  # what is sent, which may be spliced or in memory
                for chunk in self.item.chunks():
                    digest.update(chunk)
            elif self.data is not None:
                digest.update(self.data)
            elif self.source is not None:
                with open(self.source, "rb") as handle:
                    while chunk := handle.read(1024 * 1024):
                        digest.update(chunk)
            self._md5 = digest.hexdigest()
        return self._md5


def check_template(template: str, *, where: str, extra: tuple[str, ...] = ()) -> None:
    """Refuse unknown placeholders when the configuration loads, naming where."""
    for match in PLACEHOLDER.finditer(template):
        if match.group(1) is not None and match.group(1) not in NAMES and match.group(1) not in extra:
            known = ", ".join(sorted(NAMES | set(extra)))
            raise ConfigError(f"{where}: unknown placeholder '{{{match.group(1)}}}' (known: {known})")


def render_path(template: str, context: TemplateContext) -> str:
    """Expand a path template into a safe relative POSIX path; refuse anything that escapes the root."""
    expanded = PLACEHOLDER.sub(
        lambda m: _brace(m) if m.group(1) is None else _safe(_value(m.group(1), m.group(2), context)), template
    )
    return safe_relative_path(expanded)


def render_url(template: str, path: str, context: TemplateContext, extra: Mapping[str, str] | None = None) -> str:
    """Expand a URL template; ``{path}`` is the stored path, percent-encoded; ``extra`` holds a host's own
    placeholders (``{bucket}``...), inserted as they are."""

    def value(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return _brace(match)
        if match.group(1) == "path":
            return quote(path)
        if extra and match.group(1) in extra:
            return extra[match.group(1)]
        return quote(_value(match.group(1), match.group(2), context))

    return PLACEHOLDER.sub(value, template)


def has_placeholders(text: str) -> bool:
    """True when ``text`` holds a placeholder picbeam fills or an escaped brace (other brace text is left
    alone)."""
    return any(match.group(1) is None or match.group(1) in NAMES for match in PLACEHOLDER.finditer(text))


def fill_placeholders(text: str, context: TemplateContext, *, quote_values: bool = False) -> str:
    """Fill the known placeholders of a request value (``{filename}``...); any other brace text stays as
    written, since form fields and headers may legitimately hold braces. ``quote_values`` percent-encodes
    what is filled in, for a URL."""

    def value(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return _brace(match)
        if match.group(1) not in NAMES:
            return match.group(0)
        filled = _value(match.group(1), match.group(2), context)
        return quote(filled) if quote_values else filled

    return PLACEHOLDER.sub(value, text)


def escape_braces(text: str) -> str:
    """Literal text for a template or request value: every brace doubled, so nothing in it is filled in."""
    return text.replace("{", "{{").replace("}", "}}")


def _brace(match: re.Match[str]) -> str:
    """The literal brace an escape ({{ or }}) stands for."""
    return match.group(0)[0]


def safe_relative_path(path: str) -> str:
    """Normalise a relative path, refusing NUL, backslashes, absolute paths and ``..``."""
    if "\0" in path or "\\" in path:
        raise UploadError(f"path {path!r} has a NUL or backslash character")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise UploadError(f"path {path!r} is absolute; a path template must stay under the root")
    parts = [part for part in PurePosixPath(path).parts if part not in ("", ".")]
    if not parts or ".." in parts:
        raise UploadError(f"path {path!r} escapes the root or is empty")
    return "/".join(parts)


def _value(name: str, width: str | None, context: TemplateContext) -> str:
    if name in DATE_FIELDS:
        return context.now.strftime(DATE_FIELDS[name])
    if name == "timestamp":
        return str(int(context.now.timestamp()))
    if name == "filename":
        return context.name
    if name == "name":
        return Path(context.name).stem
    if name == "ext":
        suffix = Path(context.name).suffix.lower()
        if not suffix and context.mime:
            return mimetypes.guess_extension(context.mime) or ""
        return suffix
    if name in ("sha256", "md5"):
        digest = context.sha256_hex() if name == "sha256" else context.md5()
        return digest[: int(width)] if width else digest
    if name == "uuid":
        return uuid.uuid4().hex
    if name == "random":
        alphabet = string.ascii_lowercase + string.digits
        import secrets  # only for {random}: not on every run's path

        return "".join(secrets.choice(alphabet) for _ in range(int(width or 8)))
    raise UploadError(f"unknown placeholder '{{{name}}}'")


def _safe(value: str) -> str:
    """A path segment safe in URLs: runs of unsafe characters become '-' (letters of any script stay)."""
    if not value:
        return ""  # an empty {ext} stays empty
    return _UNSAFE.sub("-", value).strip("-") or "_"
