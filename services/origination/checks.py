"""One call's origination checks, split where the Redis facts come in, for every process that verifies.

Origination's Verify RPC and the decision process (which verifies in-process, issue 15) run the same
two halves around their own Redis round trip:

1. ``CallChecks.check`` — CPU only: the Identity headers against the certificate source, and the
   caller-ID consistency rules. It says which Redis facts the verdict still needs: the replay marker
   of a verified PASSporT and, for a neighbour-spoofing finding, whether the caller has a history.
2. ``CallChecks.verdict`` — the OriginationVerdict from those checks and the facts (or their absence).

The halves are independent: verification raising (a bug; hostile input never does) answers
``VERIFICATION_ERROR`` with the caller-ID findings, and the caller-ID checks raising leaves the SHAKEN
outcome standing; either marks the verdict degraded (cause ``error``) and is reported through
``on_error(part)`` so each process counts it in its own metrics.

The replay marker lives on the caller's hash slot (``keys.replay_key``): a verified PASSporT's
``orig`` is the presented caller, so every presentation of one PASSporT lands on one slot, and the
marker rides the caller's one feature read in decision (one EVALSHA per call, Cluster-safe).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, NamedTuple

from cryptography import x509

from fraudmesh.v1 import call_pb2, verdicts_pb2
from services.common.phone import NumberKind
from services.common.reasons import Reason
from services.origination.callerid import CallerIdResult, check_caller_id, load_dno
from services.origination.certs import Revocations, load_trust_anchors
from services.origination.failures import Failure
from services.origination.passport import VERIFICATION_ERROR, ShakenResult, Verifier
from services.origination.presence import PresenceFacts, presence_proofs
from services.origination.settings import ShakenSettings
from services.origination.stats import RulesByTenant
from services.origination.verdict import NO_CALLER_ID, origination_verdict

log = logging.getLogger(__name__)

DAY_MS: Final = 86_400_000


@dataclass(frozen=True, slots=True)
class Trust:
    """What a verifying process reads from files at start: STI-CA roots, their CRLs, the DNO list."""

    anchors: tuple[x509.Certificate, ...]
    revocations: Revocations
    dno: frozenset[str]

    @classmethod
    def load(cls, settings: ShakenSettings) -> Trust:
        """Read the configured files; raises OSError or ValueError naming what is wrong."""
        anchors = load_trust_anchors(Path(path) for path in settings.sti_trust_anchors)
        revocations = (
            Revocations.load((Path(p) for p in settings.sti_crl_files), anchors)
            if settings.sti_crl_files
            else Revocations()
        )
        dno = (
            load_dno(Path(settings.dno_file).read_text().splitlines(), settings.default_region)
            if settings.dno_file
            else frozenset()
        )
        return cls(anchors, revocations, dno)


@dataclass(frozen=True, slots=True)
class Checks:
    """The CPU half of one call's checks and the causes of degradation found so far."""

    shaken: ShakenResult
    caller_id: CallerIdResult
    causes: tuple[str, ...]
    call_id: str = ""

    @property
    def replay_key(self) -> bytes | None:
        """The replay marker to record (a verified PASSporT's signature digest), or None."""
        if self.shaken.status != verdicts_pb2.SHAKEN_STATUS_VERIFIED:
            return None
        return self.shaken.replay_key

    @property
    def needs_history(self) -> bool:
        """True when a neighbour-spoofing finding waits on the caller's history."""
        return Reason.NEIGHBOR_SPOOFING in self.caller_id.reason_codes and self.caller_id.caller is not None


class Concluded(NamedTuple):
    """A verdict, why it is degraded (cause names), and the SHAKEN failure behind it (for metrics)."""

    verdict: verdicts_pb2.OriginationVerdict
    causes: tuple[str, ...]
    failure: Failure | None


# Numbers that can roam: mobiles, and numbers whose plan does not tell mobile from fixed (e.g. NANP).
MAY_ROAM: Final = frozenset({NumberKind.MOBILE, NumberKind.FIXED_LINE_OR_MOBILE})


class CallChecks:
    """The verifier and the caller-ID rules of one process, behind the two halves."""

    __slots__ = ("_call_max_ms", "_history_ms", "_on_error", "_settings", "rules", "verifier")

    def __init__(
        self,
        settings: ShakenSettings,
        verifier: Verifier,
        rules: RulesByTenant,
        on_error: Callable[[str], None] = lambda _part: None,
    ) -> None:
        self._settings = settings
        self.verifier = verifier
        self.rules = rules
        self._on_error = on_error
        self._history_ms = settings.neighbor_history_days * DAY_MS
        self._call_max_ms = int(settings.presence_call_max_s * 1000)

    def check(self, setup: call_pb2.CallSetup, now: float) -> Checks:
        """The CPU half: SHAKEN outcome and caller-ID findings at ``now``; never raises."""
        causes: list[str] = []
        shaken = self._shaken(setup, now, causes)
        caller_id = self.caller_id(setup, causes)
        if shaken.status == verdicts_pb2.SHAKEN_STATUS_PENDING:
            causes.append("cert_pending")
        return Checks(shaken, caller_id, tuple(causes), setup.call_id)

    def established(self, first_seen_ms: int | None, now: float) -> bool:
        """True when reputation first saw the caller at least ``neighbor_history_days`` before now."""
        return first_seen_ms is not None and now * 1000 - first_seen_ms >= self._history_ms

    def verdict(
        self,
        checks: Checks,
        *,
        replayed: bool,
        replay_fallback: bool,
        established: bool | None,
        presence: PresenceFacts | None = None,
        now_ms: int = 0,
    ) -> Concluded:
        """The verdict, its degradation causes and SHAKEN failure, given the Redis facts.

        ``replayed``: the replay marker was already there; ``replay_fallback``: that answer came
        from the process's own memory because Redis did not answer; ``established``: the caller's
        history (None when unknown because Redis did not answer); ``presence``: the presented
        subscriber's presence (None when not read: no proof then).
        """
        causes = list(checks.causes)
        shaken = checks.shaken
        codes = checks.caller_id.reason_codes
        if checks.replay_key is not None:
            if replay_fallback:
                causes.append("replay_store")
            if replayed:
                shaken = shaken.as_replay()
        if checks.needs_history:
            if established is None:
                causes.append("history_store")
            elif established:
                codes = tuple(code for code in codes if code != Reason.NEIGHBOR_SPOOFING)
        caller = checks.caller_id.caller
        mobile = caller is not None and caller.kind in MAY_ROAM
        proofs = presence_proofs(codes, checks.call_id, presence, now_ms, self._call_max_ms, mobile=mobile)
        verdict = origination_verdict(shaken, replace(checks.caller_id, reason_codes=(*codes, *proofs)))
        verdict.degraded = bool(causes)
        return Concluded(verdict, tuple(causes), shaken.failure)

    def fallback(self, setup: call_pb2.CallSetup) -> verdicts_pb2.OriginationVerdict:
        """The answer when a whole verification raised: unverified, degraded, with the caller-ID findings."""
        return origination_verdict(VERIFICATION_ERROR, self.caller_id(setup, []))

    def _shaken(self, setup: call_pb2.CallSetup, now: float, causes: list[str]) -> ShakenResult:
        """The Identity headers' outcome; VERIFICATION_ERROR (and cause ``error``) if verify() raised."""
        try:
            return self.verifier.verify(setup, self._settings.region_for(setup.tenant), now=now)
        except Exception:  # a bug: the caller-ID findings must still be answered
            log.exception("PASSporT verification raised; answering it unverified")
            self._on_error("verification")
            causes.append("error")
            return VERIFICATION_ERROR

    def caller_id(self, setup: call_pb2.CallSetup, causes: list[str]) -> CallerIdResult:
        """The caller-ID findings; none (and cause ``error``) if the checks raised."""
        try:
            return check_caller_id(setup, self.rules.get(setup.tenant))
        except Exception:  # a bug: the SHAKEN outcome must still be answered
            log.exception("caller-ID checks raised; answering without them")
            self._on_error("caller_id")
            causes.append("error")
            return NO_CALLER_ID
