"""Settings of the reputation service (FRAUDMESH_* environment variables)."""

from __future__ import annotations

import dataclasses

from services.common.settings import CommonSettings, env_name

DAY_S = 86_400


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReputationSettings(CommonSettings):
    """How the reputation workers consume and where their per-number state lives."""

    service_name: str = "reputation"
    app_id: str = "fraudmesh-reputation"
    metrics_port: int = 9102
    dedupe_ttl_s: int = 2 * DAY_S
    number_ttl_s: int = 35 * DAY_S
    # A subscriber's presence lives this long after the last report applied, then reads as unknown:
    # twice the 3GPP default periodic re-registration (T3412, 54 min) rounded up to 3 h, so one late or
    # lost periodic report never drops a live subscriber, while a network that stops reporting does.
    presence_ttl_s: int = 3 * 3_600
    redis_retry_max_backoff_s: float = 5.0
    batch_size: int = 500
    batch_wait_s: float = 0.02
    # The hot path's batch (setups and CDRs): at 20k records/s a 20 ms wait fills ~400; a backlog
    # fills it whole, one pipelined Redis round trip per batch.
    hot_batch_size: int = 5000
    # The probation tier (services.reputation.scripts): entries per slot bucket (16,384 slots;
    # ~75 bytes each, so 64 ≈ 80 MB for a million numbers seen once) and how long a bucket lives.
    probation: bool = True
    probation_per_slot: int = 64
    probation_ttl_s: int = DAY_S

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batch_size < 1 or self.hot_batch_size < 1 or self.batch_wait_s <= 0:
            raise ValueError(f"{env_name('batch_size')} must be ≥ 1 and {env_name('batch_wait_s')} > 0")
        if self.dedupe_ttl_s < 60 or self.number_ttl_s < self.dedupe_ttl_s:
            raise ValueError(f"{env_name('dedupe_ttl_s')} must be ≥ 60 and ≤ {env_name('number_ttl_s')}")
        if self.presence_ttl_s < 60:
            raise ValueError(f"{env_name('presence_ttl_s')} must be ≥ 60")
        if self.probation_per_slot < 1 or self.probation_ttl_s < 60:
            per_slot, ttl = env_name("probation_per_slot"), env_name("probation_ttl_s")
            raise ValueError(f"{per_slot} must be ≥ 1 and {ttl} ≥ 60")
