"""Synthesised audio verdicts: campaign discovery as the audio service does it, never from labels."""

from __future__ import annotations

from fraudmesh.v1 import dataset_pb2, events_pb2
from training.audioverdicts import AudioBehaviour, VerdictSynthesiser


def _meta(script: str, synthetic: bool = False, index: int = 0) -> dataset_pb2.AudioSegmentMeta:
    return dataset_pb2.AudioSegmentMeta(
        segment=events_pb2.AudioSegment(segment_id=f"s-{index}", call_id=f"c-{index}", tenant="demo-cn"),
        script_id=script,
        synthetic_voice=synthetic,
    )


def _verdicts(synth: VerdictSynthesiser) -> list[events_pb2.AudioVerdict]:
    return [events_pb2.AudioVerdict.FromString(value) for _, value in synth.due(2**62)]


def test_a_recording_becomes_a_campaign_at_the_fifth_distinct_caller_with_the_earlier_ones_linked() -> None:
    synth = VerdictSynthesiser(AudioBehaviour(match_recall=1.0, false_match=0.0), seed=1)
    for index, caller in enumerate(["a", "b", "a", "c", "d", "e", "f"]):
        synth.add(_meta("script-1", index=index), 1_000 * index, caller)
    verdicts = _verdicts(synth)
    assert [bool(v.campaign_ids) for v in verdicts] == [False, False, False, False, False, True, True]
    assert list(verdicts[5].earlier_member_pseudonyms) == ["a", "b", "c", "d"]
    assert verdicts[6].campaign_ids == verdicts[5].campaign_ids
    assert not verdicts[6].earlier_member_pseudonyms


def test_callers_outside_the_window_do_not_count_and_unknown_recordings_never_link() -> None:
    synth = VerdictSynthesiser(AudioBehaviour(window_s=10, false_match=0.0), seed=2)
    for index, caller in enumerate("abcde"):
        synth.add(_meta("slow", index=index), 20_000 * index, caller)  # 20 s apart, window 10 s
        synth.add(_meta("", index=100 + index), 20_000 * index, caller)
    assert not any(v.campaign_ids for v in _verdicts(synth))


def test_verdicts_come_due_after_the_latency_in_order() -> None:
    synth = VerdictSynthesiser(AudioBehaviour(latency_ms=5_000), seed=3)
    synth.add(_meta("x", index=1), 1_000, "a")
    synth.add(_meta("x", index=2), 2_000, "b")
    assert synth.due(5_999) == []
    assert [events_pb2.AudioVerdict.FromString(v).segment_id for _, v in synth.due(7_000)] == ["s-1", "s-2"]


def test_the_synthetic_voice_score_separates_as_little_as_the_shipped_detector_does() -> None:
    synth = VerdictSynthesiser(AudioBehaviour(synthetic_abstain=0.0, false_match=0.0), seed=4)
    for index in range(4_000):
        synth.add(_meta("", synthetic=index % 2 == 1, index=index), index, "")
    scores = {False: [], True: []}  # type: dict[bool, list[float]]
    for index, verdict in enumerate(_verdicts(synth)):
        scores[index % 2 == 1].append(verdict.synthetic_voice_score)
    threshold = 0.5
    false_alarms = sum(s > threshold for s in scores[False]) / len(scores[False])
    misses = sum(s <= threshold for s in scores[True]) / len(scores[True])
    assert 0.40 < false_alarms < 0.50
    assert 0.40 < misses < 0.50
