"""Coverage-guided fuzz targets (atheris). Run one with ``python -m fuzz.<target> [libFuzzer flags]``."""
