"""Settings of the switch front (FRAUDMESH_* environment variables)."""

from __future__ import annotations

import dataclasses

from services.common.settings import CommonSettings, TextSecret, env_name


@dataclasses.dataclass(frozen=True, kw_only=True)
class SwitchFrontSettings(CommonSettings):
    """Where the SIP redirect front and the HTTP/JSON endpoint listen, and how they reach Decide.

    TLS: with FRAUDMESH_TLS_CERT_FILE/KEY_FILE/CLIENT_CA_FILE set (CommonSettings, as on every gRPC
    server) the HTTP endpoint speaks mutual TLS and SIP over TLS listens on ``sip_tls_port``.
    """

    service_name: str = "switchfront"
    metrics_port: int = 9106
    workers: int = 1
    sip_bind: str = "127.0.0.1"
    sip_port: int = 5060  # UDP and TCP
    sip_udp: bool = True
    sip_tcp: bool = True
    sip_tls_port: int = 0  # 0: no SIP over TLS
    http_bind: str = "127.0.0.1"
    http_port: int = 8088  # 0: no HTTP/JSON endpoint
    # Bearer token(s) the HTTP endpoint requires: one token, or lines of "<principal> <token>".
    http_token: TextSecret | None = None
    # Decide over gRPC; mTLS when the client files are set (the decision server's CA, our identity).
    decision_target: str = "127.0.0.1:50051"
    tls_server_ca_file: str = ""
    tls_client_cert_file: str = ""
    tls_client_key_file: str = ""
    # The switch's whole budget for one answer: past it the call is routed on (fail-open).
    decide_timeout_s: float = 0.02
    # ALLOW/LABEL route: empty keeps the INVITE's Request-URI. CHALLENGE: the screening IVR's URI.
    allow_contact: str = ""
    challenge_uri: str = ""
    label_header: str = ""
    # Trunks: source networks and SIP header → trunk id, tenant, ingress kind and region (YAML).
    trunks_file: str = "deploy/switchfront/trunks.yaml"
    # Emergency numbers beyond the numbering plan's: read from the decision policy's list.
    policy_file: str = "deploy/policy/default.yaml"
    # Retransmissions of one transaction are answered from here for 64*T1 (RFC 3261 timer H).
    transaction_ttl_s: float = 32.0
    transaction_max: int = 200_000

    def __post_init__(self) -> None:
        super().__post_init__()
        problems: list[str] = []
        for name in ("sip_port", "sip_tls_port", "http_port"):
            if not 0 <= getattr(self, name) <= 65535:
                problems.append(f"{env_name(name)}: must be a port number")
        if not self.sip_udp and not self.sip_tcp and not self.sip_tls_port and not self.http_port:
            problems.append("nothing to listen on: enable SIP over UDP, TCP or TLS, or HTTP")
        if self.sip_tls_port and not self.tls_cert_file:
            problems.append(f"{env_name('sip_tls_port')}: needs {env_name('tls_cert_file')} and its key")
        if not 0 < self.decide_timeout_s <= 5:
            problems.append(f"{env_name('decide_timeout_s')}: must be within (0, 5] seconds")
        client = (self.tls_server_ca_file, self.tls_client_cert_file, self.tls_client_key_file)
        if any(client) and not all(client):
            problems.append(
                "the three FRAUDMESH_TLS_SERVER_CA_FILE / CLIENT_CERT_FILE / CLIENT_KEY_FILE go together"
            )
        if self.workers < 1:
            problems.append(f"{env_name('workers')}: must be at least 1")
        if self.transaction_ttl_s <= 0 or self.transaction_max < 1:
            problems.append("the transaction cache needs a positive TTL and size")
        loopback = self.http_bind in {"127.0.0.1", "::1", "localhost"}
        if self.http_port and not loopback and not self.tls_cert_file and self.http_token is None:
            problems.append(
                f"{env_name('http_bind')}: off loopback the HTTP endpoint needs mutual TLS or a token"
            )
        if problems:
            raise ValueError("; ".join(problems))
