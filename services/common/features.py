"""The feature schema: the one ordered list of model inputs, shared by every producer and consumer.

Adding a feature: follow CONTRIBUTING.md, "A model feature" (it lists every file and check).

The decision service builds vectors in this order, the trainer builds training rows in this order,
the scoring core checks its artifact against ``SCHEMA_HASH``. A feature is an entry here plus the
code that fills it for its source: ``services.common.context`` (context, and origination at decision
time; the trainer fills origination in ``training.pointintime``), ``services.common.featurestore``
for reputation and audio, whose state a fold in ``services.reputation.numbers`` keeps. Adding,
removing or reordering an entry, or changing its source, monotone, reason or categorical flag,
changes ``SCHEMA_HASH``: the shipped model is then retrained (``make model-default``) before the
tests pass.

Missing-value semantics: every feature is a float32; NaN means "unknown" — the source did not
answer in time, or the feature is undefined (a ratio with a zero denominator). A number that
reputation has never seen is not unknown: its counts are 0 and its age is 0. The tree model routes
NaN down the branch the trainer learned for missing values.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from services.common.reasons import Reason


class Source(enum.Enum):
    """Where a feature's value comes from at decision time."""

    CONTEXT = "context"  # the CallSetup itself and the number's metadata
    ORIGINATION = "origination"  # the origination service's verdict
    REPUTATION = "reputation"  # the one-round-trip Redis read
    AUDIO = "audio"  # audio verdicts folded in by reputation


@dataclass(frozen=True)
class Feature:
    """One model input: its name, source, meaning, monotone direction and reason code."""

    name: str
    source: Source
    description: str
    monotone: int = 0  # +1: more means riskier; -1: more means safer; 0: no constraint
    reason: Reason | None = None  # reason code when this feature pushes the score up
    categorical: bool = False


CTX, ORIG, REP, AUD = Source.CONTEXT, Source.ORIGINATION, Source.REPUTATION, Source.AUDIO

FEATURES: Final[tuple[Feature, ...]] = (
    Feature("ingress_kind", CTX, "IngressKind of the trunk the call arrived on", categorical=True),
    Feature("hour_of_day", CTX, "local hour of the call at the tenant (0-23)"),
    Feature(
        "caller_number_kind",
        CTX,
        "index of the caller's NumberKind (mobile, fixed line, ...)",
        categorical=True,
    ),
    Feature("caller_valid", CTX, "1 when the caller ID is a valid allocated number", -1, Reason.INVALID_CLI),
    Feature(
        "caller_risky_range",
        CTX,
        "1 when the caller ID is in a configured risky range",
        1,
        Reason.RISKY_RANGE,
    ),
    Feature("caller_home_range", CTX, "1 when the caller ID is in the tenant's own subscriber ranges"),
    Feature("caller_domestic", CTX, "1 when the caller ID belongs to the tenant's country"),
    Feature(
        "callee_prefix_shared",
        CTX,
        "leading national digits the caller ID shares with the callee",
        0,
        Reason.NEIGHBOR_SPOOFING,
    ),
    Feature("shaken_status", ORIG, "ShakenStatus of the call's PASSporT", categorical=True),
    Feature("attestation", ORIG, "Attestation level (0 none, 1 A, 2 B, 3 C)", 1, Reason.SHAKEN_ATTESTATION_C),
    Feature(
        "cli_findings", ORIG, "number of caller-ID consistency findings", 1, Reason.INTL_INGRESS_DOMESTIC_CLI
    ),
    Feature(
        "number_age_s",
        REP,
        "seconds since reputation first saw the number (0 when never)",
        -1,
        Reason.NEW_NUMBER,
    ),
    Feature("setups_total", REP, "call setups seen from the number while its state lives"),
    Feature("calls_1m", REP, "calls from the number in the last minute", 1, Reason.VELOCITY_1M_HIGH),
    Feature("calls_1h", REP, "calls from the number in the last hour", 1, Reason.VELOCITY_1H_HIGH),
    Feature("calls_24h", REP, "calls from the number in the last 24 hours", 1, Reason.VELOCITY_24H_HIGH),
    Feature(
        "distinct_callees_1h",
        REP,
        "distinct callees in the last hour (HyperLogLog)",
        1,
        Reason.DISTINCT_CALLEES_HIGH,
    ),
    Feature(
        "distinct_callees_24h",
        REP,
        "distinct callees in the last 24 hours (HyperLogLog)",
        1,
        Reason.DISTINCT_CALLEES_HIGH,
    ),
    Feature(
        "distinct_ratio_24h",
        REP,
        "distinct callees / calls over 24 hours (NaN with no calls)",
        0,
        Reason.DISTINCT_CALLEES_HIGH,
    ),
    Feature("cdrs_total", REP, "CDRs seen for the number's calls"),
    Feature("answer_ratio", REP, "answered / CDRs (NaN with no CDRs)", -1, Reason.LOW_ANSWER_RATIO),
    Feature(
        "short_call_ratio",
        REP,
        "answered calls under 10 s / answered (NaN with none answered)",
        1,
        Reason.SHORT_CALLS,
    ),
    Feature(
        "mean_answered_s",
        REP,
        "mean answered duration in seconds (NaN with none answered)",
        -1,
        Reason.SHORT_CALLS,
    ),
    Feature(
        "max_concurrent", REP, "most calls from the number in progress at once", 1, Reason.CONCURRENT_CALLS
    ),
    Feature(
        "rapid_sequential_ratio",
        REP,
        "share of calls set up within 3 s of the previous call's end",
        1,
        Reason.CONCURRENT_CALLS,
    ),
    Feature("complaints_7d", REP, "complaints about the number in 7 days", 1, Reason.COMPLAINTS),
    Feature("complaints_30d", REP, "complaints about the number in 30 days", 1, Reason.COMPLAINTS),
    Feature(
        "fraud_complaints_30d", REP, "fraud and impersonation complaints in 30 days", 1, Reason.COMPLAINTS
    ),
    Feature("honeypot_hits_30d", REP, "calls to honeypots in 30 days", 1, Reason.HONEYPOT_HIT),
    Feature(
        "callee_called_caller",
        REP,
        "1 when the callee has called the caller before",
        -1,
        Reason.NO_PRIOR_RELATIONSHIP,
    ),
    Feature(
        "caller_called_callee",
        REP,
        "1 when the caller has called the callee before",
        -1,
        Reason.NO_PRIOR_RELATIONSHIP,
    ),
    Feature("campaigns", REP, "campaign ids linked to the number", 1, Reason.CAMPAIGN_LINKED),
    Feature("campaign_numbers", REP, "numbers in the largest linked campaign", 1, Reason.CAMPAIGN_LINKED),
    Feature(
        "synthetic_voice",
        AUD,
        "highest synthetic-voice score of the number's audio (NaN if none)",
        1,
        Reason.SYNTHETIC_VOICE,
    ),
    Feature(
        "bot_behaviour",
        AUD,
        "highest bot-behaviour score of the number's audio (NaN if none)",
        1,
        Reason.BOT_BEHAVIOUR,
    ),
)

NAMES: Final[tuple[str, ...]] = tuple(f.name for f in FEATURES)
INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(NAMES)}
WIDTH: Final[int] = len(FEATURES)


def _schema_hash() -> str:
    canonical = [[f.name, f.source.value, f.monotone, f.reason or "", f.categorical] for f in FEATURES]
    return hashlib.sha256(json.dumps(canonical, separators=(",", ":")).encode()).hexdigest()[:16]


SCHEMA_HASH: Final[str] = _schema_hash()


def empty_vector() -> npt.NDArray[np.float32]:
    """A vector with every feature unknown (NaN), to be filled by its sources."""
    return np.full(WIDTH, np.nan, dtype=np.float32)


def by_source(source: Source) -> tuple[Feature, ...]:
    """The features one source fills."""
    return tuple(f for f in FEATURES if f.source is source)
