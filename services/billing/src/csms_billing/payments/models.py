"""Payments: web payments, prepaid balances and settlements (``billing.*`` tables).

Amounts are integers in the currency's minor unit (cents): exact in every database.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index
from sqlmodel import Field, SQLModel

from csms_billing.db import SCHEMA
from csms_core.db import UtcDateTime, utc_now


class WebPaymentStatus(StrEnum):
    PENDING = "pending"  # the driver is paying on the provider's page: the station was told
    AUTHORIZED = "authorized"  # the provider says paid: charging is being started
    STARTED = "started"  # the station accepted RequestStartTransaction
    FAILED = "failed"  # the provider says the payment failed or was canceled
    EXPIRED = "expired"  # pending past the driver's time: shown so, never stored
    UNMATCHED = "unmatched"  # paid, but charging could not start: to be refunded


class WebPayment(SQLModel, table=True):
    """One web / QR payment on one EVSE (the provider's webhooks; OCPP 2.1
    NotifyWebPaymentStarted to the station, then RequestStartTransaction)."""

    __tablename__ = "web_payment"
    __table_args__ = (
        Index("ix_billing_web_payment_evse", "station_id", "evse_id", "status"),
        {"schema": SCHEMA},
    )

    web_payment_id: int | None = Field(default=None, primary_key=True)
    station_id: str = Field(max_length=48)
    evse_id: int
    status: str = Field(max_length=12)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    payment_id: str | None = Field(default=None, max_length=255, unique=True)
    amount_minor: int | None = Field(default=None, sa_column=Column(BigInteger()))
    currency: str | None = Field(default=None, max_length=3)
    remote_start_id: int | None = None
    detail: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)


class PaymentEvent(SQLModel, table=True):
    """A provider webhook already applied (providers retry them: once is enough)."""

    __tablename__ = "payment_event"
    __table_args__ = {"schema": SCHEMA}

    event_id: str = Field(primary_key=True, max_length=80)
    received_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)


class PrepaidAccount(SQLModel, table=True):
    """A prepaid token's account; its balance is the sum of its entries."""

    __tablename__ = "prepaid_account"
    __table_args__ = {"schema": SCHEMA}

    id_token: str = Field(primary_key=True, max_length=255)
    currency: str = Field(max_length=3)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)


class EntryKind(StrEnum):
    TOP_UP = "top_up"
    SESSION = "session"  # a CDR's cost (negative), or its credit (positive)


class PrepaidEntry(SQLModel, table=True):
    __tablename__ = "prepaid_entry"
    __table_args__ = (Index("ix_billing_prepaid_entry_token", "id_token", "at"), {"schema": SCHEMA})

    entry_id: int | None = Field(default=None, primary_key=True)
    id_token: str = Field(max_length=255)
    kind: str = Field(max_length=10)
    amount_minor: int = Field(sa_column=Column(BigInteger(), nullable=False))
    cdr_id: str | None = Field(default=None, max_length=39, unique=True)
    at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)


class Settlement(SQLModel, table=True):
    """What a payment terminal settled for a session (OCPP 2.1 NotifySettlement)."""

    __tablename__ = "settlement"
    __table_args__ = (Index("ix_billing_settlement_session", "session_id"), {"schema": SCHEMA})

    receipt_id: str = Field(primary_key=True, max_length=50)
    station_id: str = Field(max_length=48)
    transaction_id: str | None = Field(default=None, max_length=36)
    session_id: str | None = Field(default=None, max_length=36)
    cdr_id: str | None = Field(default=None, max_length=39)
    psp_ref: str = Field(max_length=255)
    status: str = Field(max_length=10)
    amount: float
    settled_at: datetime = Field(sa_type=UtcDateTime)
    receipt_url: str = Field(max_length=2000)
    # As the station sent them: statusInfo, vatNumber, vatCompany.
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
