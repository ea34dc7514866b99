"""The serving side: one folder per deployable (decision, origination, reputation, audio), the scoring
library decision loads, and ``common`` beneath them all. Nothing here imports training/, loadtest/,
bench/ or fuzz/ (tests/unit/test_layers.py)."""
