"""Stable reason codes: the strings a Decision carries to say why, in one documented place.

Switch vendors and operators key dashboards, redress workflows and customer messages on these
strings, so a code is never renamed or reused; a retired code stays listed, in ``RETIRED``. Every
emitter uses a ``Reason`` member (a ``StrEnum``: the member is its wire string), so mypy catches a
typo. To add a code: a member here and its text in ``REASONS`` (a test checks both agree); if a model
feature pushes it, name it in that feature's ``reason`` (``services.common.features``).
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["REASONS", "RETIRED", "Reason"]


class Reason(enum.StrEnum):
    """A reason code; the value is the stable wire string."""

    # Hard policy
    EMERGENCY_NUMBER = "EMERGENCY_NUMBER"
    EMERGENCY_CALLBACK = "EMERGENCY_CALLBACK"
    ALLOW_LISTED = "ALLOW_LISTED"
    DENY_LISTED = "DENY_LISTED"
    # Caller-ID consistency and STIR/SHAKEN (origination)
    SHAKEN_ABSENT = "SHAKEN_ABSENT"
    SHAKEN_SIGNATURE_INVALID = "SHAKEN_SIGNATURE_INVALID"
    SHAKEN_REPLAY = "SHAKEN_REPLAY"
    SHAKEN_TN_MISMATCH = "SHAKEN_TN_MISMATCH"
    SHAKEN_CERT_UNAVAILABLE = "SHAKEN_CERT_UNAVAILABLE"
    SHAKEN_UNSUPPORTED = "SHAKEN_UNSUPPORTED"
    SHAKEN_ATTESTATION_C = "SHAKEN_ATTESTATION_C"
    SHAKEN_ATTESTATION_B = "SHAKEN_ATTESTATION_B"
    INTL_INGRESS_DOMESTIC_CLI = "INTL_INGRESS_DOMESTIC_CLI"
    ONNET_CLI_OFFNET_INGRESS = "ONNET_CLI_OFFNET_INGRESS"
    NEIGHBOR_SPOOFING = "NEIGHBOR_SPOOFING"
    INVALID_CLI = "INVALID_CLI"
    RISKY_RANGE = "RISKY_RANGE"
    DNO_LISTED = "DNO_LISTED"
    CLI_REGION_MISMATCH = "CLI_REGION_MISMATCH"
    ONNET_NUMBER_NOT_ROAMING = "ONNET_NUMBER_NOT_ROAMING"
    CALLER_BUSY_ELSEWHERE = "CALLER_BUSY_ELSEWHERE"
    IMPERSONATES_CONTACT = "IMPERSONATES_CONTACT"
    ROAMING_VERIFIED = "ROAMING_VERIFIED"
    NO_ROAMING_INDICATION = "NO_ROAMING_INDICATION"
    # Reputation
    NEW_NUMBER = "NEW_NUMBER"
    VELOCITY_1M_HIGH = "VELOCITY_1M_HIGH"
    VELOCITY_1H_HIGH = "VELOCITY_1H_HIGH"
    VELOCITY_24H_HIGH = "VELOCITY_24H_HIGH"
    DISTINCT_CALLEES_HIGH = "DISTINCT_CALLEES_HIGH"
    LOW_ANSWER_RATIO = "LOW_ANSWER_RATIO"
    SHORT_CALLS = "SHORT_CALLS"
    CONCURRENT_CALLS = "CONCURRENT_CALLS"
    COMPLAINTS = "COMPLAINTS"
    HONEYPOT_HIT = "HONEYPOT_HIT"
    NO_PRIOR_RELATIONSHIP = "NO_PRIOR_RELATIONSHIP"
    CAMPAIGN_LINKED = "CAMPAIGN_LINKED"
    # Audio
    SYNTHETIC_VOICE = "SYNTHETIC_VOICE"
    BOT_BEHAVIOUR = "BOT_BEHAVIOUR"
    # Degradation
    DEGRADED_FEATURES = "DEGRADED_FEATURES"
    DEGRADED_ORIGINATION = "DEGRADED_ORIGINATION"
    MODEL_SCORE = "MODEL_SCORE"
    # Evidence class of a CHALLENGE or BLOCK (the policy's `evidence`)
    EVIDENCE_PROOF = "EVIDENCE_PROOF"
    EVIDENCE_SCORE = "EVIDENCE_SCORE"


REASONS: Final[dict[Reason, str]] = {
    # Hard policy
    Reason.EMERGENCY_NUMBER: "a call to an emergency service (digits, URI, urn:service:sos); always allowed",
    Reason.EMERGENCY_CALLBACK: "a PSAP calling back (policy psap_callback_numbers); always allowed",
    Reason.ALLOW_LISTED: "the caller is on the tenant's allow-list (registered caller or redress outcome)",
    Reason.DENY_LISTED: "the caller is on a deny list (do-not-originate or confirmed fraud)",
    # Caller-ID consistency and STIR/SHAKEN (origination)
    Reason.SHAKEN_ABSENT: "no PASSporT on a call from a peer expected to sign",
    Reason.SHAKEN_SIGNATURE_INVALID: "the PASSporT signature, chain or claims did not verify",
    Reason.SHAKEN_REPLAY: "the same PASSporT was already presented within its freshness window",
    Reason.SHAKEN_TN_MISMATCH: "the PASSporT signs another calling or called number than the call presents",
    Reason.SHAKEN_CERT_UNAVAILABLE: "the signer's certificate could not be fetched from its x5u",
    Reason.SHAKEN_UNSUPPORTED: "an Identity header of a kind not verified (compact form, div alone, ppt)",
    Reason.SHAKEN_ATTESTATION_C: "the originating carrier gave gateway (C) attestation",
    Reason.SHAKEN_ATTESTATION_B: "the originating carrier gave partial (B) attestation",
    Reason.INTL_INGRESS_DOMESTIC_CLI: "a domestic caller ID on a call from an international gateway",
    Reason.ONNET_CLI_OFFNET_INGRESS: "a number of the tenant's own subscribers from an off-net trunk",
    Reason.NEIGHBOR_SPOOFING: "the caller ID shares the callee's leading digits",
    Reason.INVALID_CLI: "the caller ID is not a valid or allocated number",
    Reason.RISKY_RANGE: "the caller ID is in a configured risky range (e.g. virtual 170/171)",
    Reason.DNO_LISTED: "the caller ID is on the do-not-originate list (a number that never places calls)",
    Reason.CLI_REGION_MISMATCH: "an on-net fixed-line caller ID from another area than its ingress switch",
    Reason.ONNET_NUMBER_NOT_ROAMING: "proof: a number from off-net or abroad while its subscriber is at home",
    Reason.CALLER_BUSY_ELSEWHERE: "proof: a number from off-net or abroad while its subscriber is in a call",
    Reason.IMPERSONATES_CONTACT: "the spoofed number is one the callee has called or been called by",
    Reason.ROAMING_VERIFIED: "a domestic number over the international gateway whose subscriber is roaming",
    Reason.NO_ROAMING_INDICATION: "a domestic mobile from the international gateway, not known to roam",
    # Reputation
    Reason.NEW_NUMBER: "the number was first seen very recently",
    Reason.VELOCITY_1M_HIGH: "many calls from this number in the last minute",
    Reason.VELOCITY_1H_HIGH: "many calls from this number in the last hour",
    Reason.VELOCITY_24H_HIGH: "many calls from this number in the last 24 hours",
    Reason.DISTINCT_CALLEES_HIGH: "this number calls many different people",
    Reason.LOW_ANSWER_RATIO: "few of this number's calls are answered",
    Reason.SHORT_CALLS: "this number's answered calls are mostly very short",
    Reason.CONCURRENT_CALLS: "this number places many calls at the same time",
    Reason.COMPLAINTS: "people reported calls from this number",
    Reason.HONEYPOT_HIT: "this number called a honeypot",
    Reason.NO_PRIOR_RELATIONSHIP: "neither party has called the other before",
    Reason.CAMPAIGN_LINKED: "the number played a recording of a known campaign",
    # Audio
    Reason.SYNTHETIC_VOICE: "the caller's voice scored as synthetic or cloned",
    Reason.BOT_BEHAVIOUR: "the caller kept talking over the callee (no turn-taking)",
    # Degradation
    Reason.DEGRADED_FEATURES: "RETIRED, never emitted: Decision.degraded_reasons names the missing part",
    Reason.DEGRADED_ORIGINATION: "origination's SHAKEN check raised; decided on its caller-ID findings",
    Reason.MODEL_SCORE: "the model's score alone crossed the threshold",
    # Evidence class
    Reason.EVIDENCE_PROOF: "decided on proof (a list, or a signature failure with a caller-ID finding)",
    Reason.EVIDENCE_SCORE: "decided on the statistical score, without proof",
}

RETIRED: Final[frozenset[Reason]] = frozenset({Reason.DEGRADED_FEATURES})
"""Codes no emitter produces any more; kept so they are never reused with another meaning."""
