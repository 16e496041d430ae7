"""The progress bar a person sees on stderr while a batch runs."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any


class ProgressReport:
    """A rich progress bar on stderr, only when stderr is a terminal: files done of the files expected,
    bytes sent, the rate and the time left.

    The total is counted ahead of the uploads by :meth:`count_ahead` (a walk that reads only each file's size
    and first bytes); until that walk ends the total shows as ``N+``.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._interactive = sys.stdout.isatty()
        self._lock = threading.Lock()
        self._expected = 0
        self._expected_bytes = 0
        self._counted = False
        self._done = 0
        self._bytes = 0
        self._started = time.monotonic()

    def __enter__(self) -> ProgressReport:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn

            self._progress = Progress(
                TextColumn("{task.fields[files]}"),
                BarColumn(),
                TextColumn("{task.fields[sent]}"),
                console=Console(stderr=True),
                transient=True,
                redirect_stdout=False,  # results go to the real stdout, even when stderr is a terminal
            )
            self._progress.start()
            self._task = self._progress.add_task("upload", total=None, files="", sent="")
            self._refresh()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def count_ahead(self, found: Callable[[], Iterable[Any]], counts: Callable[[Any], tuple[int, int]]) -> None:
        """Count the run's files in a thread ahead of the uploads: ``found()`` yields the inputs again, and
        ``counts(entry)`` gives (files, bytes) each one will add (0 files for one that will be skipped)."""
        if self._progress is None:
            return

        def walk() -> None:
            for entry in found():
                files, size = counts(entry)
                with self._lock:
                    self._expected += files
                    self._expected_bytes += size
            with self._lock:
                self._counted = True
            self._refresh()

        threading.Thread(target=walk, name="picbeam-count", daemon=True).start()

    def update(self, event: str, amount: int) -> None:
        if self._progress is None or event != "done":
            return
        with self._lock:
            self._done += 1
            self._bytes += amount
        self._refresh()

    def _refresh(self) -> None:
        from rich.filesize import decimal

        with self._lock:
            done, sent, expected, counted = self._done, self._bytes, max(self._expected, self._done), self._counted
            expected_bytes = self._expected_bytes
        elapsed = max(time.monotonic() - self._started, 1e-3)
        rate = sent / elapsed
        files = f"{done}/{expected}{'' if counted else '+'} files"
        of = f" of {decimal(expected_bytes)}" if counted else ""
        parts = [f"{decimal(sent)}{of}", f"{decimal(int(rate))}/s" if done else "-/s"]
        if counted and done:
            left = elapsed * (expected - done) / done
            parts.append(f"ETA {int(left) // 60}:{int(left) % 60:02d}")
        self._progress.update(
            self._task, total=expected if counted else None, completed=done, files=files, sent="  ".join(parts)
        )

    def print(self, line: str) -> None:
        sys.stdout.write(line + "\n")
        if self._interactive:  # a person sees each line as it lands; a pipe gets them buffered
            sys.stdout.flush()

    def error(self, line: str) -> None:
        if self._progress is not None:
            self._progress.console.print(f"picbeam: {line}", markup=False, highlight=False)
        else:
            print(f"picbeam: {line}", file=sys.stderr)
