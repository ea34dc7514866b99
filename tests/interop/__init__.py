"""Interop tests: fraudmesh against real SIP software from Debian (SIPp, Kamailio), marked ``interop``."""
