"""Golden STIR/SHAKEN vectors: every stored case verifies to exactly its expected outcome."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from fraudmesh.v1 import call_pb2, common_pb2, verdicts_pb2
from services.origination.certs import CertificateCache, CertificateError, ChainValidator, Revocations
from services.origination.failures import Failure
from services.origination.passport import MemoryReplayStore, Verifier
from tests.unit.vectors import make_shaken_vectors

VECTORS_FILE = Path(__file__).parent / "vectors" / "shaken_vectors.json"
DATA: dict[str, Any] = json.loads(VECTORS_FILE.read_text(encoding="ascii"))
ANCHORS = [x509.load_pem_x509_certificate(pem.encode()) for pem in DATA["trust_anchors_pem"]]
REVOCATIONS = Revocations.from_crls(
    [x509.load_pem_x509_crl(pem.encode()) for pem in DATA["crls_pem"]],
    [x509.load_pem_x509_certificate(pem.encode()) for pem in DATA["crl_issuers_pem"]],
)
ATTESTATION = {"A": common_pb2.ATTESTATION_A, "B": common_pb2.ATTESTATION_B, "C": common_pb2.ATTESTATION_C}


def chain(x5u: str) -> list[x509.Certificate]:
    return [
        x509.load_pem_x509_certificate(DATA["certificates_pem"][name].encode())
        for name in DATA["chains"][x5u]
    ]


@pytest.mark.parametrize("vector", DATA["vectors"], ids=[v["name"] for v in DATA["vectors"]])
def test_vector(vector: dict[str, Any]) -> None:
    now = float(vector["now"])
    cache = CertificateCache(ChainValidator(ANCHORS), clock=lambda: now)
    for x5u in vector["chains"]:
        with contextlib.suppress(CertificateError):
            cache.insert(x5u, chain(x5u))
    misses: list[str] = []
    verifier = Verifier(
        cache,
        MemoryReplayStore(),
        freshness_s=DATA["freshness_s"],
        revocations=REVOCATIONS,
        on_miss=misses.append,
        clock=lambda: now,
    )
    setup = call_pb2.CallSetup(**vector["setup"])
    for _ in range(vector["repeat"]):
        result = verifier.verify(setup, DATA["region"])
    expect = vector["expect"]
    assert verdicts_pb2.ShakenStatus.Name(result.status) == f"SHAKEN_STATUS_{expect['status']}"
    assert (result.failure.value if result.failure else None) == expect["failure"]
    assert list(result.reason_codes) == expect["reason_codes"]
    assert result.attestation == ATTESTATION.get(expect["attestation"], common_pb2.ATTESTATION_UNSPECIFIED)
    assert result.origid == expect["origid"]
    assert result.signer_ocn == expect["signer_ocn"]
    assert result.diverted == expect["diverted"]
    assert bool(misses) == (expect["status"] == "PENDING")


def test_every_failure_kind_has_a_vector_or_is_covered_elsewhere() -> None:
    stored = {v["expect"]["failure"] for v in DATA["vectors"]} - {None}
    elsewhere = {"malformed", "cert_unavailable", "cert_not_yet_valid", "spc_mismatch"}

    assert {f.value for f in Failure} - stored <= elsewhere


def test_vectors_file_is_small_public_and_marked_test_only() -> None:
    text = VECTORS_FILE.read_text(encoding="ascii")
    assert len(text.encode()) < 100_000
    assert "PRIVATE KEY" not in text
    assert DATA["_notice"].startswith("TEST-ONLY simulated")


def test_vectors_file_is_what_the_generator_writes() -> None:
    assert make_shaken_vectors.render() == VECTORS_FILE.read_text(encoding="ascii")
