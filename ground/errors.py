"""Errors that name where bad input came from."""

from __future__ import annotations

from pydantic import ValidationError


class InputError(ValueError):
    """Bad input with a message that names where it came from (field, file, line)."""


def describe_validation_error(error: ValidationError) -> str:
    """First pydantic error as `field.path: message`, short enough for a log line or HTTP body."""
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "(body)"
    return f"{location}: {first['msg']}"
