"""Which values are secrets, and keeping them out of everything picbeam prints or stores."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, unquote_plus, urlsplit, urlunsplit

MASK = "***"

# Header, form and query names whose values are credentials.
_SECRET_NAME = re.compile(
    r"^(authorization|proxy-authorization|cookie|set-cookie|userhash|upload_preset_secret)$"
    r"|key|token|secret|passw|credential|signature|auth",
    re.IGNORECASE,
)
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def is_secret_name(name: str, extra: Iterable[str] = ()) -> bool:
    """True for a field whose value must never be shown (``Authorization``, ``key``, ``X-API-Key``...)."""
    lowered = name.lower()
    return bool(_SECRET_NAME.search(name)) or lowered in {e.lower() for e in extra}


def mask_value(name: str, value: str, extra: Iterable[str] = ()) -> str:
    """A value as it may be shown: ``${VAR}`` references as written, literal secrets masked."""
    if not is_secret_name(name, extra) or ENV_REFERENCE.search(value):
        return value
    return MASK if value else value


def mask_table(table: Mapping[str, str], extra: Iterable[str] = ()) -> dict[str, str]:
    return {key: mask_value(key, str(value), extra) for key, value in table.items()}


class Redactor:
    """Replaces known secret values in any text before it is printed, logged or stored, in each of the
    forms a host or a library may echo them: raw, percent-encoded (either case of hex digits, ``+`` for
    a space), JSON-escaped (``\\/`` too), and as the ``user:password`` inside a Basic credential."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        for secret in secrets:
            secret = secret.strip()
            # "Bearer abc..." and "Client-ID abc...": the credential part alone leaks too.
            scheme, _, credential = secret.partition(" ")
            parts = [secret, credential]
            if scheme.lower() == "basic":
                parts.extend(_basic_parts(credential))
            for part in parts:
                # Very short values ("1", "json") are not credentials and would garble messages.
                if len(part) >= 6:
                    self._secrets.update(_encodings(part))
        self._pattern = None

    def __call__(self, text: str) -> str:
        if not self._secrets:
            return text
        if self._pattern is None:
            ordered = sorted(self._secrets, key=len, reverse=True)  # the longest form first
            self._pattern = re.compile("|".join(map(re.escape, ordered)))
        return self._pattern.sub(MASK, text)

    def data(self, value: Any) -> Any:
        """A JSON-like value (a host's answer) with every secret masked in its strings and keys."""
        if not self._secrets:
            return value
        if isinstance(value, str):
            return self(value)
        if isinstance(value, Mapping):
            return {self(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value

    def __bool__(self) -> bool:
        return bool(self._secrets)


def _encodings(secret: str) -> set[str]:
    """The forms in which ``secret`` may be echoed back."""
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret), unquote(secret), unquote_plus(secret)}
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), form) for form in list(forms)}
    for form in list(forms):
        escaped = json.dumps(form)[1:-1]
        forms |= {escaped, escaped.replace("/", "\\/"), json.dumps(form, ensure_ascii=False)[1:-1]}
    return {form for form in forms if len(form) >= 6}


def _basic_parts(credential: str) -> list[str]:
    """The ``user:password`` and the password inside a Basic credential."""
    try:
        decoded = base64.b64decode(credential, validate=True).decode("utf-8")
    except ValueError:
        return []
    return [decoded, decoded.partition(":")[2]]


def basic_credential(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def url_secrets(url: str, extra: Iterable[str] = ()) -> list[str]:
    """The secrets written into a URL: the password of its userinfo (and the Basic credential aiohttp
    makes of it), and its query values named like secrets (``?api_key=...``)."""
    found = []
    user, password = _userinfo(url)
    if password:
        found += [password, unquote(password), basic_credential(unquote(user), unquote(password))]
    try:
        parts = urlsplit(url.replace(f"{user}:{password}@", "", 1) if password else url)
    except ValueError:  # a malformed endpoint is reported when the host is loaded
        return found
    found += [value for key, value in parse_qsl(parts.query) if value and is_secret_name(key, extra)]
    raw = (pair.partition("=") for pair in parts.query.split("&"))  # as written, before decoding
    found += [value for key, _, value in raw if value and is_secret_name(unquote_plus(key), extra)]
    return found


def mask_url(url: str, extra: Iterable[str] = ()) -> str:
    """A URL as it may be shown: its password and its secret query values masked (``${VAR}`` kept)."""
    _, password = _userinfo(url)
    if password and not ENV_REFERENCE.search(password):
        url = url.replace(f":{password}@", f":{MASK}@", 1)
    try:
        parts = urlsplit(url)
    except ValueError:  # a malformed endpoint is reported when the host is loaded
        return url
    query = "&".join(
        f"{key}={MASK}"
        if value and is_secret_name(unquote_plus(key), extra) and not ENV_REFERENCE.search(value)
        else f"{key}={value}"
        if sep
        else key
        for key, sep, value in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    if query == parts.query:
        return url
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


# scheme://user:password@ — the password up to the first '@', even with a '/' that should have been encoded.
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#@:]*):([^@]*)@")


def _userinfo(url: str) -> tuple[str, str]:
    try:
        parts = urlsplit(url)
        if parts.password is not None:
            return parts.username or "", parts.password
    except ValueError:
        pass
    match = _USERINFO.match(url)
    if match is None or match.group(3).partition("/")[0].isdigit():  # host:port/path@...: no password
        return "", ""
    return match.group(2), match.group(3)


def literal_secrets(fields: Mapping[str, Any]) -> list[str]:
    """``table.key`` names of secret header/form/query values written literally instead of as ``${VAR}``
    (and ``endpoint`` for a password or key written into the URL)."""
    endpoint = str(fields.get("endpoint") or "")
    literal_in_url = [s for s in url_secrets(endpoint, fields.get("secrets") or ()) if not ENV_REFERENCE.search(s)]
    return ["endpoint"] * bool(literal_in_url) + [
        f"{table}.{key}"
        for table in ("query", "headers", "form")
        for key, value in (fields.get(table) or {}).items()
        # Very short values ("true", "json") are settings whose names merely look secret (genDeletionKey).
        if is_secret_name(key, fields.get("secrets") or ())
        and isinstance(value, str)
        and len(value) >= 6
        and not ENV_REFERENCE.search(value)
    ]


def literal_secret_warning(path: str, literal: list[str]) -> str | None:
    """The warning for a hosts.d file that writes secrets out and that other users can read, if it is so."""
    import os

    try:
        readable = bool(literal) and bool(os.stat(path).st_mode & 0o044)
    except OSError:
        return None
    if not readable:
        return None
    return (
        f"{path} holds a literal secret ({', '.join(literal)}) and other users can read it: "
        f"chmod 600 {path}, or use a ${{VAR}} reference"
    )
