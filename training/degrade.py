"""Training rows as serving sees them when a dependency misses its sub-deadline.

A decision made while Redis did not answer has every reputation and audio feature missing (NaN);
one made while origination did not answer has its features missing. The trainer's point-in-time
rows never miss anything, so a model trained on them alone has never seen a degraded call and
scores one from whatever its missing-value branches happened to learn. ``with_degraded`` appends,
to the training rows only, copies of a random share of them with one dependency's features
missing, at the rates serving produces (by default a pessimistic 2 % each; production should run
far below that, and the decision never lets a degraded decision go beyond the policy's
``degraded_max_action``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from services.common.features import FEATURES, Source

__all__ = ["DEGRADED_SHARES", "Degradation", "with_degraded"]

_COLUMNS: Final = {
    "reputation": np.array(
        [i for i, f in enumerate(FEATURES) if f.source in (Source.REPUTATION, Source.AUDIO)], dtype=np.int64
    ),
    "origination": np.array(
        [i for i, f in enumerate(FEATURES) if f.source is Source.ORIGINATION], dtype=np.int64
    ),
}


@dataclass(frozen=True)
class Degradation:
    """The share of training rows copied with each dependency's features missing."""

    reputation: float = 0.02
    origination: float = 0.02


DEGRADED_SHARES: Final = Degradation()


def with_degraded(
    X: npt.NDArray[np.float32],  # noqa: N803
    rows: npt.NDArray[np.int64],
    shares: Degradation,
    seed: int,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """``X`` with degraded copies of some of ``rows`` appended, and the source row of each copy."""
    rng = np.random.default_rng(seed)
    copies: list[npt.NDArray[np.float32]] = []
    sources: list[npt.NDArray[np.int64]] = []
    for name, share in (("reputation", shares.reputation), ("origination", shares.origination)):
        if share <= 0 or len(rows) == 0:
            continue
        picked = rng.choice(rows, size=max(1, round(share * len(rows))), replace=False)
        block = X[picked].copy()
        block[:, _COLUMNS[name]] = np.nan
        copies.append(block)
        sources.append(picked)
    if not copies:
        return X, np.zeros(0, dtype=np.int64)
    return np.vstack([X, *copies]), np.concatenate(sources)
