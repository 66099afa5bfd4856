"""Log output for the command line: human-readable lines or JSON lines.

Library code only logs; the CLI calls ``setup_logging`` once. Records that concern a node,
an xApp or a control carry ``node`` / ``xapp`` fields (``extra=``), which both formats show.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

from ric.privacy import Pseudonymizer

__all__ = ["JsonFormatter", "TextFormatter", "setup_logging"]

FIELDS = ("node", "xapp", "control")


class TextFormatter(logging.Formatter):
    """``12:00:01.234 INFO  ric.e2: message  node=gnb-001-01-1``."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = f"{stamp}.{int(record.msecs):03d} {record.levelname:<7} {record.name}: {record.getMessage()}"
        fields = [f"{k}={getattr(record, k)}" for k in FIELDS if getattr(record, k, None)]
        if fields:
            line += "  " + " ".join(fields)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, and the id fields that are set."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in FIELDS:
            value = getattr(record, key, None)
            if value:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class _Pseudonymized(logging.Formatter):
    """Wraps a formatter: UE ids in the finished line become their pseudonyms."""

    def __init__(self, inner: logging.Formatter, privacy: Pseudonymizer) -> None:
        super().__init__()
        self._inner = inner
        self._privacy = privacy

    def format(self, record: logging.LogRecord) -> str:
        return self._privacy.text(self._inner.format(record))


def setup_logging(
    level: str = "info",
    fmt: str = "text",
    stream: TextIO | None = None,
    privacy: Pseudonymizer | None = None,
) -> None:
    """Send log records of ``level`` and above to ``stream`` (stderr) in ``fmt``; with an
    enabled ``privacy``, UE ids (``ue:<id>``) are written as pseudonyms."""
    handler = logging.StreamHandler(stream or sys.stderr)
    formatter: logging.Formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    if privacy is not None and privacy.enabled:
        formatter = _Pseudonymized(formatter, privacy)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # gRPC's own chatter is rarely useful at info level.
    logging.getLogger("grpc").setLevel(max(logging.WARNING, root.level))
