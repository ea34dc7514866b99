"""The scoring model in force, hot-reloaded from FRAUDMESH_MODEL_PATH off the call path.

Roll out a model by writing its artifact folder next to the running one and swapping the symlink
FRAUDMESH_MODEL_PATH points through (or by replacing the folder's files). ``ModelStore.run`` notices
within ``check_every_s`` — by a stamp of each artifact file's resolved path, inode, times and size,
never by reading the files — then loads, verifies (forest SHA-256 and manifest,
``services.scoring.artifact.load``; the running code's feature schema) and warms the new model in a
worker thread, and only then swaps it in. ``current()`` is an attribute read. A bad artifact keeps
the previous model serving and is counted once per distinct stamp (log + metric), not once per check.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final

from services.common.features import SCHEMA_HASH
from services.decision import metrics
from services.scoring.artifact import ARRAYS, METADATA, ArtifactError, SchemaMismatchError
from services.scoring.model import Scorer

log = logging.getLogger(__name__)

Stamp = tuple[tuple[str, int, int, int, int], ...]
_FILES: Final = (METADATA, ARRAYS)
_ABSENT: Final = -1


def stamp(path: Path) -> Stamp:
    """What identifies the artifact's bytes cheaply: each file's resolved path, inode, times and size.

    A swapped symlink changes the resolved path, a file replaced by rename its inode, one
    overwritten in place its change time (which no copy preserves) and usually its modification
    time and size. A missing file is a state of its own, judged once too.
    """
    parts = []
    for name in _FILES:
        try:
            real = (path / name).resolve(strict=True)
            info = real.stat()
        except (OSError, RuntimeError):  # RuntimeError: a symlink loop
            parts.append((str(path / name), _ABSENT, _ABSENT, _ABSENT, _ABSENT))
            continue
        parts.append((str(real), info.st_ino, info.st_mtime_ns, info.st_ctime_ns, info.st_size))
    return tuple(parts)


def model_reloaded(outcome: str, version: str) -> None:
    """An ``on_reload`` for the service: count the outcome and point MODEL_INFO at the model in force."""
    metrics.MODEL_RELOADS.labels(outcome).inc()
    metrics.MODEL_INFO.clear()
    metrics.MODEL_INFO.labels(version, SCHEMA_HASH).set(1)


class ModelStore:
    """The scorer in force, reloaded off the call path when the artifact changes; a bad one keeps the last.

    ``current()`` never does I/O and never raises. ``run()`` (a background task) checks the artifact
    every ``check_every_s`` in a worker thread; ``check_now()`` does one check synchronously.
    ``on_reload(outcome, version)`` hears "applied" with the new version or "rejected" with the
    version still in force.
    """

    def __init__(
        self,
        path: Path,
        *,
        check_every_s: float,
        on_reload: Callable[[str, str], None] | None = None,
        scorer: Scorer | None = None,
    ) -> None:
        if not check_every_s > 0:
            raise ValueError("check_every_s must be positive")
        self.path = path
        self._check_every = check_every_s
        self._on_reload = on_reload
        self._lock = threading.Lock()
        self._stamp = stamp(path)  # taken before loading: a change during the load is seen next check
        self._scorer = _usable(scorer) if scorer is not None else _load(path.resolve())  # bad here: fatal
        self.last_error = ""

    def current(self) -> Scorer:
        """The scorer to use now: an attribute read (no I/O, never raises)."""
        return self._scorer

    async def run(self) -> None:
        """Check the artifact every ``check_every_s`` until cancelled, off the event loop."""
        while True:
            await asyncio.sleep(self._check_every)
            await asyncio.to_thread(self.check_now)

    def check_now(self) -> bool:
        """Swap in the artifact's model if it changed, verifies and warms; True when a new model is active."""
        with self._lock:
            seen = stamp(self.path)
            if seen == self._stamp:
                return False
            try:
                scorer = _load(self.path.resolve())  # one release, even if the link moves mid-load
            except Exception as exc:  # any failure keeps the model in force; the watcher lives on
                if stamp(self.path) != seen:
                    return False  # still being written: judged at the next check, once it is still
                self._stamp = seen
                self.last_error = _reason(self.path, exc)
                log.error(
                    "model reload rejected; the previous model stays active",
                    extra={"error": self.last_error, "path": str(self.path), "version": self._scorer.version},
                )
                self._report("rejected", self._scorer.version)
                return False
            self._stamp = seen
            self._scorer = scorer
            self.last_error = ""
            log.info("model reloaded", extra={"version": scorer.version, "path": str(self.path)})
            self._report("applied", scorer.version)
            return True

    def _report(self, outcome: str, version: str) -> None:
        if self._on_reload is not None:
            self._on_reload(outcome, version)


def _load(path: Path) -> Scorer:
    """Load, verify and warm an artifact (the slow part of a reload: run it off the event loop)."""
    return _usable(Scorer.load(path))


def _usable(scorer: Scorer) -> Scorer:
    """The scorer, warmed, if it was built for the running code's feature schema."""
    schema = scorer.artifact.metadata.get("schema_hash")
    if schema != SCHEMA_HASH:
        raise SchemaMismatchError(str(schema), SCHEMA_HASH)
    if not scorer.ready:
        scorer.warm()
    return scorer


def _reason(path: Path, exc: Exception) -> str:
    """Why an artifact was refused, for the log (ArtifactError and OSError name the file themselves)."""
    if isinstance(exc, ArtifactError | OSError):
        return str(exc)
    return f"{path}: unusable model ({type(exc).__name__}: {exc})"
