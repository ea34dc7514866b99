"""Policy as code: how a tenant turns a score and its reasons into ALLOW / LABEL / CHALLENGE / BLOCK.

A policy is one YAML file (see deploy/policy/default.yaml for every key with comments). It is
validated as a whole when loaded — unknown keys, thresholds out of order, unknown reason codes or
languages without a label are errors that name the key — and hot-reloaded: ``PolicyStore`` checks
the file's modification time and swaps in a new policy only if it validates; a bad edit keeps the
previous policy serving and is reported (log + metric), never half-applied.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from fraudmesh.v1 import common_pb2, verdicts_pb2
from services.common.reasons import REASONS

log = logging.getLogger(__name__)

ALLOW: Final = common_pb2.ACTION_ALLOW
LABEL: Final = common_pb2.ACTION_LABEL
CHALLENGE: Final = common_pb2.ACTION_CHALLENGE
BLOCK: Final = common_pb2.ACTION_BLOCK
ACTIONS: Final[dict[str, int]] = {"ALLOW": ALLOW, "LABEL": LABEL, "CHALLENGE": CHALLENGE, "BLOCK": BLOCK}
SEVERITY: Final[dict[int, int]] = {ALLOW: 0, LABEL: 1, CHALLENGE: 2, BLOCK: 3}
INGRESS: Final = {
    name.removeprefix("INGRESS_KIND_"): value
    for name, value in common_pb2.IngressKind.items()
    if value != common_pb2.INGRESS_KIND_UNSPECIFIED
}


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and the offending key."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Minimum calibrated score for each action; a score below ``label`` is ALLOW."""

    label: float
    challenge: float
    block: float

    def action(self, score: float) -> int:
        """The action a score earns (highest threshold reached)."""
        if score >= self.block:
            return BLOCK
        if score >= self.challenge:
            return CHALLENGE
        if score >= self.label:
            return LABEL
        return ALLOW


@dataclass(frozen=True, slots=True)
class SipMapping:
    """What the switch sends for an action: status code, reason phrase, Reason header, redress."""

    status_code: int
    reason_phrase: str
    redress_contact: str

    def response(self) -> verdicts_pb2.SipResponse:
        """The SipResponse message, with an RFC 3326 Reason header value."""
        text = self.reason_phrase.replace('"', "'")
        return verdicts_pb2.SipResponse(
            status_code=self.status_code,
            reason_phrase=self.reason_phrase,
            reason_header=f'SIP;cause={self.status_code};text="{text}"',
            redress_contact=self.redress_contact,
        )


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    """Per-tenant overrides: language for labels, shadow mode."""

    language: str
    shadow: bool


@dataclass(frozen=True)
class Policy:
    """A validated policy (see the module doc and deploy/policy/default.yaml)."""

    version: str
    digest: str
    thresholds: Thresholds
    ingress_thresholds: Mapping[int, Thresholds]
    shadow: bool
    default_language: str
    labels: Mapping[str, str]
    tenants: Mapping[str, TenantPolicy]
    block: SipMapping
    challenge: SipMapping
    deny_action: int
    reason_actions: Mapping[str, int]
    never_sole_reasons: frozenset[str]
    degraded_max_action: int
    emergency_numbers: frozenset[str] = field(default_factory=frozenset)

    def thresholds_for(self, ingress_kind: int) -> Thresholds:
        """The thresholds of calls from one ingress kind (the defaults when not overridden)."""
        return self.ingress_thresholds.get(ingress_kind, self.thresholds)

    def tenant(self, tenant: str) -> TenantPolicy:
        """A tenant's language and shadow flag (the policy defaults for unknown tenants)."""
        found = self.tenants.get(tenant)
        return found if found is not None else TenantPolicy(self.default_language, self.shadow)

    def label_for(self, tenant: str) -> str:
        """The display label in the tenant's language."""
        return self.labels[self.tenant(tenant).language]


_TOP_KEYS: Final = {
    "version",
    "shadow",
    "thresholds",
    "ingress_thresholds",
    "default_language",
    "labels",
    "tenants",
    "block",
    "challenge",
    "deny_action",
    "reason_actions",
    "never_sole_reasons",
    "degraded_max_action",
    "emergency_numbers",
}


def _require(mapping: Any, where: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(mapping, dict):
        raise PolicyError(f"{where}: expected a mapping")
    unknown = set(mapping) - allowed
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    missing = required - set(mapping)
    if missing:
        raise PolicyError(f"{where}: missing key(s) {', '.join(sorted(missing))}")
    return mapping


def _thresholds(raw: Any, where: str) -> Thresholds:
    data = _require(raw, where, {"label", "challenge", "block"}, {"label", "challenge", "block"})
    values = []
    for name in ("label", "challenge", "block"):
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.01:
            raise PolicyError(f"{where}.{name}: must be a number in [0, 1] (above 1 disables the action)")
        values.append(float(value))
    if not values[0] <= values[1] <= values[2]:
        raise PolicyError(f"{where}: thresholds must satisfy label <= challenge <= block")
    return Thresholds(*values)


def _action(raw: Any, where: str) -> int:
    if raw not in ACTIONS:
        raise PolicyError(f"{where}: must be one of {', '.join(ACTIONS)}")
    return ACTIONS[raw]


def _sip(raw: Any, where: str) -> SipMapping:
    data = _require(
        raw, where, {"status_code", "reason_phrase", "redress_contact"}, {"status_code", "reason_phrase"}
    )
    code = data["status_code"]
    if isinstance(code, bool) or not isinstance(code, int) or not 300 <= code <= 699:
        raise PolicyError(f"{where}.status_code: must be a SIP status code 300-699")
    phrase = data["reason_phrase"]
    if not isinstance(phrase, str) or not phrase or len(phrase) > 128 or not phrase.isprintable():
        raise PolicyError(f"{where}.reason_phrase: must be printable text up to 128 characters")
    contact = data.get("redress_contact", "")
    if not isinstance(contact, str) or len(contact) > 256:
        raise PolicyError(f"{where}.redress_contact: must be text up to 256 characters")
    return SipMapping(code, phrase, contact)


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Validate a policy document; raises PolicyError naming ``source`` and the key."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML ({exc})") from None
    try:
        return _build(raw, text)
    except PolicyError as exc:
        raise PolicyError(f"{source}: {exc}") from None


def _build(raw: Any, text: str) -> Policy:
    data = _require(
        raw, "policy", _TOP_KEYS, {"version", "thresholds", "labels", "default_language", "block"}
    )
    version = data["version"]
    if not isinstance(version, str) or not version.strip():
        raise PolicyError("version: must be a non-empty string")
    labels = data["labels"]
    if (
        not isinstance(labels, dict)
        or not labels
        or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in labels.items())
    ):
        raise PolicyError("labels: must map language codes to non-empty label text")
    default_language = data["default_language"]
    if default_language not in labels:
        raise PolicyError("default_language: has no entry in labels")
    shadow = data.get("shadow", False)
    if not isinstance(shadow, bool):
        raise PolicyError("shadow: must be true or false")
    ingress: dict[int, Thresholds] = {}
    for name, value in (data.get("ingress_thresholds") or {}).items():
        if name not in INGRESS:
            raise PolicyError(
                f"ingress_thresholds.{name}: unknown ingress kind (one of {', '.join(INGRESS)})"
            )
        ingress[INGRESS[name]] = _thresholds(value, f"ingress_thresholds.{name}")
    tenants: dict[str, TenantPolicy] = {}
    for name, value in (data.get("tenants") or {}).items():
        entry = _require(value, f"tenants.{name}", {"language", "shadow"}, set())
        language = entry.get("language", default_language)
        if language not in labels:
            raise PolicyError(f"tenants.{name}.language: has no entry in labels")
        tenant_shadow = entry.get("shadow", shadow)
        if not isinstance(tenant_shadow, bool):
            raise PolicyError(f"tenants.{name}.shadow: must be true or false")
        tenants[str(name)] = TenantPolicy(language, tenant_shadow)
    reason_actions: dict[str, int] = {}
    for code, action in (data.get("reason_actions") or {}).items():
        if code not in REASONS:
            raise PolicyError(f"reason_actions.{code}: unknown reason code")
        reason_actions[code] = _action(action, f"reason_actions.{code}")
    never_sole = data.get("never_sole_reasons") or []
    if not isinstance(never_sole, list) or any(code not in REASONS for code in never_sole):
        raise PolicyError("never_sole_reasons: must list known reason codes")
    emergency = data.get("emergency_numbers") or []
    if not isinstance(emergency, list) or not all(isinstance(n, str | int) for n in emergency):
        raise PolicyError("emergency_numbers: must list numbers")
    return Policy(
        version=version.strip(),
        digest=hashlib.sha256(text.encode()).hexdigest()[:12],
        thresholds=_thresholds(data["thresholds"], "thresholds"),
        ingress_thresholds=ingress,
        shadow=shadow,
        default_language=default_language,
        labels=dict(labels),
        tenants=tenants,
        block=_sip(data["block"], "block"),
        challenge=_sip(
            data.get("challenge", {"status_code": 480, "reason_phrase": "Temporarily Unavailable"}),
            "challenge",
        ),
        deny_action=_action(data.get("deny_action", "BLOCK"), "deny_action"),
        reason_actions=reason_actions,
        never_sole_reasons=frozenset(never_sole),
        degraded_max_action=_action(data.get("degraded_max_action", "LABEL"), "degraded_max_action"),
        emergency_numbers=frozenset(str(n) for n in emergency),
    )


class PolicyStore:
    """The current policy, reloaded when its file changes; a bad file keeps the previous policy."""

    def __init__(
        self,
        path: Path,
        *,
        check_every_s: float = 1.0,
        on_reload: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._check_every = check_every_s
        self._on_reload = on_reload
        self._clock = clock
        self._stamp = self._stat()
        self.policy = parse_policy(path.read_text(), str(path))  # a bad file at start-up is fatal
        self.last_error = ""
        self._next_check = clock() + check_every_s

    def _stat(self) -> tuple[int, int]:
        info = os.stat(self.path)
        return info.st_mtime_ns, info.st_size

    def current(self) -> Policy:
        """The policy to apply now (checks the file at most every ``check_every_s``; never raises)."""
        now = self._clock()
        if now >= self._next_check:
            self._next_check = now + self._check_every
            self.reload_if_changed()
        return self.policy

    def reload_if_changed(self) -> bool:
        """Swap in the file's policy if it changed and validates; True when a new policy is active."""
        try:
            stamp = self._stat()
            if stamp == self._stamp:
                return False
            self._stamp = stamp
            policy = parse_policy(self.path.read_text(), str(self.path))
        except (OSError, PolicyError) as exc:
            self.last_error = str(exc)
            log.error("policy reload rejected; the previous policy stays active", extra={"error": str(exc)})
            if self._on_reload is not None:
                self._on_reload("rejected", self.policy.version)
            return False
        self.policy = policy
        self.last_error = ""
        log.info("policy reloaded", extra={"version": policy.version, "digest": policy.digest})
        if self._on_reload is not None:
            self._on_reload("applied", policy.version)
        return True
