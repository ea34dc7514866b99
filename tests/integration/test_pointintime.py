"""Training rows hold exactly what production knew at each call: no leakage from the future."""

from __future__ import annotations

import urllib.parse
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from loadtest.dataset import CALLS, read_records
from loadtest.scenario import load
from loadtest.simulate import simulate, write_dataset
from services.common import features
from services.common.context import ContextRules
from services.reputation.settings import ReputationSettings
from services.scoring.pointintime import ScratchDatabaseError, build_sync

from .conftest import Stack

pytestmark = pytest.mark.integration

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
    earlier: dict[str, int] = defaultdict(int)
    for i, call in enumerate(truth):
        assert setups[i] == earlier[call.presented_number], (i, call.presented_number)
        earlier[call.presented_number] += 1
    assert np.isnan(rows.X[:, features.INDEX["cli_findings"]]).all()
    assert set(np.unique(rows.X[:, features.INDEX["shaken_status"]])) <= {1.0, 2.0}
    assert rows.manifest["schema_hash"] == features.SCHEMA_HASH


def test_refuses_to_wipe_database_zero(stack: Stack, dataset: Path) -> None:
    settings = ReputationSettings(pseudonym_key=stack.settings.pseudonym_key)
    with pytest.raises(ScratchDatabaseError):
        build_sync(dataset, scratch_url(stack, 0), settings, RULES)
