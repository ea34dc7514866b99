"""The switch front: a SIP redirect server and an HTTP/JSON endpoint in front of Decide.

Switches without a gRPC client (Kamailio, OpenSIPS, FreeSWITCH, Asterisk, SBCs) forward the INVITE
here and act on the 3xx/6xx answer, or call ``POST /v1/decide`` from their routing script.
"""
