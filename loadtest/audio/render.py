"""Rendering the audio of a dataset's captured calls in the background while the mesh starts."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from loadtest.audio import attach
from loadtest.console import console
from services.common.progress import progress_bar
from training.dataset import EVENTS


class AudioRender:
    """Renders captured calls' audio in the background (one process per core, e.g. while the mesh
    starts); ``wait`` shows a progress bar until it is done."""

    def __init__(self, dataset: Path, seed: int, limit: int) -> None:
        captured = attach.captured(dataset / EVENTS)
        self.captured = len(captured)
        self.chosen = attach.choose(captured, limit, seed)
        self.call_ids = {m.segment.segment_id: m.segment.call_id for m in self.chosen}
        self.done = 0
        self.workers = os.cpu_count() or 1
        self.started = time.monotonic()
        pool = ThreadPoolExecutor(1)
        self._future = pool.submit(attach.render_all, self.chosen, seed, self.workers, self._count)
        pool.shutdown(wait=False)

    def _count(self, done: int) -> None:
        self.done = done

    def wait(self) -> dict[str, bytes]:
        """The rendered segments (encoded AudioSegments by segment id)."""
        with progress_bar(console, rate=True) as progress:
            task = progress.add_task("rendering audio", total=len(self.chosen), rate="")
            while not self._future.done():
                progress.update(task, completed=self.done)
                time.sleep(0.2)
            progress.update(task, completed=self.done)
        rendered = self._future.result()
        console.print(
            f"rendered audio for {len(rendered):,} of {self.captured:,} captured calls in "
            f"{time.monotonic() - self.started:.1f} s ({self.workers} processes, "
            f"{len(attach.engine_voices())} voices)"
        )
        return rendered
