"""The main job names its dataset and report folders after the scenario, however it was given."""

from __future__ import annotations

from pathlib import Path

from loadtest.run import run_folders
from loadtest.scenario import load

BUNDLED = Path(__file__).resolve().parents[2] / "loadtest" / "scenarios" / "ci.yaml"


def test_a_scenario_given_as_an_absolute_path_writes_under_data_and_reports(tmp_path: Path) -> None:
    mine = tmp_path / "elsewhere" / "my-scenario.yaml"
    mine.parent.mkdir()
    mine.write_text(BUNDLED.read_text().replace("name: ci", "name: my-scenario", 1))
    scenario = load(str(mine))
    assert scenario.name == "my-scenario"
    dataset, reports = run_folders(scenario, tmp_path / "data", tmp_path / "reports")
    assert (dataset, reports) == (tmp_path / "data" / scenario.name, tmp_path / "reports" / scenario.name)
    assert mine.parent not in dataset.parents


def test_a_bundled_scenario_by_name() -> None:
    assert run_folders(load("ci"), Path("data"), Path("reports")) == (Path("data/ci"), Path("reports/ci"))
