"""Policy as code: how a tenant turns a score and its reasons into ALLOW / LABEL / CHALLENGE / BLOCK.

A policy is one YAML file (see deploy/policy/default.yaml for every key with comments). It is
parsed and validated as a whole into an immutable ``Policy`` — a file that is not UTF-8, not YAML,
of the wrong shape anywhere (a list where a mapping belongs, a list as an action), with unknown
keys, thresholds out of order, unknown reason codes, languages without a label or numbers that are
not numbers is a ``PolicyError`` naming the path of the bad key (``tenants.demo-cn.language``);
nothing else escapes ``parse_policy``.

Hot reload happens off the call path: ``PolicyStore.run`` checks the file every ``check_every_s``
in a worker thread and swaps in a new policy only if it validates. ``current()`` is an attribute
read. A bad edit keeps the previous policy serving and is counted once (log + metric), never
half-applied.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import yaml

from fraudmesh.v1 import common_pb2, verdicts_pb2
from services.common.phone import NO_DEFAULT_REGION, InvalidNumberError, normalize
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
    """Per-tenant overrides: language for labels, shadow mode, and how a block is answered
    (e.g. ``608 Rejected`` of RFC 8688 where the interconnect expects it, instead of 603+)."""

    language: str
    shadow: bool
    block: SipMapping | None = None
    # reason code → action over the policy's own; a code forced to BLOCK here is proof for this tenant
    reason_actions: Mapping[str, int] = field(default_factory=dict)
    # ALLOWed domestic numbers from the international gateway carry the "International call" label
    international_label: bool = False
    # a subscriber whose number is proven spoofed to someone they know gets a notice (subscribers.notices.v1)
    notify_impersonated: bool = False


@dataclass(frozen=True, slots=True)
class Evidence:
    """What may BLOCK: proof may; a statistical score alone goes no further than ``score_max_action``
    unless its probability reaches ``score_block_at`` (a number, or ``None`` for "the model's own
    validated block threshold", never when the model carries none)."""

    proof: frozenset[str] = frozenset()
    proof_together: tuple[frozenset[str], ...] = ()
    score_max_action: int = BLOCK  # without an `evidence` key the policy behaves as before
    score_block_at: float | None = 0.0

    def is_proof(self, codes: frozenset[str]) -> bool:
        """True when the call's codes hold a proof, alone or as a complete group."""
        return bool(codes & self.proof) or any(group <= codes for group in self.proof_together)

    def score_alone(self, action: int, probability: float, model: Mapping[str, Any]) -> int:
        """The action a score may take without proof: at most ``score_max_action``, except BLOCK at or
        above the block threshold (the policy's, or the model's validated ``block_threshold`` from its
        metadata; never without either)."""
        if SEVERITY[action] <= SEVERITY[self.score_max_action]:
            return action
        block_at = self.score_block_at
        if block_at is None:
            validated = model.get("block_threshold")
            block_at = float(validated) if isinstance(validated, int | float) else None
        if action == BLOCK and block_at is not None and probability >= block_at:
            return BLOCK
        return self.score_max_action


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
    psap_callback_numbers: frozenset[str] = field(default_factory=frozenset)
    evidence: Evidence = field(default_factory=Evidence)
    international_labels: Mapping[str, str] = field(default_factory=dict)
    # reason code → the most a call carrying it gets without proof (e.g. a verified roamer)
    reason_caps: Mapping[str, int] = field(default_factory=dict)

    def capped(self, action: int, codes: frozenset[str]) -> int:
        """``action`` lowered to the strictest cap among ``codes`` (callers skip this for proof)."""
        for code in codes & self.reason_caps.keys():
            if SEVERITY[self.reason_caps[code]] < SEVERITY[action]:
                action = self.reason_caps[code]
        return action

    def is_psap_callback(self, caller_key: str, region: str) -> bool:
        """True when an attributed caller (its canonical key) is a listed PSAP callback number."""
        return bool(self.psap_callback_numbers) and caller_key in _psap_canonicals(
            self.psap_callback_numbers, region
        )

    def thresholds_for(self, ingress_kind: int) -> Thresholds:
        """The thresholds of calls from one ingress kind (the defaults when not overridden)."""
        return self.ingress_thresholds.get(ingress_kind, self.thresholds)

    def tenant(self, tenant: str) -> TenantPolicy:
        """A tenant's language and shadow flag (the policy defaults for unknown tenants)."""
        found = self.tenants.get(tenant)
        return found if found is not None else TenantPolicy(self.default_language, self.shadow)

    def block_for(self, tenant: str) -> SipMapping:
        """The SIP answer a tenant gives a blocked call (the policy's unless the tenant names its own)."""
        found = self.tenants.get(tenant)
        return found.block if found is not None and found.block is not None else self.block

    def label_for(self, tenant: str) -> str:
        """The display label in the tenant's language."""
        return self.labels[self.tenant(tenant).language]

    def reason_actions_for(self, tenant: str) -> Mapping[str, int]:
        """Reason code → forced action for a tenant's calls (its overrides over the policy's)."""
        found = self.tenants.get(tenant)
        if found is None or not found.reason_actions:
            return self.reason_actions
        return {**self.reason_actions, **found.reason_actions}

    def tenant_proof(self, tenant: str) -> frozenset[str]:
        """Codes a tenant declared proof by forcing BLOCK for them (e.g. a law that requires the block)."""
        found = self.tenants.get(tenant)
        if found is None:
            return frozenset()
        return frozenset(code for code, action in found.reason_actions.items() if action == BLOCK)

    def notifies_impersonated(self, tenant: str) -> bool:
        """True when a tenant tells subscribers their number was proven spoofed to someone they know."""
        found = self.tenants.get(tenant)
        return found is not None and found.notify_impersonated

    def international_label_for(self, tenant: str) -> str:
        """The "International call" label for an ALLOWed call, '' unless the tenant wants one."""
        found = self.tenants.get(tenant)
        if found is None or not found.international_label:
            return ""
        return self.international_labels.get(found.language, "")


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
    "psap_callback_numbers",
    "evidence",
    "international_labels",
    "reason_caps",
}
_EMERGENCY_DIGITS: Final = re.compile(r"[0-9]{2,15}")
_SEPARATORS: Final = re.compile(r"[\s\-.()]")


@functools.lru_cache(maxsize=256)
def _psap_canonicals(entries: frozenset[str], region: str) -> frozenset[str]:
    """PSAP callback entries as canonical numbers of one tenant region (validated at parse time)."""
    found: set[str] = set()
    for entry in entries:
        try:
            found.add(normalize(entry, region, allow_unallocated=True).canonical)
        except (InvalidNumberError, ValueError):
            continue
    return frozenset(found)


def _require(mapping: Any, where: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(mapping, dict):
        raise PolicyError(f"{where}: expected a mapping, got {_kind(mapping)}")
    if not all(isinstance(key, str) for key in mapping):
        raise PolicyError(f"{where}: keys must be text")
    unknown = set(mapping) - allowed
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    missing = required - set(mapping)
    if missing:
        raise PolicyError(f"{where}: missing key(s) {', '.join(sorted(missing))}")
    return mapping


def _kind(value: Any) -> str:
    """A YAML-ish name for a value's type, for error messages (never the value itself)."""
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false"}.get(type(value), "a number")


def _mapping(raw: Any, where: str) -> dict[Any, Any]:
    """An optional mapping section ({} when absent or null)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: expected a mapping, got {_kind(raw)}")
    return raw


def _text_list(raw: Any, where: str) -> list[str]:
    """An optional list of text or integer items, as text ([] when absent or null)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise PolicyError(f"{where}: expected a list, got {_kind(raw)}")
    for index, item in enumerate(raw):
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise PolicyError(f"{where}[{index}]: expected text or a number, got {_kind(item)}")
    return [str(item) for item in raw]


def _emergency_numbers(raw: Any, where: str) -> frozenset[str]:
    numbers = _text_list(raw, where)
    for index, number in enumerate(numbers):
        if not _EMERGENCY_DIGITS.fullmatch(_SEPARATORS.sub("", number)):
            raise PolicyError(f"{where}[{index}]: must be a national short number (2-15 digits)")
    return frozenset(_SEPARATORS.sub("", number) for number in numbers)


def _psap_numbers(raw: Any, where: str) -> frozenset[str]:
    numbers = [number.strip() for number in _text_list(raw, where)]
    for index, number in enumerate(numbers):
        if number.startswith("+"):
            try:
                normalize(number, NO_DEFAULT_REGION, allow_unallocated=True)
                continue
            except InvalidNumberError:
                pass
        elif _EMERGENCY_DIGITS.fullmatch(_SEPARATORS.sub("", number)):
            continue
        raise PolicyError(f"{where}[{index}]: must be an E.164 number (+...) or national digits")
    return frozenset(numbers)


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
    if not isinstance(raw, str) or raw not in ACTIONS:
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


def parse_policy(text: str | bytes, source: str = "<policy>") -> Policy:
    """Validate a policy document; raises PolicyError (and nothing else) naming ``source`` and the key."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML ({exc})") from None
    except (ValueError, TypeError, RecursionError, OverflowError) as exc:  # e.g. a huge or odd scalar
        raise PolicyError(f"{source}: not usable YAML ({type(exc).__name__})") from None
    try:
        return _build(raw, text)
    except PolicyError as exc:
        raise PolicyError(f"{source}: {exc}") from None
    except Exception as exc:  # a shape the validation above did not foresee: still a rejected file
        raise PolicyError(f"{source}: unusable policy ({type(exc).__name__})") from None


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
    if not isinstance(default_language, str) or default_language not in labels:
        raise PolicyError("default_language: has no entry in labels")
    shadow = data.get("shadow", False)
    if not isinstance(shadow, bool):
        raise PolicyError("shadow: must be true or false")
    ingress: dict[int, Thresholds] = {}
    for name, value in _mapping(data.get("ingress_thresholds"), "ingress_thresholds").items():
        if not isinstance(name, str) or name not in INGRESS:
            raise PolicyError(
                f"ingress_thresholds.{name}: unknown ingress kind (one of {', '.join(INGRESS)})"
            )
        ingress[INGRESS[name]] = _thresholds(value, f"ingress_thresholds.{name}")
    international = data.get("international_labels") or {}
    if not isinstance(international, dict) or not all(
        isinstance(k, str) and k in labels and isinstance(v, str) and v for k, v in international.items()
    ):
        raise PolicyError("international_labels: must map languages of `labels` to non-empty label text")
    tenants: dict[str, TenantPolicy] = {}
    tenant_keys = {
        "language",
        "shadow",
        "block",
        "reason_actions",
        "international_label",
        "notify_impersonated",
    }
    for name, value in _mapping(data.get("tenants"), "tenants").items():
        entry = _require(value, f"tenants.{name}", tenant_keys, set())
        language = entry.get("language", default_language)
        if not isinstance(language, str) or language not in labels:
            raise PolicyError(f"tenants.{name}.language: has no entry in labels")
        tenant_shadow = entry.get("shadow", shadow)
        if not isinstance(tenant_shadow, bool):
            raise PolicyError(f"tenants.{name}.shadow: must be true or false")
        block = _sip(entry["block"], f"tenants.{name}.block") if "block" in entry else None
        wants_label = entry.get("international_label", False)
        if not isinstance(wants_label, bool):
            raise PolicyError(f"tenants.{name}.international_label: must be true or false")
        if wants_label and language not in international:
            raise PolicyError(f"tenants.{name}.international_label: international_labels has no {language!r}")
        notify = entry.get("notify_impersonated", False)
        if not isinstance(notify, bool):
            raise PolicyError(f"tenants.{name}.notify_impersonated: must be true or false")
        tenants[str(name)] = TenantPolicy(
            language,
            tenant_shadow,
            block,
            MappingProxyType(_reason_actions(entry.get("reason_actions"), f"tenants.{name}.reason_actions")),
            wants_label,
            notify,
        )
    reason_actions = _reason_actions(data.get("reason_actions"), "reason_actions")
    never_sole = _text_list(data.get("never_sole_reasons"), "never_sole_reasons")
    for index, code in enumerate(never_sole):
        if code not in REASONS:
            raise PolicyError(f"never_sole_reasons[{index}]: unknown reason code")
    return Policy(
        version=version.strip(),
        digest=hashlib.sha256(text.encode()).hexdigest()[:12],
        thresholds=_thresholds(data["thresholds"], "thresholds"),
        ingress_thresholds=MappingProxyType(ingress),
        shadow=shadow,
        default_language=default_language,
        labels=MappingProxyType(dict(labels)),
        tenants=MappingProxyType(tenants),
        block=_sip(data["block"], "block"),
        challenge=_sip(
            data.get("challenge") or {"status_code": 480, "reason_phrase": "Temporarily Unavailable"},
            "challenge",
        ),
        deny_action=_action(data.get("deny_action", "BLOCK"), "deny_action"),
        reason_actions=MappingProxyType(reason_actions),
        never_sole_reasons=frozenset(never_sole),
        degraded_max_action=_action(data.get("degraded_max_action", "LABEL"), "degraded_max_action"),
        emergency_numbers=_emergency_numbers(data.get("emergency_numbers"), "emergency_numbers"),
        psap_callback_numbers=_psap_numbers(data.get("psap_callback_numbers"), "psap_callback_numbers"),
        evidence=_evidence(data.get("evidence"), "evidence"),
        international_labels=MappingProxyType(dict(international)),
        reason_caps=MappingProxyType(_reason_actions(data.get("reason_caps"), "reason_caps")),
    )


def _reason_actions(raw: Any, where: str) -> dict[str, int]:
    actions: dict[str, int] = {}
    for code, action in _mapping(raw, where).items():
        if not isinstance(code, str) or code not in REASONS:
            raise PolicyError(f"{where}.{code}: unknown reason code")
        actions[code] = _action(action, f"{where}.{code}")
    return actions


def _evidence(raw: Any, where: str) -> Evidence:
    if raw is None:
        return Evidence()
    data = _require(raw, where, {"proof", "proof_together", "score_max_action", "score_block_at"}, set())
    proof = _text_list(data.get("proof"), f"{where}.proof")
    groups = data.get("proof_together") or []
    if not isinstance(groups, list):
        raise PolicyError(f"{where}.proof_together: must be a list of lists of reason codes")
    together = []
    for index, group in enumerate(groups):
        codes = _text_list(group, f"{where}.proof_together[{index}]")
        if len(codes) < 2:
            raise PolicyError(f"{where}.proof_together[{index}]: a group needs two or more codes")
        together.append(frozenset(codes))
    for code in [*proof, *(code for group in together for code in group)]:
        if code not in REASONS:
            raise PolicyError(f"{where}: unknown reason code {code!r}")
    block_at = data.get("score_block_at", "model")
    if block_at == "model":
        score_block_at = None
    elif isinstance(block_at, int | float) and not isinstance(block_at, bool) and block_at >= 0.0:
        score_block_at = float(block_at)
    else:
        raise PolicyError(f"{where}.score_block_at: a probability (above 1: never) or 'model'")
    return Evidence(
        proof=frozenset(proof),
        proof_together=tuple(together),
        score_max_action=_action(data.get("score_max_action", "CHALLENGE"), f"{where}.score_max_action"),
        score_block_at=score_block_at,
    )


class PolicyStore:
    """The current policy, reloaded off the call path when its file changes; a bad file keeps the last.

    ``current()`` never does I/O and never raises. ``run()`` (a background task) checks the file
    every ``check_every_s`` in a worker thread; ``check_now()`` does one check synchronously. A
    rejected edit is counted once per distinct file state (modification time and size), so the
    metric counts bad edits, not checks.
    """

    def __init__(
        self,
        path: Path,
        *,
        check_every_s: float = 1.0,
        on_reload: Callable[[str, str], None] | None = None,
    ) -> None:
        self.path = path
        self._check_every = check_every_s
        self._on_reload = on_reload
        self._stamp = self._stat()
        self._policy = parse_policy(path.read_bytes(), str(path))  # a bad file at start-up is fatal
        self.last_error = ""

    @property
    def policy(self) -> Policy:
        """The policy in force."""
        return self._policy

    def _stat(self) -> tuple[int, int, int]:
        info = os.stat(self.path)
        return info.st_mtime_ns, info.st_size, info.st_ino

    def current(self) -> Policy:
        """The policy to apply now: an attribute read (no I/O, never raises)."""
        return self._policy

    async def run(self) -> None:
        """Check the file every ``check_every_s`` until cancelled, off the event loop."""
        while True:
            await asyncio.sleep(self._check_every)
            await asyncio.to_thread(self.check_now)

    def check_now(self) -> bool:
        """Swap in the file's policy if it changed and validates; True when a new policy is active."""
        try:
            stamp = self._stat()
            if stamp == self._stamp:
                return False
            self._stamp = stamp
            policy = parse_policy(self.path.read_bytes(), str(self.path))
        except (OSError, PolicyError) as exc:
            self._rejected(str(exc))
            return False
        except Exception as exc:  # never let a reload kill the watcher
            self._rejected(f"{self.path}: unusable policy ({type(exc).__name__})")
            return False
        self._policy = policy
        self.last_error = ""
        log.info("policy reloaded", extra={"version": policy.version, "digest": policy.digest})
        if self._on_reload is not None:
            self._on_reload("applied", policy.version)
        return True

    def _rejected(self, error: str) -> None:
        self.last_error = error
        log.error("policy reload rejected; the previous policy stays active", extra={"error": error})
        if self._on_reload is not None:
            self._on_reload("rejected", self._policy.version)
