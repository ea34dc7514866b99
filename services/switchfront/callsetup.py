"""A SIP INVITE as the CallSetup decision reads, and the trunk it arrived on.

From → calling number and display name; P-Asserted-Identity (the first, when several) → the
asserted identity; To → called number; the Request-URI verbatim (emergency URNs live there);
Diversion headers (RFC 5806, newest first on the wire) or, without them, History-Info retargets
(RFC 7044 with RFC 4458 ``cause``) → diversions, oldest first; every Identity header verbatim;
User-Agent verbatim. The trunk is the configured header's value when the operator names one and
the switch sent it, else the first trunk whose networks hold the source address, else the default;
the trunk gives tenant, ingress kind and region.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from google.protobuf.timestamp_pb2 import Timestamp

from fraudmesh.v1 import call_pb2, common_pb2
from services.switchfront.sip import NameAddr, Request, parse_name_addr

__all__ = ["Trunk", "TrunkError", "Trunks", "build_setup", "identity_of"]

KINDS: Final = {
    name.removeprefix("INGRESS_KIND_"): value
    for name, value in common_pb2.IngressKind.items()
    if value != common_pb2.INGRESS_KIND_UNSPECIFIED
}
# RFC 4458 cause values → the Diversion reasons of RFC 5806.
CAUSES: Final = {
    "302": "unconditional",
    "486": "user-busy",
    "408": "no-answer",
    "480": "unavailable",
    "503": "unavailable",
    "487": "away",
    "380": "deflection",
    "404": "unknown",
}
MAX_DIVERSIONS: Final = 16


class TrunkError(ValueError):
    """The trunks file is unreadable or wrong; the message names the entry."""


@dataclass(frozen=True, slots=True)
class Trunk:
    """One ingress trunk: its id, the tenant it serves, its kind and region, its source networks."""

    id: str
    tenant: str
    kind: int
    region: str
    sources: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()


class Trunks:
    """Trunk lookup by header value or source address, with a default for everything else."""

    def __init__(self, trunks: list[Trunk], default: Trunk, header: str) -> None:
        self.by_id = {trunk.id: trunk for trunk in trunks}
        self.trunks = trunks
        self.default = default
        self.header = header.lower()

    @classmethod
    def load(cls, path: Path) -> Trunks:
        """Read and check the YAML trunks file (deploy/switchfront/trunks.yaml shows the shape)."""
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise TrunkError(f"{path}: {exc}") from None
        if not isinstance(raw, dict):
            raise TrunkError(f"{path}: expected a mapping with 'default' and 'trunks'")
        default = _trunk(raw.get("default"), "default", allow_sources=False)
        header = raw.get("header", "")
        if not isinstance(header, str):
            raise TrunkError(f"{path}: header: must be a header name")
        entries = raw.get("trunks") or []
        if not isinstance(entries, list):
            raise TrunkError(f"{path}: trunks: must be a list")
        trunks = [
            _trunk(entry, f"trunks[{index}]", allow_sources=True) for index, entry in enumerate(entries)
        ]
        if len({trunk.id for trunk in trunks}) != len(trunks):
            raise TrunkError(f"{path}: trunk ids must be unique")
        return cls(trunks, default, header)

    def find(self, request: Request, source_ip: str) -> Trunk:
        """The trunk a request arrived on."""
        if self.header:
            named = request.first(self.header).strip()
            if named:
                return self.by_id.get(named) or Trunk(
                    named[:64], self.default.tenant, self.default.kind, self.default.region
                )
        try:
            address = ipaddress.ip_address(source_ip)
        except ValueError:
            return self.default
        for trunk in self.trunks:
            if any(address in network for network in trunk.sources):
                return trunk
        return self.default


def _trunk(raw: Any, where: str, *, allow_sources: bool) -> Trunk:
    if not isinstance(raw, dict):
        raise TrunkError(f"{where}: expected a mapping")
    known = {"id", "tenant", "kind", "region"} | ({"sources"} if allow_sources else set())
    unknown = set(raw) - known
    if unknown:
        raise TrunkError(f"{where}: unknown keys {sorted(unknown)}")
    trunk_id, tenant, kind, region = (raw.get(key, "") for key in ("id", "tenant", "kind", "region"))
    if not isinstance(trunk_id, str) or not trunk_id or not isinstance(tenant, str) or not tenant:
        raise TrunkError(f"{where}: id and tenant are required text")
    if kind not in KINDS:
        raise TrunkError(f"{where}.kind: one of {sorted(KINDS)}")
    if not isinstance(region, str) or not 2 <= len(region) <= 6:
        raise TrunkError(f"{where}.region: an ISO 3166 code such as CN or CN-GD")
    try:
        sources = tuple(ipaddress.ip_network(str(net)) for net in raw.get("sources", []))
    except ValueError as exc:
        raise TrunkError(f"{where}.sources: {exc}") from None
    return Trunk(trunk_id, tenant, KINDS[kind], region, sources)


def identity_of(request: Request) -> NameAddr:
    """The caller's identity as the network asserts it: the first P-Asserted-Identity, else From."""
    asserted = request.all("p-asserted-identity")
    return parse_name_addr(asserted[0] if asserted else request.first("from"))


def build_setup(request: Request, trunk: Trunk, now: float | None = None) -> call_pb2.CallSetup:
    """The CallSetup of an INVITE (raises SipError for addresses that do not parse)."""
    sender = parse_name_addr(request.first("from"))
    callee = parse_name_addr(request.first("to"))
    asserted = request.all("p-asserted-identity")
    stamp = Timestamp()
    stamp.FromNanoseconds(int((time.time() if now is None else now) * 1e9))
    setup = call_pb2.CallSetup(
        call_id=request.call_id,
        event_time=stamp,
        tenant=trunk.tenant,
        calling_number=sender.uri,
        p_asserted_identity=parse_name_addr(asserted[0]).uri if asserted else "",
        display_name=sender.display,
        called_number=callee.uri,
        identity_headers=request.all("identity"),
        ingress_trunk_id=trunk.id,
        ingress_kind=trunk.kind,  # type: ignore[arg-type]
        ingress_region=trunk.region,
        user_agent=request.first("user-agent"),
        request_uri=request.uri,
    )
    setup.diversions.extend(_diversions(request))
    return setup


def _diversions(request: Request) -> list[call_pb2.Diversion]:
    diversion = request.all("diversion")
    if diversion:
        out = []
        for value in reversed(diversion[:MAX_DIVERSIONS]):  # the wire has the newest first
            address = parse_name_addr(value)
            counter = address.params.get("counter", "1")
            out.append(
                call_pb2.Diversion(
                    number=address.uri,
                    reason=address.params.get("reason", "unknown")[:32],
                    counter=int(counter)
                    if counter.isascii() and counter.isdigit() and len(counter) < 4
                    else 1,
                )
            )
        return out
    return _history_info(request.all("history-info")[: MAX_DIVERSIONS + 1])


def _history_info(values: list[str]) -> list[call_pb2.Diversion]:
    """Retargets recorded in History-Info: an entry with an RFC 4458 cause diverted from the one before."""
    entries = [parse_name_addr(value) for value in values]
    out: list[call_pb2.Diversion] = []
    for previous, entry in itertools.pairwise(entries):
        cause = _uri_param(entry.uri, "cause")
        if cause:
            out.append(
                call_pb2.Diversion(
                    number=_cause_removed(previous.uri), reason=CAUSES.get(cause, "unknown"), counter=1
                )
            )
    return out


def _uri_param(uri: str, name: str) -> str:
    for part in _without_headers(uri).split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == name:
            return value.strip()
    return ""


def _cause_removed(uri: str) -> str:
    """A History-Info target as a number: its URI headers and RFC 4458 cause dropped."""
    return re.sub(r";cause=[^;]*", "", _without_headers(uri), flags=re.IGNORECASE)


def _without_headers(uri: str) -> str:
    return uri.partition("?")[0]
