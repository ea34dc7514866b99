"""Progress bars for the command-line jobs (simulator, trainer, report, benchmarks); services draw none.

Every long job shows the same columns on stderr: what it is doing, a bar, done/total, an optional
``rate`` field the job fills in (``add_task(..., rate="")``), and the elapsed time.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

__all__ = ["progress_bar"]


def progress_bar(
    console: Console | None = None,
    *,
    rate: bool = False,
    transient: bool = False,
    terminal_only: bool = False,
) -> Progress:
    """A progress display: with ``rate`` a ``{task.fields[rate]}`` column, ``transient`` erases it when
    done, ``terminal_only`` draws nothing when stderr is not a terminal (CI logs stay readable)."""
    console = console or Console(stderr=True)
    columns: list[ProgressColumn | str] = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
    ]
    if rate:
        columns.append(TextColumn("{task.fields[rate]}"))
    columns.append(TimeElapsedColumn())
    return Progress(
        *columns, console=console, transient=transient, disable=terminal_only and not console.is_terminal
    )
