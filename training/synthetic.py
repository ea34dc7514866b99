"""Synthetic, schema-shaped training rows: a PLACEHOLDER until features come from the simulator.

Each row is a call from one actor kind (``fraudmesh.v1.ActorKind``) with feature values drawn from
that kind's rough profile — robocallers call fast, widely and briefly; spoofers show signalling
tells; couriers and reminder services look busy but are wanted — and with the schema's missing
values (audio scores mostly unknown, ratios undefined without calls, a share of rows whose
reputation read timed out). It exists so a fresh checkout can train and serve a model in seconds
and so tests and benchmarks have realistic NaN patterns; its figures say nothing about real traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from fraudmesh.v1 import dataset_pb2
from services.common.features import INDEX, WIDTH, Source, by_source
from training.dataset import UNWANTED_KINDS

DAY_MS: Final[int] = 86_400_000
START_MS: Final[int] = 1_767_225_600_000

K = dataset_pb2.ActorKind
MIX: Final[dict[int, float]] = {
    K.ACTOR_KIND_SUBSCRIBER: 0.80,
    K.ACTOR_KIND_COURIER: 0.05,
    K.ACTOR_KIND_CALL_CENTRE: 0.04,
    K.ACTOR_KIND_REMINDER: 0.02,
    K.ACTOR_KIND_BANK_ALERT: 0.01,
    K.ACTOR_KIND_EMERGENCY: 0.002,
    K.ACTOR_KIND_ROBOCALL: 0.04,
    K.ACTOR_KIND_NEIGHBOR_SPOOFER: 0.015,
    K.ACTOR_KIND_INTL_DOMESTIC_SPOOFER: 0.01,
    K.ACTOR_KIND_ONNET_SPOOFER: 0.005,
    K.ACTOR_KIND_INVALID_NUMBER_SPOOFER: 0.005,
    K.ACTOR_KIND_AI_IMPERSONATOR: 0.003,
}
REPUTATION_TIMEOUT: Final[float] = 0.02


@dataclass(frozen=True)
class Rows:
    """Feature rows with labels, setup times and actor kinds, in time order."""

    X: npt.NDArray[np.float32]
    y: npt.NDArray[np.bool_]
    t_ms: npt.NDArray[np.int64]
    kinds: npt.NDArray[np.int32]


def generate(n: int, *, seed: int = 7, days: int = 14) -> Rows:
    """``n`` synthetic calls spread over ``days`` days, their labels and actor kinds (placeholder data)."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(np.array(list(MIX), dtype=np.int32), size=n, p=np.array(list(MIX.values())))
    t_ms = np.sort(START_MS + rng.integers(0, days * DAY_MS, size=n)).astype(np.int64)
    cols = {name: np.zeros(n) for name in INDEX}
    _base(cols, rng, n, t_ms)
    for kind in MIX:
        mask = kinds == kind
        if mask.any():
            _profile(kind, cols, rng, mask)
    _derive(cols)
    matrix = np.empty((n, WIDTH), dtype=np.float32)
    for name, i in INDEX.items():
        matrix[:, i] = cols[name]
    timed_out = rng.random(n) < REPUTATION_TIMEOUT
    for feature in by_source(Source.REPUTATION):
        matrix[timed_out, INDEX[feature.name]] = np.nan
    y = np.isin(kinds, list(UNWANTED_KINDS))
    return Rows(X=matrix, y=y, t_ms=t_ms, kinds=kinds)


def _base(
    cols: dict[str, npt.NDArray[np.float64]], rng: np.random.Generator, n: int, t_ms: npt.NDArray[np.int64]
) -> None:
    """An ordinary subscriber's call: every kind starts here and its profile overrides."""
    cols["ingress_kind"] = rng.choice([1.0, 2.0, 3.0], size=n, p=[0.85, 0.12, 0.03])
    cols["hour_of_day"] = ((t_ms // 3_600_000) % 24).astype(np.float64)
    cols["caller_number_kind"] = rng.choice([1.0, 2.0], size=n, p=[0.8, 0.2])
    cols["caller_valid"] = (rng.random(n) > 0.001).astype(np.float64)
    cols["caller_risky_range"] = (rng.random(n) < 0.005).astype(np.float64)
    cols["caller_home_range"] = (rng.random(n) < 0.7).astype(np.float64)
    cols["caller_domestic"] = (rng.random(n) < 0.95).astype(np.float64)
    cols["callee_prefix_shared"] = np.minimum(rng.geometric(0.6, size=n) - 1, 8).astype(np.float64)
    cols["shaken_status"] = rng.choice([1.0, 2.0, 3.0], size=n, p=[0.9, 0.08, 0.02])
    cols["attestation"] = rng.choice([1.0, 2.0, 3.0], size=n, p=[0.85, 0.1, 0.05])
    cols["cli_findings"] = (rng.random(n) < 0.01).astype(np.float64)
    cols["number_age_s"] = rng.lognormal(16.0, 1.0, size=n)
    cols["calls_1m"] = rng.poisson(0.05, size=n).astype(np.float64)
    cols["calls_1h"] = rng.poisson(1.0, size=n).astype(np.float64)
    cols["calls_24h"] = cols["calls_1h"] + rng.poisson(5.0, size=n)
    cols["distinct_callees_1h"] = np.minimum(cols["calls_1h"], rng.poisson(1.0, size=n))
    cols["distinct_callees_24h"] = np.minimum(cols["calls_24h"], rng.poisson(3.0, size=n))
    cols["cdrs_total"] = rng.poisson(40.0, size=n).astype(np.float64)
    cols["answer_ratio"] = rng.beta(8, 2, size=n)
    cols["short_call_ratio"] = rng.beta(2, 8, size=n)
    cols["mean_answered_s"] = rng.lognormal(4.5, 0.7, size=n)
    cols["max_concurrent"] = np.ones(n)
    cols["rapid_sequential_ratio"] = rng.beta(1, 30, size=n)
    cols["complaints_7d"] = (rng.random(n) < 0.002).astype(np.float64)
    cols["callee_called_caller"] = (rng.random(n) < 0.7).astype(np.float64)
    cols["caller_called_callee"] = (rng.random(n) < 0.8).astype(np.float64)
    cols["synthetic_voice"] = np.where(rng.random(n) < 0.05, rng.beta(1, 20, size=n), np.nan)
    cols["bot_behaviour"] = np.where(rng.random(n) < 0.05, rng.beta(1, 20, size=n), np.nan)


def _profile(
    kind: int, cols: dict[str, npt.NDArray[np.float64]], rng: np.random.Generator, m: npt.NDArray[np.bool_]
) -> None:
    """Override the rows of one actor kind with its tells."""
    k = int(m.sum())

    def put(name: str, values: npt.ArrayLike) -> None:
        cols[name][m] = values

    if kind in (
        K.ACTOR_KIND_COURIER,
        K.ACTOR_KIND_CALL_CENTRE,
        K.ACTOR_KIND_REMINDER,
        K.ACTOR_KIND_BANK_ALERT,
    ):
        busy = 15.0 if kind == K.ACTOR_KIND_COURIER else 60.0 if kind == K.ACTOR_KIND_CALL_CENTRE else 120.0
        put("calls_1h", rng.poisson(busy, size=k))
        put("distinct_callees_1h", rng.poisson(busy * 0.9, size=k))
        put("max_concurrent", rng.poisson(busy / 10, size=k) + 1)
        put("answer_ratio", rng.beta(5, 3, size=k))
        put("short_call_ratio", rng.beta(4, 4, size=k))
        put("mean_answered_s", rng.lognormal(3.5, 0.6, size=k))
        put("callee_called_caller", (rng.random(k) < 0.2).astype(np.float64))
        put("caller_called_callee", (rng.random(k) < 0.4).astype(np.float64))
        put("complaints_30d", rng.poisson(0.3, size=k))
        if kind in (K.ACTOR_KIND_REMINDER, K.ACTOR_KIND_BANK_ALERT):
            put("bot_behaviour", np.where(rng.random(k) < 0.3, rng.beta(6, 3, size=k), np.nan))
            put("attestation", np.ones(k))
    elif kind == K.ACTOR_KIND_ROBOCALL:
        put("calls_1m", rng.poisson(4.0, size=k))
        put("calls_1h", rng.poisson(150.0, size=k))
        put("distinct_callees_1h", rng.poisson(140.0, size=k))
        put("number_age_s", rng.lognormal(11.0, 1.5, size=k))
        put("answer_ratio", rng.beta(2, 6, size=k))
        put("short_call_ratio", rng.beta(7, 2, size=k))
        put("mean_answered_s", rng.lognormal(2.3, 0.6, size=k))
        put("max_concurrent", rng.poisson(8.0, size=k) + 1)
        put("rapid_sequential_ratio", rng.beta(6, 3, size=k))
        put("complaints_7d", rng.poisson(1.5, size=k))
        put("fraud_complaints_30d", rng.poisson(0.8, size=k))
        put("honeypot_hits_30d", rng.poisson(0.5, size=k))
        put("campaigns", rng.poisson(1.2, size=k))
        put("campaign_numbers", rng.poisson(40.0, size=k))
        put("callee_called_caller", np.zeros(k))
        put("caller_called_callee", np.zeros(k))
        put("attestation", rng.choice([1.0, 2.0, 3.0], size=k, p=[0.3, 0.3, 0.4]))
        put("caller_risky_range", (rng.random(k) < 0.4).astype(np.float64))
        put("bot_behaviour", np.where(rng.random(k) < 0.3, rng.beta(6, 2, size=k), np.nan))
        put("synthetic_voice", np.where(rng.random(k) < 0.3, rng.beta(5, 3, size=k), np.nan))
    elif kind == K.ACTOR_KIND_NEIGHBOR_SPOOFER:
        put("callee_prefix_shared", rng.integers(5, 9, size=k))
        put("attestation", rng.choice([2.0, 3.0], size=k, p=[0.3, 0.7]))
        put("number_age_s", np.where(rng.random(k) < 0.7, 0.0, rng.lognormal(14.0, 2.0, size=k)))
        put("callee_called_caller", np.zeros(k))
        put("caller_called_callee", np.zeros(k))
    elif kind == K.ACTOR_KIND_INTL_DOMESTIC_SPOOFER:
        put("ingress_kind", np.full(k, 3.0))
        put("caller_domestic", np.ones(k))
        put("cli_findings", rng.integers(1, 3, size=k))
        put("attestation", rng.choice([0.0, 3.0], size=k))
        put("shaken_status", rng.choice([0.0, 3.0], size=k))
    elif kind == K.ACTOR_KIND_ONNET_SPOOFER:
        put("ingress_kind", np.full(k, 2.0))
        put("caller_home_range", np.ones(k))
        put("cli_findings", (rng.random(k) < 0.8).astype(np.float64))
        put("attestation", rng.choice([2.0, 3.0], size=k))
    elif kind == K.ACTOR_KIND_INVALID_NUMBER_SPOOFER:
        put("caller_valid", np.zeros(k))
        put("number_age_s", np.zeros(k))
        put("attestation", rng.choice([0.0, 3.0], size=k))
    elif kind == K.ACTOR_KIND_AI_IMPERSONATOR:
        put("callee_called_caller", np.ones(k))
        put("ingress_kind", rng.choice([2.0, 3.0], size=k))
        put("attestation", rng.choice([0.0, 3.0], size=k))
        put("cli_findings", (rng.random(k) < 0.5).astype(np.float64))
        put("synthetic_voice", np.where(rng.random(k) < 0.6, rng.beta(8, 2, size=k), np.nan))


def _derive(cols: dict[str, npt.NDArray[np.float64]]) -> None:
    """Fill the features that follow from others, with NaN where they are undefined."""
    cols["calls_24h"] = np.maximum(cols["calls_24h"], cols["calls_1h"])
    cols["distinct_callees_1h"] = np.minimum(cols["distinct_callees_1h"], cols["calls_1h"])
    cols["distinct_callees_24h"] = np.clip(
        cols["distinct_callees_24h"], cols["distinct_callees_1h"], cols["calls_24h"]
    )
    calls = cols["calls_24h"]
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["distinct_ratio_24h"] = np.where(calls > 0, cols["distinct_callees_24h"] / calls, np.nan)
    cols["setups_total"] = calls + cols["cdrs_total"]
    no_cdrs = cols["cdrs_total"] == 0
    cols["answer_ratio"][no_cdrs] = np.nan
    cols["short_call_ratio"][no_cdrs] = np.nan
    cols["mean_answered_s"][no_cdrs] = np.nan
    cols["complaints_30d"] = np.maximum(cols["complaints_30d"], cols["complaints_7d"])
    cols["fraud_complaints_30d"] = np.minimum(cols["fraud_complaints_30d"], cols["complaints_30d"])
