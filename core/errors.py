"""The error types picbeam raises. Each one renders as a single line a user can act on."""

from __future__ import annotations


class PicbeamError(Exception):
    """Base class: an expected failure with a one-line message (never a traceback)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(PicbeamError):
    """A host spec, config file or command line that cannot be used as written (exit status 2)."""


class UploadError(PicbeamError):
    """One file could not be uploaded.

    ``transient`` marks failures worth retrying (connection errors, timeouts, 429, 5xx);
    ``retry_after`` carries the host's own wish, in seconds, when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        transient: bool = False,
        retry_after: float | None = None,
        answer: object = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient
        self.retry_after = retry_after
        self.answer = answer


class AlreadyGone(UploadError):
    """Raised by a host's ``delete`` when the file is not there any more: the goal of the delete is met,
    so ``picbeam delete`` marks the upload deleted and says so in a note."""


def transient_status(status: int) -> bool:
    """Whether an HTTP status is worth another attempt: the one classifier every host uses.

    408 (request timeout), 425 (too early), 429 (throttled) and the 5xx server errors, except 501 (not
    implemented) and 505 (HTTP version not supported), which will not change on their own.
    """
    return status in (408, 425, 429) or (status >= 500 and status not in (501, 505))


class LedgerError(PicbeamError):
    """The ledger could not be written (disk full, read-only file system, I/O error): the run stops."""


class PluginError(PicbeamError):
    """A plugin could not be loaded or registered something invalid."""
