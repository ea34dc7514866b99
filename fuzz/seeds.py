"""Write the seed corpus of the structured fuzz targets: one small input per outcome the verifier reaches.

``python -m fuzz.seeds`` rewrites fuzz/corpus/calls (read by fuzz/verifier.py and
fuzz/verify_handler.py). Run it after changing the order of choices in fuzz/passports.py, or the
seeds stop meaning what they meant. Cases are drawn at random (mostly well-formed choices), their
decisions recorded and encoded the way atheris' FuzzedDataProvider reads them back (integers from
the end of the input, most significant byte first); for every verifier outcome (status and
failure) the shortest input is kept. Each seed is checked to rebuild a call with the same outcome.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import atheris

from fuzz.passports import REGION, CaseBuilder, FuzzPki, ProviderChoices
from services.origination.passport import Verifier

CORPUS = Path(__file__).parent / "corpus" / "calls"
CASES = 40_000


class RecordingChoices:
    """Random choices, mostly 0 (well formed), recorded as FuzzedDataProvider bytes; text stays empty."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._read: list[int] = []  # bytes in the order the provider reads them

    def pick(self, options: int) -> int:
        """An index in [0, options), 0 three times in four."""
        return self._record(0, options - 1, 0 if self._rng.random() < 0.75 else self._rng.randrange(options))

    def number(self, low: int, high: int) -> int:
        """An integer in [low, high], usually near low."""
        value = low + min(high - low, int(self._rng.expovariate(0.05)))
        return self._record(low, high, value)

    def text(self, max_length: int) -> str:
        """Always empty (its length is still a recorded choice)."""
        self._record(0, max_length, 0)
        return ""

    def encoded(self) -> bytes:
        """The input that makes a FuzzedDataProvider answer the same choices."""
        return bytes(reversed(self._read))

    def _record(self, low: int, high: int, value: int) -> int:
        span = high - low
        width = (span.bit_length() + 7) // 8
        self._read.extend((value - low).to_bytes(width, "big"))
        return value


def main() -> None:
    """Draw cases, keep the shortest input per outcome, check each round-trips, write the corpus."""
    pki = FuzzPki()
    builder = CaseBuilder(pki)
    verifier = Verifier(pki.cache(), None, on_miss=lambda _x5u: None)
    rng = random.Random(20261202)  # noqa: S311 - a reproducible draw of cases, not cryptography
    best: dict[tuple[int, str], bytes] = {}
    for _ in range(CASES):
        choices = RecordingChoices(rng)
        case = builder.case(choices)
        result = verifier.verify(case.setup, REGION, now=case.now)
        outcome = (int(result.status), result.failure.value if result.failure else "")
        data = choices.encoded()
        if outcome not in best or len(data) < len(best[outcome]):
            best[outcome] = data
    CORPUS.mkdir(parents=True, exist_ok=True)
    for old in CORPUS.iterdir():
        old.unlink()
    for (status, failure), data in sorted(best.items()):
        replayed = builder.case(ProviderChoices(atheris.FuzzedDataProvider(data)))
        again = verifier.verify(replayed.setup, REGION, now=replayed.now)
        if (int(again.status), again.failure.value if again.failure else "") != (status, failure):
            sys.exit(f"seed for {status}/{failure} does not rebuild the same call")
        (CORPUS / f"{status}-{failure or 'ok'}").write_bytes(data)
    total = sum(len(data) for data in best.values())
    print(f"wrote {len(best)} seeds ({total} bytes) to {CORPUS}")


if __name__ == "__main__":
    main()
