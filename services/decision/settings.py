"""Settings of the decision service (FRAUDMESH_* environment variables)."""

from __future__ import annotations

import dataclasses
import ipaddress

from services.common.settings import TextSecret, env_name, token_principals
from services.origination.settings import ShakenSettings


@dataclasses.dataclass(frozen=True, kw_only=True)
class DecisionSettings(ShakenSettings):
    """How decision serves Decide, reaches its dependencies and publishes its audit trail.

    Origination is verified in this process when ``sti_trust_anchors`` is set (the certificates
    come from origination's feed on Kafka, see services.origination.certfeed); otherwise through
    origination's Verify RPC at ``origination_target`` (empty: no origination checks at all).
    """

    service_name: str = "decision"
    grpc_bind: str = "127.0.0.1"
    grpc_port: int = 50051
    workers: int = 1
    max_concurrent_rpcs: int = 4000
    metrics_port: int = 9101
    # The switch's budget is the client deadline; these cap each dependency inside it.
    origination_target: str = "127.0.0.1:50052"
    # mTLS to origination: the CA that signed its server certificate, and this client's identity.
    tls_server_ca_file: str = ""
    tls_client_cert_file: str = ""
    tls_client_key_file: str = ""
    origination_timeout_s: float = 0.004
    # In-process verification: how long start-up may spend loading the certificate feed, and how
    # often one unknown x5u is reported to origination.
    cert_catch_up_s: float = 10.0
    cert_miss_interval_s: float = 30.0
    features_timeout_s: float = 0.004
    deadline_margin_s: float = 0.0005
    breaker_failures: int = 5
    breaker_reset_s: float = 1.0
    policy_file: str = "deploy/policy/default.yaml"
    policy_check_s: float = 1.0
    model_path: str = ""
    model_check_s: float = 5.0
    # Audit: every decision goes to calls.setup.v1 without the call waiting for Kafka.
    audit_enabled: bool = True
    audit_queue_max: int = 100_000
    # DecideStream: how many of one stream's calls are decided at once, and each message's deadline
    # when it does not send budget_ms.
    stream_window: int = 64
    stream_budget_s: float = 0.02
    # Admin API (redress, lists): off unless a token is configured. The token secret is one bearer
    # token, or lines of "<principal> <token>"; the principal is recorded as the actor of each change.
    # Plaintext only on loopback: any other bind needs mutual TLS (server cert, key, client CA).
    admin_port: int = 50061
    admin_bind: str = "127.0.0.1"
    admin_token: TextSecret | None = None
    admin_tls_cert_file: str = ""
    admin_tls_key_file: str = ""
    admin_tls_client_ca_file: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        problems: list[str] = []
        if not 0 <= self.grpc_port <= 65535 or not 0 <= self.admin_port <= 65535:
            problems.append("gRPC ports must be port numbers")
        if not 1 <= self.workers <= 64:
            problems.append(f"{env_name('workers')}: must be 1-64")
        for name in (
            "origination_timeout_s",
            "features_timeout_s",
            "breaker_reset_s",
            "policy_check_s",
            "model_check_s",
            "cert_catch_up_s",
            "cert_miss_interval_s",
        ):
            if getattr(self, name) <= 0:
                problems.append(f"{env_name(name)}: must be positive")
        if self.breaker_failures < 1 or self.audit_queue_max < 1:
            problems.append("breaker and queue sizes must be at least 1")
        client_tls = (self.tls_server_ca_file, self.tls_client_cert_file, self.tls_client_key_file)
        if any(client_tls) and not all(client_tls):
            problems.append(
                f"{env_name('tls_server_ca_file')}, {env_name('tls_client_cert_file')} and "
                f"{env_name('tls_client_key_file')} must be set together (or none, for plaintext)"
            )
        if not 1 <= self.stream_window <= 10_000 or self.stream_budget_s <= 0:
            problems.append(
                f"{env_name('stream_window')}: must be 1-10000 and {env_name('stream_budget_s')} positive"
            )
        admin_tls = (self.admin_tls_cert_file, self.admin_tls_key_file, self.admin_tls_client_ca_file)
        if any(admin_tls) and not all(admin_tls):
            problems.append(
                f"{env_name('admin_tls_cert_file')}, {env_name('admin_tls_key_file')} and "
                f"{env_name('admin_tls_client_ca_file')} must be set together (or none, for loopback only)"
            )
        if self.admin_token is not None and not all(admin_tls) and not _is_loopback(self.admin_bind):
            problems.append(
                f"{env_name('admin_bind')}: a non-loopback admin address needs mutual TLS "
                f"({env_name('admin_tls_cert_file')}, {env_name('admin_tls_key_file')}, "
                f"{env_name('admin_tls_client_ca_file')})"
            )
        if self.admin_token is not None:
            try:
                token_principals(self.admin_token)
            except ValueError as exc:
                problems.append(f"{env_name('admin_token')}: {exc}")
        if problems:
            raise ValueError("; ".join(problems))


def _is_loopback(bind: str) -> bool:
    """True for a loopback address or the name localhost (never for 0.0.0.0 or ::)."""
    host = bind.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
