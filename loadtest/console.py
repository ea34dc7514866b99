"""The simulator's one console: progress and figures on stderr, so stdout stays free for data."""

from __future__ import annotations

from rich.console import Console

console = Console(stderr=True)
