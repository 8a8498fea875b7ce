"""Logging filters (settings.base LOGGING)."""

from __future__ import annotations

import logging


class ClientErrorsWithoutTraceback(logging.Filter):
    """Django logs a 4xx answer raised as an exception (PermissionDenied's 403, a bad
    request) through ``django.request`` / ``django.security`` with the exception attached:
    a traceback for an ordinary refusal. Such a record keeps its one line; 5xx keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if (
            record.name.startswith(("django.request", "django.security"))
            and isinstance(status, int)
            and status < 500
        ):
            record.exc_info = None
            record.exc_text = None
        return True
