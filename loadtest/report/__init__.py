"""Replay report: detection quality, cold start and warm state, time to detect, emergency safety,
Decide latency and the presence proofs.

Reads a dataset folder — ground truth in ``calls.fmds`` (and ``numbers.fmds`` when present) plus
the replay's ``outcomes.fmds`` — joins outcomes to calls by call_id, and writes ``report.md``,
PNG plots and ``summary.json`` to an output folder. Calls without an outcome are reported as
"not decided", never dropped. Without ``outcomes.fmds`` (a Kafka-only replay) the report describes
the traffic alone and says that no decisions were recorded. A dataset generated with a lead-in
(``generate --lead-in-hours``) is reported over its scored window (from ``scored_from_ms``): the
lead-in was folded by reputation and never scored, and it splits the scored calls into warm (the
caller has lead-in history) and cold; the headline's detection rates are the warm state's.
Per-call state lives in numpy arrays so datasets of a few million calls fit in memory; files are
read as streams.

What lives where: ``_codes`` holds the outcome status codes, ``kind_name`` and the array types;
``_reading`` streams the dataset files into per-call arrays (the lead-in counted apart);
``_analysis`` derives the figures (``group_calls``, detection, time to detect, the figures per
reputation state) and ``ReportSummary``; ``_plots`` draws the PNGs and is the only module that
imports matplotlib; ``_format`` writes numbers, table cells and tables; ``_sections`` (traffic,
detection, cold start and warm state), ``_service_sections`` (emergency calls, latency, reason
codes, audio, numbers, data notes) and ``_presence`` (the presence proof rules: where they fired,
legitimate roamers, impersonators on-net and off-net) write the markdown; ``_build`` holds
``build_report`` and ``main``, which ``python -m loadtest.report`` runs.
"""

from loadtest.report._analysis import ReportSummary, group_calls
from loadtest.report._build import build_report, main
from loadtest.report._codes import kind_name
from loadtest.report._reading import scored_from_ms

__all__ = [
    "ReportSummary",
    "build_report",
    "group_calls",
    "kind_name",
    "main",
    "scored_from_ms",
]
