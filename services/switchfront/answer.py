"""What the switch is told: a decision turned into a SIP answer, the same for SIP and HTTP/JSON.

* ALLOW → ``302 Moved Temporarily`` with the original Request-URI (or the configured route) as
  Contact, and the caller's identity back in ``P-Asserted-Identity`` with a 3GPP TS 24.229
  ``verstat`` parameter (``TN-Validation-Passed`` / ``-Failed`` / ``No-TN-Validation``).
* LABEL → the same 302 with the tenant's label as the identity's display name, and optionally in a
  header the operator names; an ALLOW that carries a label (a tenant's "International call" for a
  domestic number from the international gateway) is shown the same way.
* CHALLENGE → 302 to the configured screening/IVR URI (without one: the policy's challenge
  response, 480 by default).
* BLOCK → the policy's block response: ``603 Network Blocked`` with the RFC 3326 Reason header
  (ATIS-1000099 "603+"), or ``608 Rejected`` (RFC 8688); either carries the redress contact in a
  Call-Info header (``purpose=jwscard`` for 608, as RFC 8688 names it; ``purpose=info`` for 603).
* Emergency calls and every failure (timeout, decision unavailable, internal error) → the ALLOW
  answer; ``Answer.cause`` says which, for the metrics.

Every answer also carries ``X-Fraudmesh-Decision`` (action, score, reason codes, degraded flag):
no number, nothing personal.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final

from fraudmesh.v1 import common_pb2, verdicts_pb2

__all__ = ["Answer", "AnswerConfig", "CallView", "Cause", "answer_for", "fail_open"]

ACTION_NAMES: Final = {
    common_pb2.ACTION_ALLOW: "ALLOW",
    common_pb2.ACTION_LABEL: "LABEL",
    common_pb2.ACTION_CHALLENGE: "CHALLENGE",
    common_pb2.ACTION_BLOCK: "BLOCK",
}
VERSTAT: Final = {
    verdicts_pb2.SHAKEN_STATUS_VERIFIED: "TN-Validation-Passed",
    verdicts_pb2.SHAKEN_STATUS_FAILED: "TN-Validation-Failed",
}
NO_VALIDATION: Final = "No-TN-Validation"
DECISION_HEADER: Final = "X-Fraudmesh-Decision"
_VERSTAT_PARAM: Final = re.compile(r";verstat=[^;?>]*", re.IGNORECASE)


class Cause(enum.StrEnum):
    """Why an answer is what it is (a metric label)."""

    DECIDED = "decided"
    EMERGENCY = "emergency"
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class AnswerConfig:
    """The operator's choices for answers (services.switchfront.settings)."""

    allow_contact: str = ""  # empty: the request's own Request-URI
    challenge_uri: str = ""  # empty: the policy's challenge response
    label_header: str = ""  # e.g. "X-Call-Label"; empty: the display name only


@dataclass(frozen=True, slots=True)
class CallView:
    """The parts of the call an answer refers to: where it was going and who it claims to be."""

    request_uri: str
    identity_uri: str  # P-Asserted-Identity's URI, else From's
    identity_display: str


@dataclass(frozen=True, slots=True)
class Answer:
    """A SIP status, phrase and headers, with the action and why (for metrics and JSON)."""

    status: int
    phrase: str
    headers: tuple[tuple[str, str], ...]
    action: str
    cause: Cause

    @property
    def contact(self) -> str:
        """The Contact a 3xx routes to ('' otherwise)."""
        return next((value[1:-1] for name, value in self.headers if name == "Contact"), "")


def answer_for(
    decision: verdicts_pb2.Decision,
    shaken: int,
    call: CallView,
    config: AnswerConfig,
    cause: Cause = Cause.DECIDED,
) -> Answer:
    """The answer for a decision (``shaken``: the call's ShakenStatus, 0 when unknown)."""
    action = ACTION_NAMES.get(decision.action, "ALLOW")
    summary = (DECISION_HEADER, _summary(action, decision))
    if action == "BLOCK" or (action == "CHALLENGE" and not config.challenge_uri):
        sip = decision.sip
        if not sip.status_code:  # a decision without its mapping: never block blind
            return _route(call, config, shaken, "", "ALLOW", cause, summary)
        headers = [summary]
        if sip.reason_header:
            headers.append(("Reason", sip.reason_header))
        if sip.redress_contact:
            purpose = "jwscard" if sip.status_code == 608 else "info"
            headers.append(("Call-Info", f"<{_uri_text(sip.redress_contact)}>;purpose={purpose}"))
        return Answer(sip.status_code, _phrase(sip.reason_phrase), tuple(headers), action, cause)
    if action == "CHALLENGE":
        return Answer(
            302, "Moved Temporarily", (("Contact", f"<{config.challenge_uri}>"), summary), action, cause
        )
    label = decision.label if action in ("LABEL", "ALLOW") else ""  # ALLOW: e.g. "International call"
    return _route(call, config, shaken, label, action, cause, summary)


def fail_open(call: CallView, config: AnswerConfig, cause: Cause) -> Answer:
    """The ALLOW answer without a decision: emergency calls, timeouts, errors."""
    summary = (DECISION_HEADER, f"action=ALLOW;cause={cause}")
    return _route(call, config, 0, "", "ALLOW", cause, summary)


def _route(
    call: CallView,
    config: AnswerConfig,
    shaken: int,
    label: str,
    action: str,
    cause: Cause,
    summary: tuple[str, str],
) -> Answer:
    headers = [("Contact", f"<{config.allow_contact or call.request_uri}>")]
    if call.identity_uri:
        display = label or call.identity_display
        uri = _VERSTAT_PARAM.sub("", call.identity_uri)
        verstat = VERSTAT.get(shaken, NO_VALIDATION)  # type: ignore[call-overload]
        name = f"{_quoted(display)} " if display else ""
        headers.append(("P-Asserted-Identity", f"{name}<{uri};verstat={verstat}>"))
    if label and config.label_header:
        headers.append((config.label_header, label))
    headers.append(summary)
    return Answer(302, "Moved Temporarily", tuple(headers), action, cause)


def _summary(action: str, decision: verdicts_pb2.Decision) -> str:
    parts = [f"action={action}", f"score={decision.score:.3f}"]
    if decision.reason_codes:
        parts.append("reasons=" + ",".join(decision.reason_codes))
    if decision.degraded:
        parts.append("degraded=" + ",".join(decision.degraded_reasons or ["yes"]))
    return ";".join(parts)


def _quoted(text: str) -> str:
    """A quoted-string (RFC 3261 §25.1): backslash and quote escaped, controls dropped."""
    clean = "".join(ch for ch in text if ch >= " " and ch != "\x7f")
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _phrase(text: str) -> str:
    return "".join(ch for ch in text if ch >= " ") or "Blocked"


def _uri_text(contact: str) -> str:
    """A redress contact as a URI: a phone number becomes tel:, an address mailto:."""
    if re.fullmatch(r"\+?[0-9][0-9 ()-]*", contact):
        return "tel:" + re.sub(r"[ ()-]", "", contact)
    if "@" in contact and ":" not in contact:
        return "mailto:" + contact
    return contact
