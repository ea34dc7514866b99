"""Why a PASSporT did not verify: the one list of fine-grained failure reasons of this package.

Each value is a stable lowercase string, safe as a metric label and for audit records. The reason
codes a verdict carries (services.common.reasons) are coarser; ``REASON_CODE`` maps each failure to
the code it reports today.

Inputs over the parser's bounds are failures of this list too: an Identity header over 4 KiB is
``OVERSIZE``, more than 8 headers ``TOO_MANY_HEADERS``, a JSON part nested too deep, with too many
members in one object or array, an integer outside I-JSON's +-(2**53 - 1) or a non-finite number
``BAD_JSON`` (see services.origination.passport for the bounds). A verification that raises anyway
is a bug, not a verdict on the PASSporT: it is answered with ``VERIFIER_ERROR_CODE``.
"""

from __future__ import annotations

import enum
from typing import Final

from services.common.reasons import Reason


class Failure(enum.Enum):
    """One reason a PASSporT, its certificate chain or its Identity header was rejected."""

    OVERSIZE = "oversize"
    TOO_MANY_HEADERS = "too_many_headers"
    MALFORMED = "malformed"
    BAD_PARAMS = "bad_params"
    BAD_BASE64 = "bad_base64"
    BAD_JSON = "bad_json"
    DUPLICATE_KEY = "duplicate_key"
    BAD_HEADER = "bad_header"
    BAD_ALG = "bad_alg"
    BAD_TYP = "bad_typ"
    BAD_PPT = "bad_ppt"
    BAD_X5U = "bad_x5u"
    INFO_MISMATCH = "info_mismatch"
    BAD_CLAIMS = "bad_claims"
    BAD_ATTEST = "bad_attest"
    BAD_ORIGID = "bad_origid"
    SIG_LENGTH = "sig_length"
    SIG_RANGE = "sig_range"
    STALE_IAT = "stale_iat"
    FUTURE_IAT = "future_iat"
    ORIG_MISMATCH = "orig_mismatch"
    DEST_MISMATCH = "dest_mismatch"
    DIV_MISMATCH = "div_mismatch"
    CERT_UNAVAILABLE = "cert_unavailable"
    CHAIN_INVALID = "chain_invalid"
    CERT_EXPIRED = "cert_expired"
    CERT_NOT_YET_VALID = "cert_not_yet_valid"
    BAD_LEAF = "bad_leaf"
    CERT_EXPIRED_AT_IAT = "cert_expired_at_iat"
    CERT_NOT_YET_VALID_AT_IAT = "cert_not_yet_valid_at_iat"
    CERT_REVOKED = "cert_revoked"
    NO_TNAUTHLIST = "no_tnauthlist"
    BAD_TNAUTHLIST = "bad_tnauthlist"
    SPC_MISMATCH = "spc_mismatch"
    SIG_INVALID = "sig_invalid"
    REPLAY = "replay"
    COMPACT_FORM = "compact_form"
    UNKNOWN_PPT = "unknown_ppt"
    DIV_WITHOUT_SHAKEN = "div_without_shaken"


VERIFIER_ERROR_CODE: Final = Reason.DEGRADED_ORIGINATION
"""The reason code when verification raised unexpectedly: SHAKEN status UNSPECIFIED and degraded,
while the caller-ID findings (computed independently) are still reported."""

UNSUPPORTED: Final[frozenset[Failure]] = frozenset(
    {Failure.COMPACT_FORM, Failure.UNKNOWN_PPT, Failure.DIV_WITHOUT_SHAKEN}
)
"""Failures that make a PASSporT unverifiable by this verifier rather than invalid (status UNSUPPORTED)."""

_SPECIFIC: Final[dict[Failure, Reason]] = {
    Failure.REPLAY: Reason.SHAKEN_REPLAY,
    Failure.ORIG_MISMATCH: Reason.SHAKEN_TN_MISMATCH,
    Failure.DEST_MISMATCH: Reason.SHAKEN_TN_MISMATCH,
    Failure.DIV_MISMATCH: Reason.SHAKEN_TN_MISMATCH,
    Failure.CERT_UNAVAILABLE: Reason.SHAKEN_CERT_UNAVAILABLE,
    **{failure: Reason.SHAKEN_UNSUPPORTED for failure in UNSUPPORTED},
}

REASON_CODE: Final[dict[Failure, Reason]] = {
    failure: _SPECIFIC.get(failure, Reason.SHAKEN_SIGNATURE_INVALID) for failure in Failure
}
"""The services.common.reasons code reported for each failure (FAILED or UNSUPPORTED)."""
