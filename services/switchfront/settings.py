"""Settings of the switch front (FRAUDMESH_* environment variables)."""

from __future__ import annotations

import dataclasses

from services.common.settings import TextSecret, env_name
from services.decision.settings import DecisionSettings


@dataclasses.dataclass(frozen=True, kw_only=True)
class SwitchFrontSettings(DecisionSettings):
    """Where the SIP redirect front and the HTTP/JSON endpoint listen, and how they reach Decide.

    Decide runs in this process (the decision core, configured by the decision service's own
    settings: model, policy, Redis, trust anchors, sub-deadlines, breakers, audit) unless
    ``decision_target`` names a decision service to call over gRPC; the TLS client files
    (FRAUDMESH_TLS_SERVER_CA_FILE, _CLIENT_CERT_FILE, _CLIENT_KEY_FILE) then secure that channel.
    With FRAUDMESH_TLS_CERT_FILE/KEY_FILE/CLIENT_CA_FILE set (as on every gRPC server) the HTTP
    endpoint speaks mutual TLS and SIP over TLS listens on ``sip_tls_port``. The policy file is
    read for its ``emergency_numbers`` in either mode.
    """

    service_name: str = "switchfront"
    metrics_port: int = 9106
    sip_bind: str = "127.0.0.1"
    sip_port: int = 5060  # UDP and TCP
    sip_udp: bool = True
    sip_tcp: bool = True
    sip_tls_port: int = 0  # 0: no SIP over TLS
    http_bind: str = "127.0.0.1"
    http_port: int = 8088  # 0: no HTTP/JSON endpoint
    # A plaintext listener (on http_bind) serving only /healthz and /readyz, for the kubelet's probes
    # when the HTTP endpoint speaks mutual TLS. 0: none.
    health_port: int = 0
    # Bearer token(s) the HTTP endpoint requires: one token, or lines of "<principal> <token>".
    http_token: TextSecret | None = None
    # Empty: the decision core runs in this process. Else a decision service's gRPC address.
    decision_target: str = ""
    # The switch's whole budget for one answer: past it the call is routed on (fail-open).
    decide_timeout_s: float = 0.02
    # ALLOW/LABEL route: empty keeps the INVITE's Request-URI. CHALLENGE: the screening IVR's URI.
    allow_contact: str = ""
    challenge_uri: str = ""
    label_header: str = ""
    # Trunks: source networks and SIP header → trunk id, tenant, ingress kind and region (YAML).
    trunks_file: str = "deploy/switchfront/trunks.yaml"
    # Retransmissions of one transaction are answered from here for 64*T1 (RFC 3261 timer H).
    transaction_ttl_s: float = 32.0
    transaction_max: int = 200_000

    def __post_init__(self) -> None:
        super().__post_init__()
        problems: list[str] = []
        for name in ("sip_port", "sip_tls_port", "http_port", "health_port"):
            if not 0 <= getattr(self, name) <= 65535:
                problems.append(f"{env_name(name)}: must be a port number")
        if not self.sip_udp and not self.sip_tcp and not self.sip_tls_port and not self.http_port:
            problems.append("nothing to listen on: enable SIP over UDP, TCP or TLS, or HTTP")
        if self.sip_tls_port and not self.tls_cert_file:
            problems.append(f"{env_name('sip_tls_port')}: needs {env_name('tls_cert_file')} and its key")
        if not 0 < self.decide_timeout_s <= 5:
            problems.append(f"{env_name('decide_timeout_s')}: must be within (0, 5] seconds")
        if self.transaction_ttl_s <= 0 or self.transaction_max < 1:
            problems.append("the transaction cache needs a positive TTL and size")
        loopback = self.http_bind in {"127.0.0.1", "::1", "localhost"}
        if self.http_port and not loopback and not self.tls_cert_file and self.http_token is None:
            problems.append(
                f"{env_name('http_bind')}: off loopback the HTTP endpoint needs mutual TLS or a token"
            )
        if problems:
            raise ValueError("; ".join(problems))
