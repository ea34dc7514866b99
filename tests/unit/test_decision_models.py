"""ModelStore: a new artifact behind FRAUDMESH_MODEL_PATH is swapped in only once it verifies and is warm.

The artifact folder is reached through a ``current`` symlink, as on a Kubernetes volume; the two
releases are a small model trained here and the shipped default.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from services.common.features import SCHEMA_HASH
from services.decision.models import ModelStore, model_reloaded
from services.scoring import artifact
from services.scoring.artifact import ArtifactError, Calibration, SchemaMismatchError
from services.scoring.model import DEFAULT_MODEL_PATH, Scorer
from tests.unit.test_scoring_kernels import model
from training import export

Events = list[tuple[str, str]]


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two valid artifacts with different versions: a small one trained here, and the default."""
    trained, _, _ = model("nan")
    small = artifact.save(
        export.from_booster(trained, Calibration(a=0.9, b=-1.0)), tmp_path_factory.mktemp("small") / "m"
    )
    return small, DEFAULT_MODEL_PATH


@pytest.fixture
def volume(tmp_path: Path, releases: tuple[Path, Path]) -> Path:
    """A model volume: releases/old holds the small model, ``current`` points at it."""
    shutil.copytree(releases[0], tmp_path / "releases" / "old")
    point(tmp_path / "current", tmp_path / "releases" / "old")
    return tmp_path


def point(link: Path, target: Path) -> None:
    """Swap a symlink atomically, the way a rollout should (``ln -s`` to a new name, then rename)."""
    new = link.with_name(link.name + ".new")
    new.symlink_to(target)
    os.replace(new, link)


def release(
    volume: Path, name: str, source: Path, edit: Callable[[dict[str, object]], object] | None = None
) -> Path:
    """Write a release folder beside the others (optionally with an edited manifest)."""
    folder = volume / "releases" / name
    shutil.copytree(source, folder)
    if edit is not None:
        meta = json.loads((folder / artifact.METADATA).read_text())
        edit(meta)
        (folder / artifact.METADATA).write_text(json.dumps(meta))
    return folder


def open_store(volume: Path, events: Events, check_every_s: float = 60.0) -> ModelStore:
    return ModelStore(
        volume / "current", check_every_s=check_every_s, on_reload=lambda *event: events.append(event)
    )


def test_a_valid_new_artifact_is_swapped_in(volume: Path, releases: tuple[Path, Path]) -> None:
    events: Events = []
    store = open_store(volume, events)
    old = store.current()
    assert old.ready
    assert not store.check_now()
    point(volume / "current", release(volume, "new", releases[1]))
    assert store.check_now()
    new = store.current()
    assert new is not old
    assert new.ready
    assert new.version == Scorer.load(releases[1], warm=False).version != old.version
    assert events == [("applied", new.version)]
    assert not store.check_now()
    assert events == [("applied", new.version)]


def test_files_replaced_in_the_folder_are_swapped_in(volume: Path, releases: tuple[Path, Path]) -> None:
    events: Events = []
    store = open_store(volume, events)
    folder = volume / "releases" / "old"
    for name in (artifact.ARRAYS, artifact.METADATA):  # the rename-into-place way
        shutil.copy2(releases[1] / name, folder / f".{name}.tmp")
        os.replace(folder / f".{name}.tmp", folder / name)
    assert store.check_now()
    assert events == [("applied", store.current().version)]


@pytest.mark.parametrize(
    "damage",
    [
        lambda f: (f / artifact.ARRAYS).write_bytes((f / artifact.ARRAYS).read_bytes()[:1000]),
        lambda f: (f / artifact.METADATA).unlink(),
        lambda f: shutil.copy2(DEFAULT_MODEL_PATH / artifact.ARRAYS, f / artifact.ARRAYS),
    ],
    ids=["truncated", "missing-manifest", "mixed"],
)
def test_a_corrupted_artifact_keeps_the_old_model_and_is_counted_once(
    volume: Path, releases: tuple[Path, Path], damage: Callable[[Path], object]
) -> None:
    events: Events = []
    store = open_store(volume, events)
    old = store.current()
    bad = release(volume, "bad", releases[0])
    damage(bad)
    point(volume / "current", bad)
    for _ in range(3):
        assert not store.check_now()
        assert store.current() is old
    assert events == [("rejected", old.version)]
    assert str(bad) in store.last_error
    point(volume / "current", release(volume, "fixed", releases[1]))
    assert store.check_now()
    assert events[-1] == ("applied", store.current().version)
    assert store.last_error == ""


def test_a_model_for_another_feature_schema_is_rejected(volume: Path, releases: tuple[Path, Path]) -> None:
    events: Events = []
    store = open_store(volume, events)
    old = store.current()
    point(
        volume / "current",
        release(volume, "other-schema", releases[1], lambda m: m.update(schema_hash="0123456789abcdef")),
    )
    assert not store.check_now()
    assert store.current() is old
    assert events == [("rejected", old.version)]
    assert "feature schema 0123456789abcdef" in store.last_error


def test_a_given_scorer_for_another_schema_is_refused(volume: Path, releases: tuple[Path, Path]) -> None:
    loaded = artifact.load(releases[0])
    foreign = Scorer(dataclasses.replace(loaded, metadata={**loaded.metadata, "schema_hash": "0" * 16}))
    with pytest.raises(SchemaMismatchError):
        ModelStore(volume / "current", check_every_s=1.0, scorer=foreign)
    given = Scorer(loaded)
    assert ModelStore(volume / "current", check_every_s=1.0, scorer=given).current() is given
    assert given.ready


def test_a_bad_artifact_at_start_up_is_fatal(volume: Path) -> None:
    (volume / "releases" / "old" / artifact.ARRAYS).write_bytes(b"not a model")
    with pytest.raises(ArtifactError, match="truncated or not an npz"):
        ModelStore(volume / "current", check_every_s=1.0)
    with pytest.raises(ArtifactError, match="no such artifact folder"):
        ModelStore(volume / "absent", check_every_s=1.0)


def test_a_check_during_a_write_is_judged_once_the_files_are_still(
    volume: Path, releases: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    events: Events = []
    store = open_store(volume, events)
    target = release(volume, "new", releases[1])
    point(volume / "current", target)
    real_load = Scorer.load

    def load_while_written(path: Path, *, warm: bool = True) -> Scorer:
        (target / artifact.METADATA).write_text((target / artifact.METADATA).read_text() + "\n")
        raise ArtifactError("half written", file=path / artifact.METADATA)

    monkeypatch.setattr(Scorer, "load", load_while_written)
    assert not store.check_now()
    assert events == []
    monkeypatch.setattr(Scorer, "load", real_load)
    assert store.check_now()
    assert events == [("applied", store.current().version)]


async def test_run_reloads_in_a_worker_thread_while_the_loop_keeps_ticking(
    volume: Path, releases: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    events: Events = []
    swapped = asyncio.Event()

    def on_reload(outcome: str, version: str) -> None:
        events.append((outcome, version))
        loop.call_soon_threadsafe(swapped.set)

    store = ModelStore(volume / "current", check_every_s=0.02, on_reload=on_reload)
    old = store.current()
    ticks_while_warming = 0
    ticked = threading.Event()
    warmed_on: list[int] = []
    real_warm = Scorer.warm

    def slow_warm(self: Scorer) -> None:
        warmed_on.append(threading.get_ident())
        assert ticked.wait(10.0), "the event loop did not run while the model warmed"
        real_warm(self)

    async def ticker() -> None:
        nonlocal ticks_while_warming
        while True:
            await asyncio.sleep(0.005)
            if warmed_on:
                ticks_while_warming += 1
                if ticks_while_warming == 5:
                    ticked.set()

    monkeypatch.setattr(Scorer, "warm", slow_warm)
    tasks = [asyncio.create_task(store.run()), asyncio.create_task(ticker())]
    try:
        point(volume / "current", release(volume, "new", releases[1]))
        async with asyncio.timeout(20.0):
            await swapped.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert warmed_on
    assert threading.get_ident() not in warmed_on
    assert ticked.is_set()
    assert store.current() is not old
    assert store.current().ready
    assert events == [("applied", store.current().version)]


async def test_run_counts_a_bad_artifact_once_however_often_it_checks(
    volume: Path, releases: tuple[Path, Path]
) -> None:
    events: Events = []
    store = open_store(volume, events, check_every_s=0.01)
    bad = release(volume, "bad", releases[1], lambda m: m.update(forest_sha256="0123456789ab"))
    point(volume / "current", bad)
    task = asyncio.create_task(store.run())
    await asyncio.sleep(0.3)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert events == [("rejected", store.current().version)]
    assert "forest_sha256" in store.last_error


def test_model_reloaded_counts_and_switches_the_model_info() -> None:
    def sample(name: str, labels: dict[str, str]) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    applied = sample("fraudmesh_decision_model_reloads_total", {"outcome": "applied"})
    rejected = sample("fraudmesh_decision_model_reloads_total", {"outcome": "rejected"})
    model_reloaded("applied", "v1")
    model_reloaded("applied", "v2")
    model_reloaded("rejected", "v2")
    assert sample("fraudmesh_decision_model_reloads_total", {"outcome": "applied"}) == applied + 2
    assert sample("fraudmesh_decision_model_reloads_total", {"outcome": "rejected"}) == rejected + 1
    info = {
        tuple(s.labels.values()): s.value
        for metric in REGISTRY.collect()
        if metric.name == "fraudmesh_decision_model_info"
        for s in metric.samples
    }
    assert info == {("v2", SCHEMA_HASH): 1.0}
