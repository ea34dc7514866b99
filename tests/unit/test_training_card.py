"""The model card renders from its JSON: warnings, calibration priors, per-kind rates with intervals,
the block level, and the features the model leans on."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from rich.console import Console

from training import card, synthetic
from training.train import train


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    rows = synthetic.generate(20_000, seed=21)
    out = tmp_path_factory.mktemp("card") / "model"
    quiet = Console(file=open("/dev/null", "w"))  # noqa: SIM115
    train(rows.X, rows.y, rows.t_ms, rows.kinds, out, manifest={}, trees=30, depth=4, console=quiet)
    loaded: dict[str, Any] = json.loads((out / card.CARD_JSON).read_text())
    assert card.render(loaded) == (out / card.CARD).read_text()
    return loaded


def section(text: str, title: str) -> str:
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_every_warning_is_a_warning_line_and_none_means_no_section(doc: dict[str, Any]) -> None:
    text = card.render(doc)
    warnings = doc["metrics"]["warnings"]
    assert warnings
    for warning in warnings:
        assert f"- **WARNING** {warning}" in text
    quiet = copy.deepcopy(doc)
    quiet["metrics"]["warnings"] = []
    assert "## Warnings" not in card.render(quiet)
    assert "**WARNING**" not in card.render(quiet)


def test_rates_are_counts_with_wilson_intervals_per_operating_point(doc: dict[str, Any]) -> None:
    holdout = section(card.render(doc), "Holdout")
    for p in doc["metrics"]["operating_points"]:
        legit = p["holdout_legit"]
        assert f"{legit['count']}/{legit['total']:,} = " in holdout
        recall = p["recall"]
        assert f"{recall['rate']:.2%} ({recall['low']:.2%} to {recall['high']:.2%})" in holdout
    assert "| BLOCK (≤ 0.0001 at the upper bound) | none | cannot bound it with" in holdout


def test_per_kind_tables_split_unwanted_recall_from_legit_flag_and_block_rates(doc: dict[str, Any]) -> None:
    holdout = section(card.render(doc), "Holdout")
    recall_table, legit_table = holdout.split("Legit flag rate and BLOCK-level rate per actor kind")
    assert "| ROBOCALL |" in recall_table
    assert "| SUBSCRIBER |" not in recall_table
    assert "| SUBSCRIBER |" in legit_table
    assert "| ROBOCALL |" not in legit_table
    subscriber = next(line for line in legit_table.splitlines() if line.startswith("| SUBSCRIBER |"))
    assert subscriber.count(" to ") == len(doc["metrics"]["operating_points"])
    assert subscriber.endswith("| n/a |")


def test_a_block_threshold_shows_in_what_it_is_and_in_the_block_rows(doc: dict[str, Any]) -> None:
    blocking = copy.deepcopy(doc)
    blocking["block_threshold"] = 0.987654
    block = blocking["metrics"]["block"]
    block["probability_threshold"] = 0.987654
    block["validation_legit"] = {"count": 1, "total": 60_000, "rate": 1 / 60_000, "low": 3e-6, "high": 9.4e-5}
    block["holdout_legit"] = {"count": 2, "total": 50_000, "rate": 4e-5, "low": 1.1e-5, "high": 1.5e-4}
    block["recall"] = {"count": 900, "total": 1000, "rate": 0.9, "low": 0.88, "high": 0.92}
    for row in blocking["metrics"]["per_kind"]:
        for label in ("unwanted", "legit"):
            if row[label]:
                row[label]["blocked"] = {"count": 0, "total": 10, "rate": 0.0, "low": 0.0, "high": 0.28}
    text = card.render(blocking)
    assert "- BLOCK level: calibrated probability ≥ 0.987654 (`block_threshold` in model.json)" in text
    validation, holdout = "1/60,000 = 1.7e-05 (3e-06 to 9.4e-05)", "2/50,000 = 4e-05 (1.1e-05 to 0.00015)"
    assert f"| ≥ 0.987654 | {validation} | {holdout} |" in text
    assert "90.00% (88.00% to 92.00%)" in text
    assert "0/10 = 0 (0 to 0.28) |" in text


def test_calibration_names_each_prior_and_whether_the_intercept_moved(doc: dict[str, Any]) -> None:
    calibration = doc["metrics"]["calibration"]
    text = section(card.render(doc), "Calibration")
    assert f"whose unwanted share is {calibration['fitted_prior']:.2%}" in text
    prior = f"{calibration['deployment_prior']:.2%} (the unwanted share of every row before the holdout)"
    assert prior in text
    assert "| validation |" in text
    assert "| holdout |" in text
    same = copy.deepcopy(doc)
    same["metrics"]["calibration"]["b"] = same["metrics"]["calibration"]["b_fitted"]
    assert "It is shipped as fitted" in section(card.render(same), "Calibration")


def test_the_features_leaned_on_are_listed_globally_and_per_kind(doc: dict[str, Any]) -> None:
    text = section(card.render(doc), "What the model leans on")
    shap = doc["metrics"]["importance"]["mean_abs_treeshap"]
    top = max(shap, key=shap.__getitem__)
    assert text.split("|---|---:|---:|\n", 1)[1].startswith(f"| {top} |")
    for row in doc["metrics"]["per_kind"]:
        name, value = row["top_features"]["features"][0]
        assert f"| {row['name']} | {row['top_features']['rows']} | {name} {value:.3f}" in text


def test_the_slices_table_gives_each_slice_its_role_and_unwanted_share(doc: dict[str, Any]) -> None:
    text = section(card.render(doc), "Data")
    for name, role in (
        ("train", "fits the trees"),
        ("validation", "early stopping, calibration, every threshold"),
        ("holdout", "figures only"),
    ):
        s = doc["metrics"]["slices"][name]
        share = s["unwanted_share"]
        assert f"| {name} | {role} | {s['rows']} | {s['unwanted']} | {share['rate']:.2%} (" in text


def test_the_card_json_holds_what_the_markdown_shows(doc: dict[str, Any]) -> None:
    assert set(doc) >= {"model_version", "calibration", "metrics", "training_data", "schema_hash"}
    assert "params" not in doc
