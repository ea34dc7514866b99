"""JSON logs that never carry a raw phone number.

Code logs pseudonyms, never numbers; as a second line of defence every record's message, arguments
and extra fields are scrubbed of digit runs that look like phone numbers before they are written.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import time
from typing import Any

from opentelemetry import trace

from services.common.settings import LogFormat

# Seven or more digits, optionally led by + and broken by spaces, dots, dashes or parentheses.
_NUMBER_LIKE = re.compile(r"\+?\(?\d(?:[\s().-]{0,2}\d){6,}")
REDACTED = "[number]"

_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def scrub(text: str) -> str:
    """Replace anything that looks like a phone number with a marker."""
    return _NUMBER_LIKE.sub(REDACTED, text)


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    return scrub(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, trace ids and extra fields."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as one scrubbed JSON line."""
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = _scrub_value(value)
        if record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal, scrubbed like the JSON ones."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as one scrubbed text line."""
        return scrub(super().format(record))


def logging_config(service: str, level: str, fmt: LogFormat) -> dict[str, Any]:
    """A dictConfig routing all logging (ours, faust's, aiokafka's) to one scrubbing stderr handler.

    Faust's worker applies logging itself on start; it is handed this same dict so its output
    is formatted and scrubbed like everything else.
    """
    formatter: dict[str, Any] = (
        {"()": JsonFormatter, "service": service} if fmt is LogFormat.JSON else {"()": TextFormatter}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"fraudmesh": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "fraudmesh",
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
    }


def configure_logging(service: str, level: str, fmt: LogFormat) -> None:
    """Apply ``logging_config`` to this process."""
    logging.config.dictConfig(logging_config(service, level, fmt))
