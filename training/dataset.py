"""Dataset files: zstd-compressed streams of varint-length-delimited DatasetRecord messages.

A dataset is a folder with ``events.fmds`` (setups, CDRs, complaints, audio metadata in simulated
time order — what the Kafka topics would carry), ``calls.fmds`` (CallTruth per call),
``numbers.fmds`` (NumberTruth per presented number) and ``manifest.json`` (scenario, seed, counts,
sha256 of every file, schema and generator versions). Replay adds ``outcomes.fmds``; the main job
adds ``audio.json`` when it published audio.
The trainer and the report read the same files; an operator's labelled data in this format trains
the model the same way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

import zstandard

from fraudmesh.v1 import dataset_pb2

UNWANTED_KINDS: Final[frozenset[int]] = frozenset(
    {
        dataset_pb2.ACTOR_KIND_ROBOCALL,
        dataset_pb2.ACTOR_KIND_NEIGHBOR_SPOOFER,
        dataset_pb2.ACTOR_KIND_INTL_DOMESTIC_SPOOFER,
        dataset_pb2.ACTOR_KIND_ONNET_SPOOFER,
        dataset_pb2.ACTOR_KIND_INVALID_NUMBER_SPOOFER,
        dataset_pb2.ACTOR_KIND_AI_IMPERSONATOR,
    }
)
"""The label: calls by these actor kinds are unwanted (``CallTruth.unwanted``); every other kind is wanted."""

SUFFIX = ".fmds"
EVENTS = "events" + SUFFIX
CALLS = "calls" + SUFFIX
NUMBERS = "numbers" + SUFFIX
OUTCOMES = "outcomes" + SUFFIX
AUDIO_RUN = "audio.json"  # what the main job's audio segments became (loadtest.audiorun)
MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def _varint_slow(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL_VARINTS = [_varint_slow(n) for n in range(1 << 14)]


def _varint(value: int) -> bytes:
    return _SMALL_VARINTS[value] if value < 16384 else _varint_slow(value)


def _read_varint(buffer: bytes, position: int) -> tuple[int, int]:
    """(value, next position); IndexError when the buffer ends inside the varint."""
    value = shift = 0
    while True:
        byte = buffer[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7
        if shift > 35:
            raise DatasetError("length prefix longer than 5 bytes")


class DatasetError(ValueError):
    """A dataset file is truncated, corrupt, or not a fraudmesh dataset."""


class RecordWriter:
    """Appends DatasetRecords to one compressed file; use as a context manager."""

    def __init__(self, path: Path, level: int = 3) -> None:
        self.path = path
        self.count = 0
        self._raw: IO[bytes] = path.open("wb")
        self._stream = zstandard.ZstdCompressor(level=level).stream_writer(self._raw, closefd=False)
        self._buffer: list[bytes] = []
        self._buffered = 0

    def write(self, record: dataset_pb2.DatasetRecord) -> None:
        """Append one record."""
        self.write_bytes(record.SerializeToString())

    def write_bytes(self, payload: bytes) -> None:
        """Append one already-serialised DatasetRecord."""
        size = len(payload)
        self._buffer += (_varint(size), payload)
        self._buffered += size
        self.count += 1
        if self._buffered > 1 << 20:
            self._flush_buffer()

    def _flush_buffer(self) -> None:
        self._stream.write(b"".join(self._buffer))
        self._buffer.clear()
        self._buffered = 0

    def close(self) -> None:
        """Flush and close the file."""
        self._flush_buffer()
        self._stream.close()  # type: ignore[no-untyped-call]
        self._raw.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def read_records(path: Path, chunk_size: int = 1 << 20) -> Iterator[dataset_pb2.DatasetRecord]:
    """Every record of one dataset file, in file order, streamed in bounded memory.

    Raises DatasetError on a file that is not zstd, ends mid-record, or holds a corrupt record.
    """
    with path.open("rb") as raw:
        reader = zstandard.ZstdDecompressor().stream_reader(raw)
        buffer = b""
        position = 0
        while True:
            try:
                chunk = reader.read(chunk_size)
            except zstandard.ZstdError as exc:
                raise DatasetError(f"{path.name}: not a valid zstd stream ({exc})") from None
            if chunk:
                buffer = buffer[position:] + chunk
                position = 0
            end = len(buffer)
            while position < end:
                try:
                    size, start = _read_varint(buffer, position)
                except IndexError:
                    break
                if start + size > end:
                    break
                record = dataset_pb2.DatasetRecord()
                try:
                    record.ParseFromString(buffer[start : start + size])
                except Exception as exc:
                    raise DatasetError(f"{path.name}: corrupt record ({exc})") from None
                position = start + size
                yield record
            if not chunk:
                if position < end:
                    raise DatasetError(f"{path.name}: truncated record at the end of the file")
                return


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Manifest:
    """What a dataset holds and how it was made."""

    scenario: str
    seed: int
    start_ms: int
    duration_s: float
    counts: dict[str, int] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    generator: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def write(self, folder: Path) -> None:
        """Hash every dataset file in the folder and write manifest.json."""
        self.files = {p.name: sha256_of(p) for p in sorted(folder.glob("*" + SUFFIX))}
        (folder / MANIFEST).write_text(json.dumps(self.__dict__, indent=2, sort_keys=True) + "\n")

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        """Load manifest.json, refusing an unknown format version."""
        try:
            data = json.loads((folder / MANIFEST).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetError(f"{folder}: no readable {MANIFEST} ({exc})") from None
        if data.get("format_version") != FORMAT_VERSION:
            raise DatasetError(f"{folder}: dataset format {data.get('format_version')} != {FORMAT_VERSION}")
        return cls(**data)

    def verify(self, folder: Path) -> None:
        """Raise DatasetError when a file is missing or its bytes changed since the manifest."""
        for name, digest in self.files.items():
            path = folder / name
            if not path.exists():
                raise DatasetError(f"{folder}: {name} is missing")
            if sha256_of(path) != digest:
                raise DatasetError(f"{folder}: {name} does not match its manifest hash")
