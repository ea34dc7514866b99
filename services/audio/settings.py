"""Settings of the audio service (FRAUDMESH_* environment variables)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from services.common.settings import CommonSettings, env_name

DAY_S = 86_400
DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "synthetic-lfcc-lr.json"


@dataclasses.dataclass(frozen=True, kw_only=True)
class AudioSettings(CommonSettings):
    """Limits on segments, campaign matching and discovery, index retention, the detector model."""

    service_name: str = "audio"
    app_id: str = "fraudmesh-audio"
    metrics_port: int = 9105  # the chart and the Dockerfile; 9104 is origination stats
    redis_timeout_s: float = 1.0
    max_segment_s: float = 35.0
    min_segment_s: float = 0.5
    match_min_votes: int = 10
    match_min_coverage: float = 0.6
    speed_probes: tuple[str, ...] = ("0.98", "1.02", "0.96", "1.04")
    campaign_min_callers: int = 5
    campaign_window_s: int = DAY_S
    candidate_ttl_s: int = 2 * DAY_S
    campaign_ttl_s: int = 30 * DAY_S
    dedupe_ttl_s: int = 2 * DAY_S
    synthetic_model_path: Path = DEFAULT_MODEL

    def __post_init__(self) -> None:
        super().__post_init__()
        problems: list[str] = []
        if not 0 < self.min_segment_s < self.max_segment_s:
            problems.append(f"{env_name('min_segment_s')} must be > 0 and < {env_name('max_segment_s')}")
        if not 0.0 < self.match_min_coverage <= 1.0 or self.match_min_votes < 1:
            problems.append("match thresholds: coverage within (0, 1], votes ≥ 1")
        if self.campaign_min_callers < 2:
            problems.append(f"{env_name('campaign_min_callers')} must be ≥ 2")
        if self.candidate_ttl_s < self.campaign_window_s:
            problems.append(f"{env_name('candidate_ttl_s')} must cover {env_name('campaign_window_s')}")
        try:
            if any(not 0.8 <= float(p) <= 1.25 for p in self.speed_probes):
                problems.append(f"{env_name('speed_probes')}: factors within [0.8, 1.25]")
        except ValueError:
            problems.append(f"{env_name('speed_probes')}: comma-separated numbers")
        if not self.synthetic_model_path.is_file():
            problems.append(f"{env_name('synthetic_model_path')}: no file at {self.synthetic_model_path}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def probes(self) -> tuple[float, ...]:
        """Query speed factors tried, in order, when the recording is not found at its own speed."""
        return tuple(float(p) for p in self.speed_probes)
