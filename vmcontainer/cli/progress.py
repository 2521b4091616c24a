"""Boot-asset build progress for a terminal (rich) or a log (plain lines)."""

from __future__ import annotations

from typing import Any

import click


class BuildProgress:
    """Shows boot-asset builds (the kernel takes minutes) as a progress bar on a
    terminal and as occasional plain lines otherwise."""

    def __init__(self) -> None:
        self._bar: Any = None  # rich.progress.Progress, imported only when building
        self._task: Any = None
        self._what = ""
        self._last_plain = 0

    def __call__(self, what: str, done: int, total: int, line: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        err_console = Console(stderr=True)
        if not err_console.is_terminal:
            if what != self._what or done - self._last_plain >= 200:
                click.echo(f"building {what}: {done}/{total or '?'} {line}", err=True)
                self._what, self._last_plain = what, done
            return
        if self._bar is None or what != self._what:
            self.close()
            self._what = what
            self._bar = Progress(TextColumn("building {task.description}"), BarColumn(),
                                 TextColumn("{task.fields[line]}"), TimeElapsedColumn(),
                                 console=err_console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(what, total=total or None, line="")
        self._bar.update(self._task, completed=min(done, total) if total else done,
                         line=line[:50])

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
