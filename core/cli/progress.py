"""The progress bar a person sees on stderr while a batch runs."""

from __future__ import annotations

import sys
from typing import Any


class ProgressReport:
    """A rich progress bar on stderr (files, bytes, rate), only when stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._interactive = sys.stdout.isatty()

    def __enter__(self) -> ProgressReport:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.fields[done]}/{task.fields[found]} files"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
                redirect_stdout=False,  # results go to the real stdout, even when stderr is a terminal
            )
            self._progress.start()
            self._task = self._progress.add_task("upload", total=0, done=0, found=0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, event: str, amount: int) -> None:
        if self._progress is None:
            return
        task = self._progress.tasks[0]
        if event == "found":
            self._progress.update(self._task, found=task.fields["found"] + amount)
        elif event == "skipped":
            self._progress.update(self._task, found=task.fields["found"] - amount)
        elif event == "bytes_found":
            self._progress.update(self._task, total=(task.total or 0) + amount)
        elif event == "done":
            self._progress.update(self._task, advance=amount, done=task.fields["done"] + 1)

    def print(self, line: str) -> None:
        sys.stdout.write(line + "\n")
        if self._interactive:  # a person sees each line as it lands; a pipe gets them buffered
            sys.stdout.flush()

    def error(self, line: str) -> None:
        if self._progress is not None:
            self._progress.console.print(f"picbeam: {line}", markup=False, highlight=False)
        else:
            print(f"picbeam: {line}", file=sys.stderr)
