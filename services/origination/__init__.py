"""Origination core: STIR/SHAKEN PASSporT verification, the STI certificate store and caller-ID checks.

Pure library modules; the gRPC service, Kafka agent and Redis-backed stores wire them up elsewhere.
"""
