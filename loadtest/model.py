"""The model the main job's mesh scores with: the one named, else the shipped default, else a placeholder."""

from __future__ import annotations

from pathlib import Path

from loadtest.console import console
from services.scoring.model import default_model


def resolve_model(given: Path | None, placeholder: Path) -> Path:
    """The model artifact for the mesh: --model, else the shipped default, else a synthetic placeholder."""
    if given is not None:
        return given
    default = default_model()
    if default is not None:
        return default
    console.print("[yellow]no default model ships in this checkout: training a synthetic PLACEHOLDER model")
    from training.synthetic import generate  # the trainer needs the train extra: only imported here
    from training.train import train

    rows = generate(50_000, seed=7)
    train(
        rows.X,
        rows.y,
        rows.t_ms,
        rows.kinds,
        placeholder,
        manifest={"synthetic": True, "placeholder": True},
        trees=100,
    )
    return placeholder
