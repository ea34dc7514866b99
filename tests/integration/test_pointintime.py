"""Training rows hold exactly what production knew at each call: no leakage from the future."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from fraudmesh.v1 import dataset_pb2, verdicts_pb2
from loadtest.scenario import load
from loadtest.simulate import simulate, write_dataset
from services.common import features
from services.common.context import ContextRules
from services.reputation.settings import ReputationSettings
from training.dataset import CALLS, EVENTS, read_records
from training.pointintime import ScratchDatabaseError, build, build_sync

from .conftest import Stack

pytestmark = pytest.mark.integration

K = dataset_pb2.ActorKind
ABSENT, VERIFIED, FAILED = (
    float(verdicts_pb2.SHAKEN_STATUS_ABSENT),
    float(verdicts_pb2.SHAKEN_STATUS_VERIFIED),
    float(verdicts_pb2.SHAKEN_STATUS_FAILED),
)
RULES = ContextRules("CN", ("+86138", "+86139", "+86150", "+86188"), ("+86170", "+86171"), 8.0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pit")
    write_dataset(simulate(load("ci")), folder)
    return folder


def scratch_url(stack: Stack, db: int) -> str:
    url = urllib.parse.urlparse(stack.settings.redis_url)
    return url._replace(path=f"/{db}").geturl()


def test_rows_see_only_the_past(stack: Stack, dataset: Path) -> None:
    settings = ReputationSettings(pseudonym_key=stack.settings.pseudonym_key, tenant_regions=("demo-cn=CN",))
    rows = build_sync(dataset, scratch_url(stack, 14), settings, RULES)
    truth = [r.call_truth for r in read_records(dataset / CALLS)]
    assert rows.X.shape == (len(truth), features.WIDTH)
    assert rows.y.tolist() == [c.unwanted for c in truth]
    assert np.all(np.diff(rows.t_ms) >= 0)
    setups = rows.X[:, features.INDEX["setups_total"]]
    cdrs = rows.X[:, features.INDEX["cdrs_total"]]
    complaints = rows.X[:, features.INDEX["complaints_30d"]]
    presented = {c.call_id: c.presented_number for c in truth}
    earlier_setups: dict[str, int] = defaultdict(int)
    earlier_cdrs: dict[str, int] = defaultdict(int)
    earlier_complaints: dict[str, int] = defaultdict(int)
    row = 0
    for record in read_records(dataset / EVENTS):
        kind = record.WhichOneof("record")
        if kind == "cdr":
            earlier_cdrs[presented[record.cdr.call_id]] += 1
        elif kind == "complaint":
            earlier_complaints[presented[record.complaint.call_id]] += 1
        elif kind == "setup":
            number = presented[record.setup.setup.call_id]
            assert setups[row] == earlier_setups[number], (row, number)
            assert cdrs[row] == earlier_cdrs[number], (row, number)
            assert complaints[row] == earlier_complaints[number], (row, number)
            earlier_setups[number] += 1
            row += 1
    assert row == len(truth)
    assert sum(earlier_complaints.values()) > 0
    assert rows.manifest["schema_hash"] == features.SCHEMA_HASH


def test_rows_do_not_depend_on_batch_size_or_workers(stack: Stack, dataset: Path) -> None:
    settings = ReputationSettings(pseudonym_key=stack.settings.pseudonym_key, tenant_regions=("demo-cn=CN",))
    url = scratch_url(stack, 14)
    one = asyncio.run(build(dataset, url, settings, RULES, batch_setups=1))
    many = asyncio.run(build(dataset, url, settings, RULES, batch_setups=700, workers=2))
    assert np.array_equal(one.X, many.X, equal_nan=True)
    assert np.array_equal(one.y, many.y)
    assert np.array_equal(one.t_ms, many.t_ms)


def test_origination_features_come_from_the_verifier(stack: Stack, dataset: Path) -> None:
    settings = ReputationSettings(pseudonym_key=stack.settings.pseudonym_key, tenant_regions=("demo-cn=CN",))
    rows = build_sync(dataset, scratch_url(stack, 14), settings, RULES)
    truth = [r.call_truth for r in read_records(dataset / CALLS)]
    status = rows.X[:, features.INDEX["shaken_status"]]
    attestation = rows.X[:, features.INDEX["attestation"]]
    findings = rows.X[:, features.INDEX["cli_findings"]]
    assert set(np.unique(status)) == {ABSENT, VERIFIED, FAILED}  # stale iat: a signer's clock is off
    assert np.all(attestation[status != VERIFIED] == 0)
    assert set(np.unique(attestation[status == VERIFIED])) == {1.0, 2.0, 3.0}
    kinds = np.array([c.actor_kind for c in truth])
    assert np.all(findings[kinds == K.ACTOR_KIND_INTL_DOMESTIC_SPOOFER] >= 1)
    assert (
        np.mean(findings[kinds == K.ACTOR_KIND_NEIGHBOR_SPOOFER] >= 1) > 0.7
    )  # fixed lines share fewer digits
    assert np.mean(findings[kinds == K.ACTOR_KIND_SUBSCRIBER] == 0) > 0.8


def test_refuses_to_wipe_database_zero(stack: Stack, dataset: Path) -> None:
    settings = ReputationSettings(pseudonym_key=stack.settings.pseudonym_key)
    with pytest.raises(ScratchDatabaseError):
        build_sync(dataset, scratch_url(stack, 0), settings, RULES)
