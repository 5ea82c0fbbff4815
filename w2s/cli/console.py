"""The consoles every command prints through. Written to a log file or a pipe, rich would cut tables to
80 columns and show a progress bar only when it ends; these keep whole lines and print progress as lines."""

from __future__ import annotations

import time

from rich.console import Console, ConsoleDimensions
from rich.progress import Progress

LOG_WIDTH = 200
"""Columns of a table written to a file or pipe (a terminal's own width is used otherwise)."""
LOG_EVERY_S = 30.0
"""A progress line in a log at most this often (and at the end)."""


class CliConsole(Console):
    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self.is_terminal or self._width is not None:
            return size
        return ConsoleDimensions(LOG_WIDTH, size.height)

    @size.setter
    def size(self, new_size) -> None:
        Console.size.fset(self, new_size)


def console(stderr: bool = False, **kwargs) -> Console:
    return CliConsole(stderr=stderr, **kwargs)


class CliProgress(Progress):
    """A rich Progress that, off a terminal, prints a plain line per task every LOG_EVERY_S and at the end."""

    def __init__(self, *columns, console: Console, **kwargs) -> None:
        kwargs.setdefault("disable", not console.is_terminal)  # no live display to draw: lines instead
        super().__init__(*columns, console=console, **kwargs)
        self._log = not console.is_terminal
        self._last: dict = {}

    def update(self, task_id, **kwargs) -> None:
        super().update(task_id, **kwargs)
        self._line(task_id)

    def advance(self, task_id, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._line(task_id)

    def stop(self) -> None:
        if self._log:
            for task in self.tasks:
                self._line(task.id, force=True)
        super().stop()

    def _line(self, task_id, force: bool = False) -> None:
        if not self._log:
            return
        now = time.monotonic()
        task = self._tasks[task_id]
        last_time, last_done = self._last.get(task_id, (now - LOG_EVERY_S - 1, None))
        if (now - last_time < LOG_EVERY_S and not force) or (force and last_done == task.completed):
            return
        self._last[task_id] = (now, task.completed)
        total = f"/{task.total:.0f}" if task.total is not None else ""
        rate = f", {task.speed:.2f}/s" if task.speed else ""
        self.console.print(
            f"{task.description}: {task.completed:.0f}{total} after {task.elapsed or 0:.0f} s{rate}",
            highlight=False,
            markup=False,
        )
