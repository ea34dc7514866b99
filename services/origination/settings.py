"""Settings of the origination service (FRAUDMESH_* environment variables)."""

from __future__ import annotations

import dataclasses

from services.common.settings import CommonSettings, env_name

DAY_S = 86_400


@dataclasses.dataclass(frozen=True, kw_only=True)
class ShakenSettings(CommonSettings):
    """What verifying a call's origination needs, wherever it runs (origination's Verify, decision).

    The same FRAUDMESH_* names configure both services, so one ConfigMap serves both.
    """

    # STIR/SHAKEN trust: PEM files of the STI-CA roots; CRLs (PEM or DER) of those CAs.
    sti_trust_anchors: tuple[str, ...] = ()
    sti_crl_files: tuple[str, ...] = ()
    freshness_s: int = 60
    cert_cache_entries: int = 4096
    # Caller-ID rules on top of CommonSettings' ranges.
    neighbor_digits: int = 7
    neighbor_history_days: float = 7.0
    # Presence proofs (services.origination.presence): a reported on-net call of the subscriber
    # older than this is taken to have ended (its CALL_ENDED lost).
    presence_call_max_s: float = 14_400.0
    dno_file: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        problems: list[str] = []
        if self.freshness_s < 1:
            problems.append(f"{env_name('freshness_s')}: must be at least 1 second")
        if self.cert_cache_entries < 1:
            problems.append(f"{env_name('cert_cache_entries')}: must be at least 1")
        if self.neighbor_history_days < 0:
            problems.append(f"{env_name('neighbor_history_days')}: must not be negative")
        if problems:
            raise ValueError("; ".join(problems))


@dataclasses.dataclass(frozen=True, kw_only=True)
class OriginationSettings(ShakenSettings):
    """How origination verifies calls (gRPC Verify) and keeps attestation statistics (agent)."""

    service_name: str = "origination"
    grpc_bind: str = "127.0.0.1"
    grpc_port: int = 50052
    max_concurrent_rpcs: int = 2000
    metrics_port: int = 9103
    # x5u fetching: allow-listed hosts ("sti.example.net" or ".example.net" for subdomains), an
    # optional CA bundle for their TLS servers (default: the system's), and pre-warm entries.
    x5u_allow_hosts: tuple[str, ...] = ()
    x5u_tls_ca_file: str = ""
    x5u_fetch_timeout_s: float = 2.0
    x5u_prewarm_file: str = ""
    cert_negative_ttl_s: float = 60.0  # a refused x5u is not fetched again, here or by the feed's readers
    # The consumer group reading the certificate misses decision processes report (sti.certs.misses.v1).
    cert_miss_group: str = "fraudmesh-origination-certificates"
    # Replay detection across replicas: one Redis SET NX per verified PASSporT, within this budget.
    replay_timeout_s: float = 0.003
    breaker_failures: int = 5
    breaker_reset_s: float = 1.0
    # Attestation statistics agent (consumes calls.setup.v1).
    stats_app_id: str = "fraudmesh-origination-stats"
    stats_batch_size: int = 500
    stats_batch_wait_s: float = 0.02
    stats_ttl_s: int = 8 * DAY_S
    dedupe_ttl_s: int = 2 * DAY_S

    def __post_init__(self) -> None:
        super().__post_init__()
        problems: list[str] = []
        if not 0 <= self.grpc_port <= 65535:
            problems.append(f"{env_name('grpc_port')}: must be a port number")
        if not 0 < self.cert_negative_ttl_s <= DAY_S:
            # a refusal on the certificate feed must lapse well within sti.certs.v1's retention
            problems.append(f"{env_name('cert_negative_ttl_s')}: must be positive and at most a day")
        if not self.cert_miss_group:
            problems.append(f"{env_name('cert_miss_group')}: must not be empty")
        if self.replay_timeout_s <= 0 or self.x5u_fetch_timeout_s <= 0:
            problems.append("replay and fetch timeouts must be positive")
        if self.breaker_failures < 1 or self.breaker_reset_s <= 0:
            problems.append("breaker settings must be positive")
        if self.max_concurrent_rpcs < 1:
            problems.append(f"{env_name('max_concurrent_rpcs')}: must be at least 1")
        if self.stats_batch_size < 1 or self.stats_batch_wait_s <= 0:
            problems.append("stats batch settings must be positive")
        if self.dedupe_ttl_s < 60 or self.stats_ttl_s < self.dedupe_ttl_s:
            problems.append(f"{env_name('dedupe_ttl_s')} must be >= 60 and <= {env_name('stats_ttl_s')}")
        if problems:
            raise ValueError("; ".join(problems))
