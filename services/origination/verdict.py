"""Assemble the OriginationVerdict the service returns from the SHAKEN and caller-ID outcomes."""

from __future__ import annotations

from fraudmesh.v1 import verdicts_pb2
from services.origination.callerid import CallerIdResult
from services.origination.passport import PENDING, ShakenResult

__all__ = ["NO_CALLER_ID", "origination_verdict"]

NO_CALLER_ID = CallerIdResult((), None, None, withheld=False)
"""The caller-ID part when its checks could not run (the verdict is then degraded)."""

_UNFINISHED = frozenset({PENDING, verdicts_pb2.SHAKEN_STATUS_UNSPECIFIED})


def origination_verdict(shaken: ShakenResult, caller_id: CallerIdResult) -> verdicts_pb2.OriginationVerdict:
    """One verdict: SHAKEN status and identity, then every reason code once.

    PENDING, or UNSPECIFIED (verification raised, see ``passport.VERIFICATION_ERROR``), marks it degraded.
    """
    codes = list(dict.fromkeys((*shaken.reason_codes, *caller_id.reason_codes)))
    return verdicts_pb2.OriginationVerdict(
        shaken_status=shaken.status,
        attestation=shaken.attestation,
        origid=shaken.origid,
        signer_ocn=shaken.signer_ocn,
        reason_codes=codes,
        degraded=shaken.status in _UNFINISHED,
    )
