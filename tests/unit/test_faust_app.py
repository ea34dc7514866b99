"""The faust apps keep their data folder under the temp dir, never in the working directory (the
chart's pods run with a read-only root filesystem; a checkout would collect one folder per run)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from services.common.settings import CommonSettings, load
from services.common.streams import make_faust_app


def test_the_data_folder_is_under_the_temp_dir() -> None:
    settings = load(
        CommonSettings,
        {"FRAUDMESH_PSEUDONYM_KEY": "k" * 64, "FRAUDMESH_KAFKA_BOOTSTRAP": "127.0.0.1:1"},
    )
    app = make_faust_app(settings, "fraudmesh-test-datadir")
    datadir = Path(app.conf.datadir)
    assert datadir.parent == Path(tempfile.gettempdir())
    assert datadir.name == "fraudmesh-test-datadir-data"
