"""Spoofing proofs from what the carrier knows about its own subscribers (issue 18).

A call that presents one of the tenant's own numbers but arrives from an off-net trunk (the
caller-ID finding ``ONNET_CLI_OFFNET_INGRESS``), or any domestic number arriving over the
international gateway (``INTL_INGRESS_DOMESTIC_CLI``), is suspicious; the presented subscriber's
presence (``subscribers.presence.v1``, folded by reputation, read in the call's one round trip)
turns it into proof — for numbers outside the own ranges too (MVNO and ported-in subscribers, or
another carrier's fed by an inter-carrier roaming feed), since presence is only ever reported for a
subscriber the reporting network serves:

* ``ONNET_NUMBER_NOT_ROAMING`` — the subscriber is attached at home, so no call of theirs can come
  from outside the network;
* ``CALLER_BUSY_ELSEWHERE`` — the subscriber is in another (on-net) call that cannot be this one.

Unknown presence (never reported, expired, Redis did not answer) proves nothing: a missing state
is "unknown", never "at home". A roaming or detached subscriber proves nothing either — a real
roamer calls home over the international gateway. When a proof fires and the callee and the
presented number have called each other before, ``IMPERSONATES_CONTACT`` says the caller is
impersonating someone the callee knows ("your son" calling from abroad).

A domestic number over the international gateway (``INTL_INGRESS_DOMESTIC_CLI``) also gets one of
two facts that are not proofs:

* ``ROAMING_VERIFIED`` — presence says the subscriber is roaming abroad: a real roamer calling home
  (the policy may label it "International call" for tenants that want that);
* ``NO_ROAMING_INDICATION`` — a domestic *mobile* number with no roaming indication: presence was
  read and says anything but roaming (another carrier's subscriber has none unless an inter-carrier
  roaming or portability feed publishes it on the same topic). The policy labels it by default;
  a tenant that must block altered caller numbers at its international gateways (China's
  Anti-Telecom-Network-Fraud Law, Art. 13) opts in to BLOCK. Nothing is said when presence was not
  read (Redis did not answer): unknown is not "not roaming".
"""

from __future__ import annotations

from typing import Final, NamedTuple

from services.common.reasons import Reason

__all__ = ["ATTACHED_HOME", "DETACHED", "ROAMING", "UNKNOWN", "PresenceFacts", "presence_proofs"]

UNKNOWN: Final = 0
ATTACHED_HOME: Final = 1
ROAMING: Final = 2
DETACHED: Final = 3


class PresenceFacts(NamedTuple):
    """The presented subscriber's presence at the call's time, and whether caller and callee know
    each other (the relationship the reputation read already carries)."""

    state: int = UNKNOWN
    call_id: str = ""  # an on-net call of theirs in progress ('' when none)
    call_ms: int = 0
    contacts: bool = False


def presence_proofs(
    caller_codes: tuple[str, ...],
    call_id: str,
    facts: PresenceFacts | None,
    now_ms: int,
    call_max_ms: int,
    *,
    mobile: bool = False,
) -> tuple[Reason, ...]:
    """The codes presence adds to a call's caller-ID findings: proofs for an own number from off-net,
    a roaming fact for a domestic number over the international gateway (none without a finding).
    ``mobile``: the presented number is a mobile number."""
    if facts is None:
        return ()
    codes: list[Reason] = []
    # An own number from off-net (its range says so), or any domestic number from abroad (presence
    # says so: a number the home network reports cannot be calling over the international gateway
    # while it is attached at home or in an on-net call — MVNO and ported-in subscribers outside the
    # own ranges, and other carriers' subscribers an inter-carrier feed reports, included).
    if Reason.ONNET_CLI_OFFNET_INGRESS in caller_codes or Reason.INTL_INGRESS_DOMESTIC_CLI in caller_codes:
        if facts.state == ATTACHED_HOME:
            codes.append(Reason.ONNET_NUMBER_NOT_ROAMING)
        if facts.call_id and facts.call_id != call_id and 0 <= now_ms - facts.call_ms <= call_max_ms:
            codes.append(Reason.CALLER_BUSY_ELSEWHERE)
        if codes and facts.contacts:
            codes.append(Reason.IMPERSONATES_CONTACT)
    if Reason.INTL_INGRESS_DOMESTIC_CLI in caller_codes and not codes:
        if facts.state == ROAMING:
            codes.append(Reason.ROAMING_VERIFIED)
        elif mobile:
            codes.append(Reason.NO_ROAMING_INDICATION)
    return tuple(codes)
