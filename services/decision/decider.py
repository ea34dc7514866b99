"""The decision core: hard policy, then origination and features in parallel, score, policy, audit.

Order of precedence, each step failing open:

1. An emergency call (services.common.emergency: every form of the called number or Request-URI)
   and a PSAP calling back (the policy's ``psap_callback_numbers``) are ALLOW before anything else
   runs — nothing after it can change that, and it is answered even when every dependency is down
   or something raises. The policy in force is an attribute read (reloads happen off the call path).
2. Origination ``Verify`` (gRPC) and the caller's features + list entries (one Redis round trip)
   run concurrently, each within its sub-deadline (never past the client's own deadline) and behind
   a circuit breaker; a miss becomes missing features plus a ``degraded`` cause. A call that
   arrives too late to wait skips the dependency (``*_SKIPPED_LATE``) and a wait cut short by the
   client's deadline rather than the sub-deadline does not charge the breaker: only the
   dependency's own slowness or refusal opens it. The caller is the one services.common.identity
   attributes the call to (PAI, else From, else the trunk's withheld bucket).
3. Allow-list → ALLOW; deny-list → the policy's deny action.
4. The compiled model scores the vector (reasons computed only when the action is not ALLOW); the
   tenant's policy maps the score to an action, applies reason-forced actions, refuses to
   CHALLENGE/BLOCK on side signals alone, caps degraded decisions, and applies shadow mode.
5. The decision is queued for the audit topic, off the call path (reputation folds it, and writes
   the caller's recent-decisions list from it). Any exception anywhere answers ALLOW, degraded,
   with ``DECISION_ERROR``.

Tracing: ``decision.decide`` spans the whole decision (the audit record carries its context to
Kafka), with ``decision.verify`` (the Verify RPC, context in its metadata) and
``decision.features`` (the Redis round trip) as children, created only when the decision is
sampled. Attributes only when sampled, and never a number.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import grpc
import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis
from opentelemetry import trace
from opentelemetry.context import Context
from redis.exceptions import RedisError

from fraudmesh.v1 import call_pb2, events_pb2, origination_pb2, verdicts_pb2
from services.common import redisbatch
from services.common.autopipeline import AutoPipeline
from services.common.breaker import BreakerState, CircuitBreaker
from services.common.context import ContextRules, fill_context, fill_origination
from services.common.emergency import is_emergency_call
from services.common.features import empty_vector
from services.common.featurestore import READ_CALL, CallRead, ReputationRead, call_request, fill, parse_call
from services.common.identity import CallerIdentity, attribute_setup
from services.common.phone import InvalidNumberError, NormalizedNumber, normalize
from services.common.pseudonym import Pseudonymizer
from services.common.reasons import Reason
from services.common.tracing import child_span, outgoing_metadata
from services.decision import lists, metrics
from services.decision.audit import AuditPublisher
from services.decision.degraded import Degraded, skipped_late, timed_out, unavailable
from services.decision.models import ModelStore
from services.decision.policy import ALLOW, BLOCK, CHALLENGE, LABEL, SEVERITY, Policy, PolicyStore
from services.decision.settings import DecisionSettings
from services.decision.verification import LocalOrigination
from services.decision.within import LateWakeupError, T, within
from services.origination.checks import Checks
from services.scoring.model import Scorer

log = logging.getLogger(__name__)
tracer = trace.get_tracer("fraudmesh.decision")

ACTION_NAMES: Final = {ALLOW: "ALLOW", LABEL: "LABEL", CHALLENGE: "CHALLENGE", BLOCK: "BLOCK"}
MAX_REASONS: Final = 5
# Below this much time left a dependency cannot answer (a loopback Redis round trip alone is
# ~50-100 µs): the call skips it rather than starting work that will be cancelled.
MIN_WAIT_S: Final = 0.0002


@dataclass
class Lookup:
    """What the one Redis round trip returned: the caller's features, list status, replay marker."""

    features: ReputationRead
    lists: lists.ListStatus
    read: CallRead


@dataclass
class Outcome:
    """A decision with everything the audit record and metrics need."""

    decision: verdicts_pb2.Decision
    origination: verdicts_pb2.OriginationVerdict | None
    caller: CallerIdentity | None
    emergency: bool = False
    degraded: list[str] = field(default_factory=list)


class Decider:
    """Decides calls; one per process, used by the gRPC servicer."""

    def __init__(
        self,
        settings: DecisionSettings,
        policies: PolicyStore,
        models: ModelStore,
        redis: aioredis.Redis,
        origination: Any | None,
        audit: AuditPublisher | None,
        local: LocalOrigination | None = None,
    ) -> None:
        """``origination`` is the Verify stub (remote checks); ``local`` verifies in this process
        instead (it wins when both are given); neither: no origination checks."""
        self.settings = settings
        self.policies = policies
        self.models = models
        self.redis = redis
        batch_timeout_s = max(settings.redis_timeout_s, settings.features_timeout_s)
        self._read_sha = redisbatch.script_sha(READ_CALL)
        self.pipeline = AutoPipeline(redis, timeout_s=batch_timeout_s, scripts={self._read_sha: READ_CALL})
        self.local = local
        self.origination = origination if local is None else None
        self.audit = audit
        self.pseudonymize = Pseudonymizer(settings.pseudonym_key)
        self.breakers = {
            name: CircuitBreaker(
                name,
                failure_threshold=settings.breaker_failures,
                reset_after_s=settings.breaker_reset_s,
                on_change=_breaker_changed,
            )
            for name in ("redis", "origination")
        }
        for name in self.breakers:
            metrics.BREAKER_STATE.labels(name).set(BreakerState.CLOSED.value)
        self._rules: dict[str, ContextRules] = {}

    @property
    def scorer(self) -> Scorer:
        """The model in force (hot-reloaded by the ModelStore off the call path)."""
        return self.models.current()

    # ---- the call path -------------------------------------------------------------------

    async def decide(
        self,
        setup: call_pb2.CallSetup,
        time_remaining_s: float | None = None,
        *,
        record: bool = True,
        parent: Context | None = None,
    ) -> Outcome:
        """Decide one call; never raises (an internal error answers ALLOW, degraded).

        ``record=False`` skips the audit and redress records (the start-up warm-up call);
        ``parent`` is the caller's trace context, if it sent one.
        """
        with tracer.start_as_current_span(
            "decision.decide", context=parent, kind=trace.SpanKind.SERVER
        ) as span:
            outcome = await self._answer(setup, time_remaining_s, record)
            if span.is_recording():
                span.set_attributes(
                    {
                        "fraudmesh.tenant": setup.tenant,
                        "fraudmesh.action": ACTION_NAMES.get(outcome.decision.action, "UNSPECIFIED"),
                        "fraudmesh.degraded": outcome.decision.degraded,
                        "fraudmesh.degraded_reasons": list(outcome.decision.degraded_reasons),
                    }
                )
            return outcome

    async def _answer(
        self, setup: call_pb2.CallSetup, time_remaining_s: float | None, record: bool
    ) -> Outcome:
        started = time.perf_counter()
        policy = self.policies.current()
        try:
            region = self.settings.region_for(setup.tenant)
            if is_emergency_call(setup, region, policy.emergency_numbers):
                outcome = Outcome(
                    _decision(setup, ALLOW, policy, self.scorer, [Reason.EMERGENCY_NUMBER]), None, None, True
                )
            else:
                caller = _attribute(setup, region)
                if caller is not None and policy.is_psap_callback(caller.key, region):
                    outcome = Outcome(
                        _decision(setup, ALLOW, policy, self.scorer, [Reason.EMERGENCY_CALLBACK]),
                        None,
                        caller,
                        True,
                    )
                else:
                    outcome = await self._decide(setup, policy, region, caller, started, time_remaining_s)
        except Exception:  # the call must never fail or block because of a bug here
            log.exception("decision raised; answering ALLOW (degraded)")
            outcome = Outcome(
                _decision(setup, ALLOW, policy, self.scorer, []),
                None,
                None,
                degraded=[Degraded.DECISION_ERROR],
            )
        self._finish(setup, outcome, started, record)
        return outcome

    async def _decide(
        self,
        setup: call_pb2.CallSetup,
        policy: Policy,
        region: str,
        caller: CallerIdentity | None,
        started: float,
        time_remaining_s: float | None,
    ) -> Outcome:
        stamp = setup.event_time
        now_ms = int(self.settings.call_time(stamp.seconds + stamp.nanos / 1e9) * 1000)
        callee = _normalize(setup.called_number, region)
        degraded: list[str] = []
        if self.local is not None:
            # Origination in this process: CPU checks, then the one round trip carries the replay marker.
            with child_span(tracer, "decision.verify", trace.SpanKind.INTERNAL):
                checks = self.local.check(setup, now_ms / 1000)
            budget = self._budget(started, time_remaining_s)
            lookup = await self._lookup(setup.tenant, caller, callee, now_ms, budget, degraded, checks)
            verdict: verdicts_pb2.OriginationVerdict | None = self.local.conclude(
                checks, lookup.read if lookup is not None else None, now_ms / 1000
            )
        else:
            budget = self._budget(started, time_remaining_s)
            verdict_task = self._verify(setup, budget, degraded)
            lookup_task = self._lookup(setup.tenant, caller, callee, now_ms, budget, degraded)
            verdict, lookup = await asyncio.gather(verdict_task, lookup_task)
        if verdict is not None and verdict.degraded:
            degraded.append(Degraded.ORIGINATION_DEGRADED)
        vector = empty_vector()
        number = caller.number if caller is not None else None
        fill_context(vector, setup, number, callee, self._context_rules(setup.tenant, region))
        fill_origination(vector, verdict)
        if lookup is not None:
            fill(vector, lookup.features, now_ms)
            if lookup.lists.allowed:
                return Outcome(
                    _decision(setup, ALLOW, policy, self.scorer, [Reason.ALLOW_LISTED]),
                    verdict,
                    caller,
                    degraded=degraded,
                )
            if lookup.lists.denied:
                listed: list[str] = [Reason.DENY_LISTED, Reason.EVIDENCE_PROOF]
                decision = _decision(setup, policy.deny_action, policy, self.scorer, listed)
                return Outcome(_shadowed(decision, policy, setup.tenant), verdict, caller, degraded=degraded)
        return Outcome(
            self._score(setup, policy, vector, verdict, degraded), verdict, caller, degraded=degraded
        )

    def _score(
        self,
        setup: call_pb2.CallSetup,
        policy: Policy,
        vector: npt.NDArray[np.float32],
        verdict: verdicts_pb2.OriginationVerdict | None,
        degraded: list[str],
    ) -> verdicts_pb2.Decision:
        scorer = self.models.current()  # one model per decision, even across a reload
        thresholds = policy.thresholds_for(setup.ingress_kind)
        scored = scorer.score(vector, reasons_above=thresholds.label)  # reasons only where needed
        action = thresholds.action(scored.probability)
        found = tuple(verdict.reason_codes) if verdict else ()
        reason_actions = policy.reason_actions_for(setup.tenant)
        forced = [code for code in found if code in reason_actions]
        for code in forced:
            if SEVERITY[reason_actions[code]] > SEVERITY[action]:
                action = reason_actions[code]
        reasons: list[str] = []
        if action != ALLOW:
            top = scored.top_reasons or scorer.score(vector).top_reasons
            reasons = list(dict.fromkeys([*forced, *top]))[:MAX_REASONS] or [Reason.MODEL_SCORE]
            if SEVERITY[action] >= SEVERITY[CHALLENGE] and set(reasons) <= policy.never_sole_reasons:
                action = LABEL
            codes = frozenset([*found, *reasons])
            proof = policy.evidence.is_proof(codes) or bool(codes & policy.tenant_proof(setup.tenant))
            if not proof:
                action = policy.evidence.score_alone(action, scored.probability, scorer.artifact.metadata)
                action = policy.capped(action, codes)  # e.g. a verified roamer: at most ALLOW
                if action == ALLOW:
                    reasons = []
            if degraded and SEVERITY[action] > SEVERITY[policy.degraded_max_action]:
                action = policy.degraded_max_action
            if SEVERITY[action] >= SEVERITY[CHALLENGE]:
                reasons = [
                    *reasons[: MAX_REASONS - 1],
                    Reason.EVIDENCE_PROOF if proof else Reason.EVIDENCE_SCORE,
                ]
        metrics.SCORES.observe(scored.probability)
        decision = _decision(setup, action, policy, scorer, reasons, scored.probability)
        if action == ALLOW and Reason.INTL_INGRESS_DOMESTIC_CLI in found:
            decision.label = policy.international_label_for(setup.tenant)  # "International call", if wanted
        return _shadowed(decision, policy, setup.tenant)

    def _budget(self, started: float, time_remaining_s: float | None) -> float | None:
        """Seconds the client leaves the dependencies (its deadline minus a margin), None without one."""
        if time_remaining_s is None:
            return None
        spent = time.perf_counter() - started
        return max(0.0, time_remaining_s - spent - self.settings.deadline_margin_s)

    async def _verify(
        self, setup: call_pb2.CallSetup, budget_s: float | None, degraded: list[str]
    ) -> verdicts_pb2.OriginationVerdict | None:
        """Origination's verdict within its sub-deadline and the client's budget, or None with the cause."""
        if self.origination is None:
            return None
        stub = self.origination
        sub_deadline = self.settings.origination_timeout_s
        wait = sub_deadline if budget_s is None else min(budget_s, sub_deadline)
        with child_span(tracer, "decision.verify", trace.SpanKind.CLIENT) as span:
            reply = await self._bounded(
                "origination",
                lambda: stub.Verify(
                    origination_pb2.VerifyRequest(setup=setup),
                    timeout=max(wait, 0.0005),
                    metadata=outgoing_metadata(),
                ),
                sub_deadline,
                budget_s,
                degraded,
            )
            if reply is None and span.is_recording():
                span.set_status(trace.StatusCode.ERROR, degraded[-1])
        return None if reply is None else reply.verdict

    async def _lookup(
        self,
        tenant: str,
        caller: CallerIdentity | None,
        callee: NormalizedNumber | None,
        now_ms: int,
        budget_s: float | None,
        degraded: list[str],
        checks: Checks | None = None,
    ) -> Lookup | None:
        """The caller's features, list entries and (``checks`` of a verified PASSporT) replay marker.

        Exactly one Redis command per call — one EVALSHA of READ_CALL on the caller's slot — sent
        with the other calls of the same event-loop tick in one pipeline (AutoPipeline).
        """
        if caller is None:
            return None
        pseudonym = self.pseudonymize(caller.key)
        callee_pseudonym = self.pseudonymize(callee.canonical) if callee is not None else ""
        digest = checks.replay_key if checks is not None else None
        ttl_s = 1
        if checks is not None and digest is not None:
            ttl_s = math.ceil(checks.shaken.replay_expires_at - now_ms / 1000)
        script_keys, args = call_request(
            pseudonym, callee_pseudonym, now_ms, lists.lookup_fields(tenant), digest, ttl_s
        )

        def round_trip() -> asyncio.Future[Any]:
            # EVALSHA, never EVAL: the script is loaded at start, and the pipeline loads it again
            # after a NOSCRIPT reply. A plain future: waiting on it costs no task of its own.
            return self.pipeline.execute("EVALSHA", self._read_sha, len(script_keys), *script_keys, *args)

        with child_span(tracer, "decision.features", trace.SpanKind.CLIENT) as span:
            results = await self._bounded(
                "redis", round_trip, self.settings.features_timeout_s, budget_s, degraded
            )
            if results is None and span.is_recording():
                span.set_status(trace.StatusCode.ERROR, degraded[-1])
        if results is None:
            return None
        read = parse_call(results, now_ms)
        return Lookup(read.features, lists.ListStatus.of(read.list_values, now_ms), read)

    async def _bounded(
        self,
        name: str,
        start: Callable[[], Awaitable[T]],
        sub_deadline_s: float,
        budget_s: float | None,
        degraded: list[str],
    ) -> T | None:
        """Start and await work within its sub-deadline and the client's budget; None (and a cause) otherwise.

        The work runs as its own task, and the call stops waiting at the deadline whatever the
        client library does with the cancellation (redis-py's blocking pool can absorb one and keep
        waiting for a connection for its own timeout): the abandoned task is cancelled and reaped.
        Only the dependency's own failures charge its breaker: a refusal, an error, or a timeout
        after it was given its whole sub-deadline; calls that fail together in one stall count as one
        failure (``CircuitBreaker.failure(started_at=...)``). A call too late to wait (budget below
        ``MIN_WAIT_S``) skips it, and a wait cut short by the client's deadline is a timeout without
        charge. A wait this process itself ended late first reads any reply that arrived meanwhile.
        """
        breaker = self.breakers[name]
        if budget_s is not None and budget_s < MIN_WAIT_S:
            degraded.append(skipped_late(name))
            return None
        if not breaker.allow():
            degraded.append(unavailable(name))
            return None
        wait = sub_deadline_s if budget_s is None else min(budget_s, sub_deadline_s)
        full_wait = wait >= sub_deadline_s
        started = time.perf_counter()
        began = breaker.now()
        look_until = None if budget_s is None else asyncio.get_running_loop().time() + budget_s
        try:
            result = await within(start, wait, look_until=look_until)
        except TimeoutError as exc:
            if isinstance(exc, LateWakeupError):
                metrics.LATE_WAKEUPS.labels(name).inc()
            if full_wait:
                breaker.failure(started_at=began)
            else:
                breaker.release()
            degraded.append(timed_out(name))
            return None
        except (RedisError, OSError, grpc.aio.AioRpcError) as exc:
            timed_out_rpc = (
                isinstance(exc, grpc.aio.AioRpcError) and exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            )
            if full_wait or not timed_out_rpc:
                breaker.failure(started_at=began)
            else:
                breaker.release()
            degraded.append(timed_out(name) if timed_out_rpc else unavailable(name))
            return None
        finally:
            metrics.dependency_seconds(name).observe(time.perf_counter() - started)
        breaker.success()
        return result

    async def load_scripts(self) -> None:
        """Load the call's read script into Redis (at start, and after a Redis restart lost it)."""
        await self.redis.script_load(READ_CALL)

    def _context_rules(self, tenant: str, region: str) -> ContextRules:
        rules = self._rules.get(tenant)
        if rules is None:
            settings = self.settings
            rules = ContextRules(
                region, settings.home_ranges, settings.risky_ranges, settings.utc_offset_hours
            )
            if len(self._rules) < 10_000:
                self._rules[tenant] = rules
        return rules

    # ---- after the answer ----------------------------------------------------------------

    def _finish(self, setup: call_pb2.CallSetup, outcome: Outcome, started: float, record: bool) -> None:
        """Stamp latency and degradation, count, and queue the audit and redress records."""
        decision = outcome.decision
        if outcome.degraded:
            decision.degraded = True
            decision.degraded_reasons.extend(dict.fromkeys(outcome.degraded))
            for cause in dict.fromkeys(outcome.degraded):
                metrics.degraded(cause).inc()
        elapsed = time.perf_counter() - started
        decision.latency_us = int(elapsed * 1e6)
        metrics.DECIDE_SECONDS.observe(elapsed)
        action = ACTION_NAMES.get(decision.action, "UNSPECIFIED")
        metrics.decisions(action, setup.tenant).inc()
        if decision.shadow_action:
            metrics.SHADOW.labels(ACTION_NAMES.get(decision.shadow_action, "UNSPECIFIED"), setup.tenant).inc()
        for code in decision.reason_codes:
            metrics.reasons(code, action).inc()
        if outcome.emergency:
            metrics.EMERGENCY.labels(action).inc()
        if not record:
            return
        try:
            self._record(setup, outcome)
        except Exception:  # recording must never turn into a failed call
            log.exception("could not queue the audit record")

    def _record(self, setup: call_pb2.CallSetup, outcome: Outcome) -> None:
        pseudonym = self.pseudonymize(outcome.caller.key) if outcome.caller is not None else ""
        if self.audit is not None:
            record = events_pb2.CallSetupEvent(setup=setup, decision=outcome.decision)
            if outcome.origination is not None:
                record.origination.CopyFrom(outcome.origination)
            self.audit.publish(record, pseudonym.encode() if pseudonym else None)
            if pseudonym and self.policies.current().notifies_impersonated(setup.tenant):
                self._notify(setup, outcome, pseudonym)

    def _notify(self, setup: call_pb2.CallSetup, outcome: Outcome, pseudonym: str) -> None:
        """Queue a notice to the subscriber whose number was proven spoofed to someone they know."""
        codes = outcome.origination.reason_codes if outcome.origination is not None else ()
        if Reason.IMPERSONATES_CONTACT not in codes or self.audit is None:
            return
        callee = _normalize(setup.called_number, self.settings.region_for(setup.tenant))
        notice = events_pb2.ImpersonationNotice(
            notice_id=setup.call_id,
            tenant=setup.tenant,
            event_time=setup.event_time,
            subscriber_pseudonym=pseudonym,
            callee_pseudonym=self.pseudonymize(callee.canonical) if callee is not None else "",
            proof_codes=[code for code in codes if code in PRESENCE_PROOFS],
            call_id=setup.call_id,
        )
        self.audit.notify(notice, pseudonym.encode())


PRESENCE_PROOFS = frozenset({Reason.ONNET_NUMBER_NOT_ROAMING, Reason.CALLER_BUSY_ELSEWHERE})


def _decision(
    setup: call_pb2.CallSetup,
    action: int,
    policy: Policy,
    scorer: Scorer,
    reasons: list[str],
    score: float = 0.0,
) -> verdicts_pb2.Decision:
    """A Decision with the SIP mapping and label the action needs."""
    decision = verdicts_pb2.Decision(
        call_id=setup.call_id,
        action=action,  # type: ignore[arg-type]
        score=score,
        reason_codes=reasons,
        model_version=scorer.version,
        policy_version=policy.version,
    )
    _apply_action(decision, action, policy, setup.tenant)
    return decision


def _apply_action(decision: verdicts_pb2.Decision, action: int, policy: Policy, tenant: str) -> None:
    decision.action = action  # type: ignore[assignment]
    decision.ClearField("sip")
    decision.label = ""
    if action == BLOCK:
        decision.sip.CopyFrom(policy.block_for(tenant).response())
    elif action == CHALLENGE:
        decision.sip.CopyFrom(policy.challenge.response())
    elif action == LABEL:
        decision.label = policy.label_for(tenant)


def _shadowed(decision: verdicts_pb2.Decision, policy: Policy, tenant: str) -> verdicts_pb2.Decision:
    """In shadow mode: keep the would-be action in shadow_action and answer ALLOW."""
    if policy.tenant(tenant).shadow and decision.action != ALLOW:
        decision.shadow_action = decision.action
        _apply_action(decision, ALLOW, policy, tenant)
    return decision


def _attribute(setup: call_pb2.CallSetup, region: str) -> CallerIdentity | None:
    """The identity the call is attributed to, or None for a caller ID that is not a number."""
    try:
        return attribute_setup(setup, region)
    except InvalidNumberError:
        return None


def _normalize(raw: str, region: str) -> NormalizedNumber | None:
    try:
        return normalize(raw, region, allow_unallocated=True)
    except InvalidNumberError:
        return None


def _breaker_changed(name: str, state: BreakerState) -> None:
    metrics.BREAKER_STATE.labels(name).set(state.value)
    log.warning("circuit breaker changed", extra={"dependency": name, "state": state.name})
