"""Logging filters: a refused request is one line in the server log, not a traceback."""

from __future__ import annotations

import logging


class ClientErrorWithoutTraceback(logging.Filter):
    """Drop the traceback Django attaches to 4xx answers (403 PermissionDenied, 400
    SuspiciousOperation). The line itself ("Forbidden (Permission denied): /path")
    stays; server errors (5xx) keep their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if record.exc_info and isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
