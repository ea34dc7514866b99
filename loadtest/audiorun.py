"""What a run's audio did: verdicts read back, campaigns discovered, numbers linked against truth.

The main job publishes rendered segments (``loadtest.audio.attach``) and then asks three places what
became of them: audio.verdicts.v1 (one verdict per segment, read from the offsets before the
replay), the audio service's campaign index (campaigns that did not exist before the run were
discovered by it), and reputation's per-number state read through FeatureReader with the run's
pseudonymiser (how many of each simulated campaign's numbers ended up linked). The figures go to
``audio.json`` beside the dataset for the report; only "segments published but no verdicts" is a
failure.

The run's audio worker keeps its fingerprint index and campaigns in a Redis database of its own
(``AUDIO_DB`` on the same local server), emptied at the start of the run: a rerun replays the same
audio from numbers with new pseudonyms, so a shared index would see every earlier run's recording
"played by another caller" and turn people's conversations into campaigns after a few reruns.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from fraudmesh.v1 import events_pb2
from loadtest.kafkaio import read_matching
from loadtest.report import kind_name
from services.common import keys
from services.common.featurestore import FeatureReader
from services.common.identity import attribute_record
from services.common.phone import InvalidNumberError
from services.common.pseudonym import Pseudonymizer
from services.common.redisstore import make_sync_redis
from services.common.settings import CommonSettings
from services.common.topics import AUDIO_VERDICTS
from training.dataset import AUDIO_RUN, CALLS, EVENTS, read_records

AUDIO_DB = 15


def fresh_audio_store(settings: CommonSettings, db: int = AUDIO_DB) -> tuple[str, Any]:
    """The URL of the run's own (just emptied) audio database, and a client on it."""
    url = urlparse(settings.redis_url)._replace(path=f"/{db}").geturl()
    client = make_sync_redis(dataclasses.replace(settings, redis_url=url))
    client.flushdb()
    return url, client


def campaign_index(client: Any) -> set[str]:
    """Every audio campaign id the audio service holds in Redis now."""
    return {c.decode() for c in client.zrange(keys.audio_campaign_index_key(), 0, -1)}


def read_verdicts(
    bootstrap: str,
    since: Mapping[int, int],
    segment_ids: Collection[str],
    timeout_s: float,
    alive: Callable[[], bool],
) -> dict[str, events_pb2.AudioVerdict]:
    """Verdicts on audio.verdicts.v1 after ``since`` for ``segment_ids`` (until all, timeout or death)."""
    return read_matching(
        bootstrap, AUDIO_VERDICTS, since, lambda verdict: verdict.segment_id, segment_ids, timeout_s, alive
    )


def wait_folded(
    client: Any,
    pseudonymize: Pseudonymizer,
    verdicts: Collection[events_pb2.AudioVerdict],
    region: str,
    timeout_s: float,
) -> int:
    """Wait until reputation has folded every verdict (its idempotency markers); how many it has."""
    markers = []
    for v in verdicts:
        caller = _pseudonym(v, region, pseudonymize)
        if caller:
            markers.append(keys.seen_key(caller, "verdict", v.tenant, v.segment_id))
    deadline = time.monotonic() + timeout_s
    while True:
        pipe = client.pipeline(transaction=False)
        for marker in markers:
            pipe.exists(marker)
        folded = sum(int(x) for x in pipe.execute())
        if folded == len(markers) or time.monotonic() > deadline:
            return folded
        time.sleep(0.5)


def _pseudonym(verdict: events_pb2.AudioVerdict, region: str, pseudonymize: Pseudonymizer) -> str:
    """The pseudonym reputation folds a verdict under (its call's attributed identity), or ''."""
    try:
        return pseudonymize(attribute_record(verdict, region).key)
    except InvalidNumberError:
        return ""


@dataclass
class _Truth:
    """Ground truth of the calls whose audio was published, and every campaign's numbers."""

    kind: dict[str, str] = field(default_factory=dict)  # call id → actor kind name
    campaign: dict[str, str] = field(default_factory=dict)  # call id → campaign id ('' for none)
    number: dict[str, str] = field(default_factory=dict)  # call id → attributed identity (canonical)
    campaign_numbers: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def _truth(dataset: Path, call_ids: Collection[str]) -> _Truth:
    truth = _Truth()
    wanted = set(call_ids)
    for record in read_records(dataset / CALLS):
        t = record.call_truth
        if t.campaign_id:
            truth.campaign_numbers[t.campaign_id].add(t.presented_number)
        if t.call_id in wanted:
            truth.kind[t.call_id] = kind_name(t.actor_kind)
            truth.campaign[t.call_id] = t.campaign_id
            truth.number[t.call_id] = t.presented_number
    return truth


def _published_at(dataset: Path, segment_ids: Collection[str]) -> dict[str, int]:
    """Simulated time each segment was published (its tap's time, after the call), by segment id."""
    wanted = set(segment_ids)
    return {
        record.audio.segment.segment_id: record.time_ms
        for record in read_records(dataset / EVENTS)
        if record.WhichOneof("record") == "audio" and record.audio.segment.segment_id in wanted
    }


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def summarise(
    dataset: Path,
    published: Mapping[str, str],
    verdicts: Mapping[str, events_pb2.AudioVerdict],
    folded: int,
    client: Any,
    audio_client: Any,
    pseudonymize: Pseudonymizer,
    known_before: set[str],
) -> dict[str, Any]:
    """The run's audio figures: per caller kind, campaigns, and per simulated campaign's links."""
    truth = _truth(dataset, published.values())
    by_kind: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    segments_by_kind: Counter[str] = Counter()
    matched: set[str] = set()
    for segment_id, call_id in published.items():
        kind = truth.kind.get(call_id, "UNKNOWN")
        segments_by_kind[kind] += 1
        verdict = verdicts.get(segment_id)
        if verdict is None:
            continue
        row = by_kind[kind]
        row["verdicts"].append(1.0)
        row["campaign_linked"].append(1.0 if verdict.campaign_ids else 0.0)
        if verdict.HasField("bot_behaviour_score"):
            row["bot"].append(verdict.bot_behaviour_score)
        if verdict.HasField("synthetic_voice_score"):
            row["synthetic"].append(verdict.synthetic_voice_score)
        matched.update(verdict.campaign_ids)
    kinds = {
        kind: {
            "segments": segments_by_kind[kind],
            "verdicts": len(by_kind[kind]["verdicts"]),
            "campaign_linked": int(sum(by_kind[kind]["campaign_linked"])),
            "bot_scored": len(by_kind[kind]["bot"]),
            "bot_mean": _mean(by_kind[kind]["bot"]),
            "synthetic_scored": len(by_kind[kind]["synthetic"]),
            "synthetic_mean": _mean(by_kind[kind]["synthetic"]),
        }
        for kind in sorted(segments_by_kind)
    }
    reader = FeatureReader(client)
    now_ms = int(time.time() * 1000)
    audio_numbers = {truth.number[c] for c in published.values() if c in truth.number}
    linked: dict[str, set[str]] = {}
    for number in sorted(audio_numbers):
        pseudonym = pseudonymize(number)
        if reader.read_sync(pseudonym, "", now_ms).campaigns > 0:
            linked[number] = {c.decode() for c in client.smembers(keys.campaigns_key(pseudonym))}
    heard: dict[str, set[str]] = defaultdict(set)
    for call_id in published.values():
        if truth.campaign.get(call_id):
            heard[truth.campaign[call_id]].add(truth.number[call_id])
    # the moment a campaign is first audio-linked: the earliest segment of it whose verdict linked it
    published_at = _published_at(dataset, published)
    first_linked: dict[str, int] = {}
    for segment_id, call_id in published.items():
        verdict, campaign = verdicts.get(segment_id), truth.campaign.get(call_id, "")
        if verdict is not None and verdict.campaign_ids and campaign and segment_id in published_at:
            first_linked[campaign] = min(
                first_linked.get(campaign, published_at[segment_id]), published_at[segment_id]
            )
    campaigns = {}
    for campaign, numbers in sorted(truth.campaign_numbers.items()):
        linked_here = [n for n in numbers if n in linked]
        campaigns[campaign] = {
            "numbers": len(numbers),
            "numbers_with_audio": len(heard.get(campaign, ())),
            "numbers_linked": len(linked_here),
            "audio_campaigns": sorted({c for n in linked_here for c in linked[n]}),
            "first_linked_ms": first_linked.get(campaign),
        }
    campaign_members = {n for numbers in truth.campaign_numbers.values() for n in numbers}
    kind_of = {number: truth.kind[call_id] for call_id, number in truth.number.items()}
    false_links = Counter(
        kind for number, kind in kind_of.items() if number in linked and number not in campaign_members
    )
    now_known = campaign_index(audio_client)
    return {
        "segments_published": len(published),
        "verdicts": len(verdicts),
        "verdicts_folded_by_reputation": folded,
        "by_kind": kinds,
        "audio_campaigns_matched": sorted(matched),
        "audio_campaigns_discovered_this_run": sorted(now_known - known_before),
        "audio_campaigns_known_before": sorted(matched & known_before),
        "simulated_campaigns": campaigns,
        "false_links_by_kind": dict(false_links),
    }


def write(dataset: Path, figures: Mapping[str, Any]) -> None:
    """audio.json beside the dataset, for the report."""
    (dataset / AUDIO_RUN).write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
