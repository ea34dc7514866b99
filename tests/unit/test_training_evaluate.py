"""``python -m training evaluate``: a tiny model on features it never saw, at its operating points and
as the decision's policy turns scores into actions."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from rich.console import Console

from fraudmesh.v1 import common_pb2
from services.common.features import INDEX
from services.decision.policy import parse_policy
from services.scoring.model import Scorer
from training import evaluate, synthetic
from training.__main__ import main
from training.train import FeatureSet, load_features, save_features, train

POLICY = Path("deploy/policy/default.yaml")
FILES = {"calls.fmds": "a" * 64}


def features(path: Path, rows: synthetic.Rows, manifest: dict[str, object]) -> Path:
    save_features(path, FeatureSet(rows.X, rows.y, rows.t_ms, rows.kinds, manifest=manifest))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny model and the features it was trained on, whose last days are its holdout window."""
    folder = tmp_path_factory.mktemp("evaluate")
    rows = synthetic.generate(30_000, seed=21)
    manifest = {"scenario": "tiny", "seed": 21, "files": FILES, "holdout_from_ms": int(rows.t_ms[24_000])}
    path = features(folder / "features.npz", rows, manifest)
    loaded = load_features(path)
    out = folder / "model"
    train(
        loaded.X,
        loaded.y,
        loaded.t_ms,
        loaded.kinds,
        out,
        manifest=loaded.manifest,
        trees=40,
        depth=4,
        console=Console(file=open("/dev/null", "w")),  # noqa: SIM115
    )
    return out, path


def test_on_another_dataset_it_scores_the_window_and_writes_both_reports(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, _ = trained
    rows = synthetic.generate(12_000, seed=22)
    start = int(rows.t_ms[4_000])
    path = features(tmp_path / "other.npz", rows, {"scenario": "other", "seed": 22, "holdout_from_ms": start})
    out = tmp_path / "report"
    argv = ["evaluate", "--model", str(model), "--features", str(path), "--policy", str(POLICY)]
    assert main([*argv, "--out", str(out)]) == 0
    report = json.loads((out / evaluate.REPORT_JSON).read_text())
    window = int((rows.t_ms >= start).sum())
    assert report["features"]["evaluated"] == window
    assert report["features"]["relation"].startswith("another dataset")
    assert report["ranking"]["roc_auc"] > 0.9
    legit, unwanted = int((~rows.y[rows.t_ms >= start]).sum()), int(rows.y[rows.t_ms >= start].sum())
    for point in report["operating_points"]:
        assert (point["legit_flagged"]["total"], point["recall"]["total"]) == (legit, unwanted)
        assert (
            point["legit_flagged"]["low"] <= point["legit_flagged"]["rate"] <= point["legit_flagged"]["high"]
        )
    assert report["model_block"] is None  # a validation slice this small bounds no block threshold
    assert report["decision"]["legit"]["blocked"]["count"] == 0
    assert report["decision"]["unwanted"]["blocked"]["count"] == 0
    named = {(row["name"], row["label"]) for row in report["per_kind"]}
    assert {("COURIER", "legit"), ("ROBOCALL", "unwanted"), ("AI_IMPERSONATOR", "unwanted")} <= named
    assert sum(row["calls"] for row in report["per_kind"]) == window
    text = (out / evaluate.REPORT_MD).read_text()
    assert "score-only" in text
    assert "| ROBOCALL | unwanted |" in text
    assert "score-only" in capsys.readouterr().out

    assert main([*argv, "--out", str(tmp_path / "all"), "--no-from-manifest-window"]) == 0
    everything = json.loads((tmp_path / "all" / evaluate.REPORT_JSON).read_text())
    assert everything["features"]["evaluated"] == len(rows.y)
    assert everything["features"]["window_from_ms"] is None


def test_on_its_own_holdout_window_it_reproduces_the_model_json_figures(trained: tuple[Path, Path]) -> None:
    model, path = trained
    scorer = Scorer.load(model)
    rows = load_features(path)
    report = evaluate.evaluate(scorer, rows, parse_policy(POLICY.read_text()))
    assert report["features"]["relation"].startswith("the model's own holdout window")
    assert not any("precede" in w for w in report["warnings"])
    metrics = scorer.artifact.metadata["metrics"]
    assert report["features"]["evaluated"] == metrics["slices"]["holdout"]["rows"]
    assert report["ranking"]["roc_auc"] == pytest.approx(metrics["holdout"]["roc_auc"])
    for ours, theirs in zip(report["operating_points"], metrics["operating_points"], strict=True):
        assert ours["legit_flagged"] == theirs["holdout_legit"]
        assert ours["recall"] == theirs["recall"]
    seen = evaluate.evaluate(scorer, rows, parse_policy(POLICY.read_text()), from_manifest=False)
    assert seen["features"]["relation"] == "the model's own training data"
    assert any("precede the model's holdout" in w for w in seen["warnings"])


def policy_text(**changes: object) -> str:
    raw = yaml.safe_load(POLICY.read_text())
    raw.update(changes)
    return yaml.safe_dump(raw, allow_unicode=True)


def test_the_policy_view_applies_ingress_thresholds_the_evidence_cap_and_emergency(
    trained: tuple[Path, Path],
) -> None:
    model, _ = trained
    scorer = Scorer.load(model)
    x = synthetic.generate(2_000, seed=23).X
    riskiest = int(np.argmax(scorer.score_batch(x).raw))  # a call with reasons to give
    x = np.repeat(x[[riskiest]], 6, axis=0)
    x[:, INDEX["ingress_kind"]] = [
        common_pb2.INGRESS_KIND_DOMESTIC_INTERCONNECT,
        common_pb2.INGRESS_KIND_INTERNATIONAL_GATEWAY,
        common_pb2.INGRESS_KIND_DOMESTIC_INTERCONNECT,
        common_pb2.INGRESS_KIND_DOMESTIC_INTERCONNECT,
        common_pb2.INGRESS_KIND_DOMESTIC_INTERCONNECT,
        np.nan,
    ]
    probability = np.array([0.55, 0.55, 0.95, 0.99, 0.99, 0.65])
    emergency = np.array([False, False, False, False, True, False])
    policy = parse_policy(POLICY.read_text())
    actions = evaluate.policy_actions(policy, scorer, x, probability, emergency=emergency)
    # ALLOW below the label threshold, LABEL from the gateway's lower one, CHALLENGE, BLOCK capped at
    # CHALLENGE (the model has no block threshold), emergency ALLOW, unknown ingress on the defaults.
    assert actions.tolist() == [0, 1, 2, 2, 0, 1]

    blocking = Scorer(
        dataclasses.replace(scorer.artifact, metadata={**scorer.artifact.metadata, "block_threshold": 0.985})
    )
    unlocked = evaluate.policy_actions(policy, blocking, x, probability, emergency=emergency)
    assert unlocked.tolist() == [0, 1, 2, 3, 0, 1]
    reasons = {str(code) for row in x for code in scorer.score(row).top_reasons}
    never_sole = parse_policy(policy_text(never_sole_reasons=sorted(reasons)))
    lowered = evaluate.policy_actions(never_sole, blocking, x, probability, emergency=emergency)
    assert lowered.tolist() == [0, 1, 1, 1, 0, 1]


def test_a_missing_window_or_model_is_an_error_not_a_traceback(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, _ = trained
    rows = synthetic.generate(3_000, seed=24)
    path = features(tmp_path / "bare.npz", rows, {"scenario": "bare"})
    argv = ["evaluate", "--model", str(model), "--features", str(path), "--out", str(tmp_path / "r")]
    assert main([*argv, "--from-manifest-window"]) == 1
    assert "holdout_from_ms" in capsys.readouterr().err
    assert main(argv) == 0  # without a window in the manifest every row is scored
    assert main(["evaluate", "--model", str(tmp_path), "--features", str(path)]) == 1
