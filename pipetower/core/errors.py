"""Errors that services raise for people to read.

Views turn them into form errors or messages, the API into its JSON error
shape, so the wording is written once, in the service.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A request that cannot be carried out as asked. `message` is shown as is."""

    code = "invalid"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class NotAllowed(ServiceError):
    """The actor's role does not allow this."""

    code = "forbidden"
    status = 403


class Conflict(ServiceError):
    """The change clashes with the current state (duplicate, already used, last owner)."""

    code = "conflict"
    status = 409


class Gone(ServiceError):
    """A link or token that has expired, been used or been revoked."""

    code = "gone"
    status = 410
