"""The payment provider (PSP) behind web / QR payments: how its webhook is trusted.

A provider calls ``POST /payments/webhook`` when a driver starts paying on its page
(``started``), and when the payment went through (``authorized``) or did not. The call
carries no bearer token: it is authenticated by the provider's signature over the
exact body, ``X-Csms-Signature: t=<unix time>, v1=<hex HMAC-SHA256 of "<t>.<body>" with
the shared secret>``, within ``tolerance_s`` of now (an old signature replayed is
refused). Then, as defence in depth, a payment said to be authorized is read back from
the provider's API when one is configured: the CSMS starts charging only on what the
provider itself says.

``PaymentProvider`` is the interface another PSP's adapter implements.
"""

import hashlib
import hmac
import time
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

SIGNATURE_HEADER = "x-csms-signature"


class InvalidSignature(ValueError):
    """The webhook is not the provider's (no, a wrong or a stale signature)."""


class PaymentState(StrEnum):
    STARTED = "started"  # the driver is paying (scanned the QR code): tell the station
    AUTHORIZED = "authorized"  # the driver paid (or the amount is held): start charging
    FAILED = "failed"
    CANCELED = "canceled"


class WebhookEvent(BaseModel):
    """What a provider says about one payment (its webhook body)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: str = Field(min_length=1, max_length=80)
    payment_id: str = Field(min_length=1, max_length=255)
    state: PaymentState
    station_id: str = Field(min_length=1, max_length=48)
    evse_id: int = Field(ge=1)
    amount: Decimal = Field(ge=0, le=Decimal("1e9"), allow_inf_nan=False)
    currency: str = Field(min_length=3, max_length=3)
    # How long the driver has to pay, from now (``started``); the CSMS's default if absent.
    timeout_s: int | None = Field(default=None, ge=1, le=3600)


class PaymentProvider(Protocol):
    def verify(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """The event, if the provider signed it; InvalidSignature otherwise."""
        ...

    async def state_of(self, payment_id: str) -> PaymentState | None:
        """The payment as the provider's API has it (None: no API to ask)."""
        ...


def sign(secret: bytes, body: bytes, at: int) -> str:
    """The signature header value a provider sends for ``body`` at unix time ``at``."""
    digest = hmac.new(secret, f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


class SignedWebhookProvider:
    """A provider signing its webhooks with a shared secret (and, optionally, an API)."""

    def __init__(
        self, secret: bytes, *, api_url: str | None = None, tolerance_s: float = 300.0
    ) -> None:
        self._secret = secret
        self._api_url = api_url
        self._tolerance_s = tolerance_s

    def verify(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        fields = dict(
            part.split("=", 1)
            for part in headers.get(SIGNATURE_HEADER, "").split(",")
            if "=" in part
        )
        stamp, given = fields.get("t", ""), fields.get("v1", "")
        if not stamp.isdigit() or not given:
            raise InvalidSignature(f"no {SIGNATURE_HEADER} header of the form t=...,v1=...")
        if abs(time.time() - int(stamp)) > self._tolerance_s:
            raise InvalidSignature("the signature is too old or from the future (a replay?)")
        expected = sign(self._secret, body, int(stamp)).partition("v1=")[2]
        if not hmac.compare_digest(expected, given):
            raise InvalidSignature("the signature does not match the body")
        try:
            return WebhookEvent.model_validate_json(body)
        except ValidationError as exc:
            raise InvalidSignature(f"a signed body that is no payment event: {exc}") from exc

    async def state_of(self, payment_id: str) -> PaymentState | None:
        if self._api_url is None:
            return None
        async with httpx.AsyncClient(base_url=self._api_url, timeout=10) as client:
            response = await client.get(f"/payments/{payment_id}")
            response.raise_for_status()
            return PaymentState(response.json()["state"])
