"""Errors that services raise and front doors turn into clear messages."""

from __future__ import annotations


class ServiceError(Exception):
    """A request the domain refuses; the message is safe to show to the person who asked."""

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


class LedgerError(ServiceError):
    """A change that would make the ledger inconsistent (over-allocation, wrong currency, ...)."""
