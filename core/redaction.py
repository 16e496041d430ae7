"""Which values are secrets, and keeping them out of everything picbeam prints or stores."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

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
    """Replaces known secret values in any text before it is printed, logged or stored."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        for secret in secrets:
            secret = secret.strip()
            # Very short values ("1", "json") are not credentials and would garble messages.
            if len(secret) >= 6:
                self._secrets.add(secret)
                # "Bearer abc..." and "Client-ID abc...": the credential part alone leaks too.
                _, _, credential = secret.partition(" ")
                if len(credential) >= 6:
                    self._secrets.add(credential)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    def __bool__(self) -> bool:
        return bool(self._secrets)


def literal_secrets(fields: Mapping[str, Any]) -> list[str]:
    """``table.key`` names of secret header/form/query values written literally instead of as ``${VAR}``."""
    return [
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
