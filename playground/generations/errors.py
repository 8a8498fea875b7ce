"""Errors that reach a client as ``{"type": "error", "code": ..., "message": ...}``."""

from __future__ import annotations

# Sampling parameters a message may start with ("temperature must be between 0 and 2"):
# such an error names that field, so a form can point at the input at fault.
SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "presence_penalty", "max_tokens", "seed")


class ServiceError(Exception):
    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field  # the request field at fault, when one is


class NotFound(ServiceError):
    """Missing or someone else's: the two are indistinguishable to the client on purpose."""

    def __init__(self, what: str) -> None:
        super().__init__("not_found", f"{what} not found")


class InvalidRequest(ServiceError):
    def __init__(self, message: str, field: str | None = None) -> None:
        if field is None:
            first = message.split(" ", 1)[0]
            field = first if first in SAMPLING_FIELDS else None
        super().__init__("invalid_request", message, field)


class UnknownModel(InvalidRequest):
    """No such model in the catalogue (the socket says invalid_request; the API, 404)."""
