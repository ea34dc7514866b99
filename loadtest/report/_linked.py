"""Campaigns after their first audio link: once any number of a campaign is linked by its audio, how
many of the campaign's later calls are flagged, and whether a number it first uses after that is
flagged on its very first call (time to detect a new number of a known campaign)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from loadtest.report._analysis import _Analysis, ratio
from loadtest.report._format import _fmt_pct, _table
from loadtest.report._reading import _Calls
from training.dataset import AUDIO_RUN


def _first_linked(dataset: Path) -> dict[str, int]:
    """Simulated campaign → the moment its first number was audio-linked (audio.json), when it was."""
    try:
        figures = json.loads((dataset / AUDIO_RUN).read_text())
    except (OSError, ValueError):
        return {}
    campaigns = figures.get("simulated_campaigns") or {}
    return {
        name: int(row["first_linked_ms"])
        for name, row in campaigns.items()
        if isinstance(row, dict) and isinstance(row.get("first_linked_ms"), int)
    }


def _after_link_section(calls: _Calls, analysis: _Analysis, dataset: Path) -> list[str]:
    """Per audio-linked campaign: its decided calls after the link, and its numbers first used after it."""
    linked = _first_linked(dataset)
    if not linked:
        return []
    a = analysis
    rows = []
    for index, name in enumerate(calls.campaign_names):
        since = linked.get(name)
        if since is None:
            continue
        mine = calls.campaign == index
        after = mine & (calls.time_ms >= since) & a.decided
        order = np.flatnonzero(mine)
        order = order[np.argsort(calls.time_ms[order], kind="stable")]
        _numbers, first = np.unique(calls.number[order], return_index=True)
        firsts = order[first]  # each number's first scored call in the campaign
        new = firsts[(calls.time_ms[firsts] >= since) & a.decided[firsts]]
        rows.append(
            [
                name,
                f"{int(after.sum()):,}",
                _fmt_pct(ratio(int((after & a.flagged).sum()), int(after.sum()))),
                _fmt_pct(ratio(int((after & a.blocked).sum()), int(after.sum()))),
                f"{len(new):,}",
                _fmt_pct(ratio(int(a.flagged[new].sum()), len(new))),
            ]
        )
    if not rows:
        return []
    return [
        "## Campaigns after their first audio link",
        "",
        "From the simulated moment the first segment of a campaign came back linked to an audio "
        "campaign (the tap publishes after the call), over the campaign's decided calls: the share "
        "flagged and blocked, and for the numbers it used for the first time after that moment, the "
        "share flagged on that first call. A number is linked by its own audio only, so a new number "
        "of a known campaign is caught on its first call by what else it shows, not by the link.",
        "",
        *_table(
            [
                "campaign",
                "decided after the link",
                "flagged",
                "blocked",
                "numbers first used after it",
                "first call flagged",
            ],
            rows,
        ),
    ]
