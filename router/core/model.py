"""Data the engine consumes: Alertmanager deliveries (payload version 4) and recorded lines.

Parsing is strict about what the contract needs (version "4", alert fields) and lenient about
what it does not (unknown fields are kept, so a recorded delivery re-serialises unchanged).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ground.errors import InputError, describe_validation_error
from ground.jsonio import JsonError, loads
from ground.times import ZERO_TIME, parse_time


class AlertPayload(BaseModel):
    """One alert of a webhook delivery, as Alertmanager sends it."""

    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str
    endsAt: str = ZERO_TIME
    generatorURL: str = ""
    fingerprint: str

    @field_validator("startsAt")
    @classmethod
    def _starts_at_is_time(cls, value: str) -> str:
        if parse_time(value) is None:
            raise ValueError("startsAt must be a real RFC 3339 time")
        return value

    @field_validator("endsAt")
    @classmethod
    def _ends_at_is_time(cls, value: str) -> str:
        parse_time(value)
        return value

    @field_validator("fingerprint")
    @classmethod
    def _fingerprint_not_empty(cls, value: str) -> str:
        if not value:
            raise ValueError("fingerprint must not be empty")
        return value


class WebhookPayload(BaseModel):
    """An Alertmanager webhook body (payload version 4)."""

    model_config = ConfigDict(extra="allow")

    version: Literal["4"]
    groupKey: str = ""
    status: Literal["firing", "resolved"] = "firing"
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    truncatedAlerts: int = 0
    alerts: list[AlertPayload]


class Delivery(BaseModel):
    """One recorded webhook delivery: when it arrived and what it carried."""

    model_config = ConfigDict(extra="allow")

    received_at: str
    payload: WebhookPayload

    @field_validator("received_at")
    @classmethod
    def _received_at_is_time(cls, value: str) -> str:
        if parse_time(value) is None:
            raise ValueError("received_at must be a real RFC 3339 time")
        return value

    @property
    def received(self) -> datetime:
        received = parse_time(self.received_at)
        assert received is not None  # guaranteed by the validator
        return received


def parse_delivery_line(line: str) -> Delivery:
    """One JSON line of a recorded stream -> Delivery, or InputError naming the field."""
    # One pass through pydantic's JSON validator for the common, valid line. It reads JSON as
    # `loads` does (same parser) except that it takes NaN and Infinity, which `loads` refuses;
    # a line that names them, or that fails, goes the two-step way for the same answer and
    # the same error message as the webhook's.
    if "NaN" not in line and "Infinity" not in line:
        try:
            return Delivery.model_validate_json(line)
        except ValueError:  # ValidationError included
            pass
    try:
        # The webhook's reader: a line the service recorded always reads back.
        return Delivery.model_validate(loads(line))
    except JsonError as exc:
        raise InputError(f"not valid JSON ({exc})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "model_type" and not first["loc"]:
            raise InputError("a line must be a JSON object with received_at and payload") from None
        raise InputError(describe_validation_error(exc)) from None
    except ValueError as exc:
        raise InputError(str(exc)) from None


def parse_webhook(raw: Any) -> WebhookPayload:
    """A decoded webhook body -> WebhookPayload, or InputError naming the field."""
    if not isinstance(raw, dict):
        raise InputError("(body): the payload must be a JSON object")
    try:
        return WebhookPayload.model_validate(raw)
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc)) from None
    except ValueError as exc:
        raise InputError(str(exc)) from None
