"""Origination: STIR/SHAKEN verification, the STI certificate store and caller-ID checks.

``passport`` (a package) parses PASSporTs and holds the ``Verifier``; ``certs`` validates chains and
caches them; ``fetch`` fetches x5u certificates under an allow rule; ``shared`` shares fetched chains
across replicas through Redis; ``certfeed`` the certificate feed on Kafka and its reader (decision
runs it); ``certpublish`` origination's side of the feed (publishing chains, answering misses);
``callerid`` the caller-ID consistency checks; ``failures`` the failure vocabulary and its reason
codes; ``verdict`` assembles an OriginationVerdict; ``service`` the gRPC Verify service; ``stats``
the attestation statistics agent; ``settings``, ``metrics``.
"""
