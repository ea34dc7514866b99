"""PASSporT errors and the constants parsing and verification share: bounds, P-256 order, SHAKEN statuses."""

from __future__ import annotations

from typing import Final, TypeAlias

from fraudmesh.v1 import common_pb2, verdicts_pb2
from services.origination.failures import UNSUPPORTED, Failure

ShakenStatus: TypeAlias = verdicts_pb2.ShakenStatus.ValueType
AttestationValue: TypeAlias = common_pb2.Attestation.ValueType

P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
MAX_HEADER_BYTES: Final = 4096
MAX_IDENTITY_HEADERS: Final = 8
MAX_DEST_TNS: Final = 32
MAX_JSON_DEPTH: Final = 16
MAX_JSON_ITEMS: Final = 128
MAX_JSON_INT: Final = 2**53 - 1
DEFAULT_FRESHNESS_S: Final = 60

ABSENT: Final = verdicts_pb2.SHAKEN_STATUS_ABSENT
VERIFIED: Final = verdicts_pb2.SHAKEN_STATUS_VERIFIED
FAILED: Final = verdicts_pb2.SHAKEN_STATUS_FAILED
PENDING: Final = verdicts_pb2.SHAKEN_STATUS_PENDING
UNSUPPORTED_STATUS: Final = verdicts_pb2.SHAKEN_STATUS_UNSUPPORTED

ATTESTATIONS: Final[dict[str, AttestationValue]] = {
    "A": common_pb2.ATTESTATION_A,
    "B": common_pb2.ATTESTATION_B,
    "C": common_pb2.ATTESTATION_C,
}


class PassportError(ValueError):
    """An Identity header that cannot be verified; ``failure`` says why, ``status`` FAILED or UNSUPPORTED."""

    def __init__(self, failure: Failure, detail: str = "") -> None:
        super().__init__(f"{failure.value}: {detail}" if detail else failure.value)
        self.failure = failure

    @property
    def status(self) -> ShakenStatus:
        """UNSUPPORTED for kinds this verifier does not handle, FAILED for everything else."""
        return UNSUPPORTED_STATUS if self.failure in UNSUPPORTED else FAILED


class CompactFormError(PassportError):
    """A compact-form PASSporT (empty claims): SHAKEN claims cannot be rebuilt from SIP, so not verified."""

    def __init__(self) -> None:
        super().__init__(Failure.COMPACT_FORM, "compact form cannot carry SHAKEN attest/origid")
