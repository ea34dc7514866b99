"""Reading a dataset's simulated STI PKI: the files ``loadtest.stipki`` writes under ``pki/``.

The trainer validates each carrier's chain against the STI-CA root, as origination would, so the
file layout (one ``<carrier>.pem`` chain per signing carrier beside the root and intermediate) and
the x5u each chain is published under are defined here, once, for the writer and the readers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from cryptography import x509

from services.origination.certs import TNAUTHLIST_OID, decode_tnauthlist

ROOT_FILE: Final = "sti-ca.pem"
INTERMEDIATE_FILE: Final = "sti-subca.pem"


def x5u_url(name: str, ocn: str) -> str:
    """Where a simulated carrier's certificate chain would be fetched from (never resolvable)."""
    return f"https://cert.{name}.sti.sim.invalid/{ocn}.pem"


def tnauthlist_spcs(cert: x509.Certificate) -> list[str]:
    """Decode the SPC entries of a certificate's RFC 8226 TNAuthList (ranges and TNs are skipped).

    Raises x509.ExtensionNotFound when the certificate has no TNAuthList and ValueError when its
    DER is malformed.
    """
    data = cert.extensions.get_extension_for_oid(TNAUTHLIST_OID).value.public_bytes()
    return list(decode_tnauthlist(data).spcs)


def read_chains(folder: Path) -> dict[str, list[x509.Certificate]]:
    """The signing carriers' chains a dataset's ``pki/`` holds, by the x5u their PASSporTs name."""
    chains: dict[str, list[x509.Certificate]] = {}
    for path in sorted(folder.glob("*.pem")):
        if path.name in (ROOT_FILE, INTERMEDIATE_FILE):
            continue
        certificates = x509.load_pem_x509_certificates(path.read_bytes())
        for ocn in tnauthlist_spcs(certificates[0]):
            chains[x5u_url(path.stem, ocn)] = certificates
    return chains
