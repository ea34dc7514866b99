"""Stable reason codes: the strings a Decision carries to say why, in one documented place.

Switch vendors and operators key dashboards, redress workflows and customer messages on these
strings, so a code is never renamed or reused; a retired code stays listed as retired.
"""

from __future__ import annotations

from typing import Final

REASONS: Final[dict[str, str]] = {
    # Hard policy
    "EMERGENCY_NUMBER": "a call to an emergency service (digits, URI or urn:service:sos); always allowed",
    "EMERGENCY_CALLBACK": "a PSAP calling back (policy psap_callback_numbers); always allowed",
    "ALLOW_LISTED": "the caller is on the tenant's allow-list (registered caller or redress outcome)",
    "DENY_LISTED": "the caller is on a deny list (do-not-originate or confirmed fraud)",
    # Caller-ID consistency and STIR/SHAKEN (origination)
    "SHAKEN_ABSENT": "no PASSporT on a call from a peer expected to sign",
    "SHAKEN_SIGNATURE_INVALID": "the PASSporT signature, chain or claims did not verify",
    "SHAKEN_REPLAY": "the same PASSporT was already presented within its freshness window",
    "SHAKEN_TN_MISMATCH": "the PASSporT signs a different calling or called number than the call presents",
    "SHAKEN_CERT_UNAVAILABLE": "the signer's certificate could not be fetched from its x5u",
    "SHAKEN_UNSUPPORTED": "an Identity header of a kind not verified (compact form, div alone, other ppt)",
    "SHAKEN_ATTESTATION_C": "the originating carrier gave gateway (C) attestation",
    "SHAKEN_ATTESTATION_B": "the originating carrier gave partial (B) attestation",
    "INTL_INGRESS_DOMESTIC_CLI": "a domestic caller ID presented on a call from an international gateway",
    "ONNET_CLI_OFFNET_INGRESS": "a number of the tenant's own subscribers arriving from an off-net trunk",
    "NEIGHBOR_SPOOFING": "the caller ID shares the callee's leading digits",
    "INVALID_CLI": "the caller ID is not a valid or allocated number",
    "RISKY_RANGE": "the caller ID is in a configured risky range (e.g. virtual 170/171)",
    "DNO_LISTED": "the caller ID is on the do-not-originate list (a number that never places calls)",
    "CLI_REGION_MISMATCH": "an on-net fixed-line caller ID from another area than its ingress switch",
    # Reputation
    "NEW_NUMBER": "the number was first seen very recently",
    "VELOCITY_1M_HIGH": "many calls from this number in the last minute",
    "VELOCITY_1H_HIGH": "many calls from this number in the last hour",
    "VELOCITY_24H_HIGH": "many calls from this number in the last 24 hours",
    "DISTINCT_CALLEES_HIGH": "this number calls many different people",
    "LOW_ANSWER_RATIO": "few of this number's calls are answered",
    "SHORT_CALLS": "this number's answered calls are mostly very short",
    "CONCURRENT_CALLS": "this number places many calls at the same time",
    "COMPLAINTS": "people reported calls from this number",
    "HONEYPOT_HIT": "this number called a honeypot",
    "NO_PRIOR_RELATIONSHIP": "neither party has called the other before",
    "CAMPAIGN_LINKED": "the number played a recording of a known campaign",
    # Audio
    "SYNTHETIC_VOICE": "the caller's voice scored as synthetic or cloned",
    "BOT_BEHAVIOUR": "the caller kept talking over the callee (no turn-taking)",
    # Degradation
    "DEGRADED_FEATURES": "reputation features were unavailable in time; scored without them",
    "DEGRADED_ORIGINATION": "origination verification was unavailable in time",
    "MODEL_SCORE": "the model's score alone crossed the threshold",
}


def describe(code: str) -> str:
    """The documented meaning of a reason code (KeyError for an unknown code)."""
    return REASONS[code]
