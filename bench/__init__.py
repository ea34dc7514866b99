"""Benchmarks (never tests): each prints its figures beside a baseline measured in the same run.

``simulator`` (``make bench-loadtest``: generation and replay rates), ``reputation``, ``origination``,
``decision``, ``scoring`` and ``audio``, one ``make bench-<name>`` each. Nothing imports this package.
"""
