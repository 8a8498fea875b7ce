"""Errors that reach a client as ``{"type": "error", "code": ..., "message": ...}``."""

from __future__ import annotations


class ServiceError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class NotFound(ServiceError):
    """Missing or someone else's: the two are indistinguishable to the client on purpose."""

    def __init__(self, what: str) -> None:
        super().__init__("not_found", f"{what} not found")


class InvalidRequest(ServiceError):
    def __init__(self, message: str) -> None:
        super().__init__("invalid_request", message)


class UnknownModel(InvalidRequest):
    """No such model in the catalogue (the socket says invalid_request; the API, 404)."""
