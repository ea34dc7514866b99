"""Settings of the decision service (FRAUDMESH_* environment variables)."""

from __future__ import annotations

import dataclasses

from services.common.settings import CommonSettings, TextSecret, env_name


@dataclasses.dataclass(frozen=True, kw_only=True)
class DecisionSettings(CommonSettings):
    """How decision serves Decide, reaches its dependencies and publishes its audit trail."""

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
    features_timeout_s: float = 0.004
    deadline_margin_s: float = 0.0005
    breaker_failures: int = 5
    breaker_reset_s: float = 1.0
    policy_file: str = "deploy/policy/default.yaml"
    policy_check_s: float = 1.0
    model_path: str = ""
    # Audit: every decision goes to calls.setup.v1 without the call waiting for Kafka.
    audit_enabled: bool = True
    audit_queue_max: int = 100_000
    recent_decisions_queue_max: int = 10_000
    # Admin API (redress, lists): off unless a token is configured; plaintext only on loopback.
    admin_port: int = 50061
    admin_bind: str = "127.0.0.1"
    admin_token: TextSecret | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        problems: list[str] = []
        if not 0 <= self.grpc_port <= 65535 or not 0 <= self.admin_port <= 65535:
            problems.append("gRPC ports must be port numbers")
        if not 1 <= self.workers <= 64:
            problems.append(f"{env_name('workers')}: must be 1-64")
        for name in ("origination_timeout_s", "features_timeout_s", "breaker_reset_s", "policy_check_s"):
            if getattr(self, name) <= 0:
                problems.append(f"{env_name(name)}: must be positive")
        if self.breaker_failures < 1 or self.audit_queue_max < 1 or self.recent_decisions_queue_max < 1:
            problems.append("breaker and queue sizes must be at least 1")
        client_tls = (self.tls_server_ca_file, self.tls_client_cert_file, self.tls_client_key_file)
        if any(client_tls) and not all(client_tls):
            problems.append(
                f"{env_name('tls_server_ca_file')}, {env_name('tls_client_cert_file')} and "
                f"{env_name('tls_client_key_file')} must be set together (or none, for plaintext)"
            )
        if self.admin_token is not None and len(self.admin_token.reveal()) < 16:
            problems.append(f"{env_name('admin_token')}: must be at least 16 bytes")
        if problems:
            raise ValueError("; ".join(problems))
