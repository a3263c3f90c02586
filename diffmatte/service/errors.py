"""Errors that map one-to-one onto HTTP answers with a readable message."""

from __future__ import annotations


class ServiceError(Exception):
    """An error that the service answers with ``status`` and ``message``."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class InvalidInput(ServiceError):
    """The request is well-formed but its content is unusable (422)."""

    status = 422


class TooLarge(ServiceError):
    """The request or an image in it exceeds a configured limit (413)."""

    status = 413


class Unavailable(ServiceError):
    """A feature is not available in this service (503)."""

    status = 503
