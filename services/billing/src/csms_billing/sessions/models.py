"""Billing's own view of a session: ``billing.session`` and ``billing.session_sample``.

Built from the sessions service's domain events (never its tables): who charged
where, when it started and ended, the tariff version pinned at its start, and
the samples the cost engine prices from (register readings, power, current,
charging state), de-duplicated by what they are, not by the message they came in.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel

from csms_billing.db import SCHEMA
from csms_core.db import UtcDateTime, utc_now


class SessionState(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class BilledSession(SQLModel, table=True):
    __tablename__ = "session"
    __table_args__ = (
        Index("ix_billing_session_station", "station_id", "started_at"),
        {"schema": SCHEMA},
    )

    session_id: str = Field(primary_key=True, max_length=36)
    station_id: str = Field(max_length=48)
    evse_id: int | None = None
    connector_id: int | None = None
    transaction_id: str = Field(max_length=36)
    ocpp_version: str | None = Field(default=None, max_length=8)
    id_token: str | None = Field(default=None, max_length=255)
    token_type: str | None = Field(default=None, max_length=20)
    group_id: str | None = Field(default=None, max_length=255)
    site_id: str | None = Field(default=None, max_length=64)
    state: str = Field(default=SessionState.ACTIVE, max_length=8)
    started_at: datetime = Field(sa_type=UtcDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    meter_start_wh: float | None = None
    meter_stop_wh: float | None = None
    stop_reason: str | None = Field(default=None, max_length=30)
    # The sessions service's figures of the ended session: its energy (compared with the
    # energy priced), and whether they are final (its start known: a CDR may be issued).
    energy_wh: float | None = None
    final: bool = False
    reserved_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # The tariff version in force at the start (None: no tariff applies: no cost known).
    tariff_id: str | None = Field(default=None, max_length=36)
    tariff_version: int | None = None
    # The CDR that currently stands for the session (a correction replaces it), and when
    # it is due: a moment after the end, so samples published just before the end count.
    cdr_id: str | None = Field(default=None, max_length=39)
    cdr_due_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # OCPP 2.x CostUpdated: when the next running cost is due, and the last one the station
    # took (costs.updates).
    cost_due_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    cost_sent: float | None = None
    # A 2.1 station's own cost (its latest costDetails and their time), to reconcile.
    station_cost: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    # A 2.1 station's own cost that differs from the CSMS's (costs.reconcile), as flagged.
    cost_mismatch: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    # 2.1 payments: the settlement and the cost limit of a prepaid token, if any.
    settlement: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    max_cost: float | None = None
    # The session's receipt for the driver (GET /receipts/{id}), once a station was given
    # its URL (California Pricing: the Ended answer's qrCodeText).
    receipt_id: str | None = Field(default=None, max_length=50, unique=True)
    # A prepaid token's session (payments.limits): when its cost is next checked against
    # the balance, and when its station accepted to stop it.
    limit_due_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    limit_stop_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)

    @property
    def station_cost_at(self) -> str | None:
        return None if self.station_cost is None else str(self.station_cost["at"])


class SampleKind(StrEnum):
    REGISTER = "register"  # Energy.Active.Import.Register, Wh
    POWER = "power"  # Power.Active.Import, W
    CURRENT = "current"  # Current.Import, A, per phase (summed when priced)
    CHARGING = "charging"  # 1: charging, 0: not (2.x chargingState)


class SessionSample(SQLModel, table=True):
    __tablename__ = "session_sample"
    __table_args__ = {"schema": SCHEMA}

    session_id: str = Field(primary_key=True, max_length=36)
    at: datetime = Field(primary_key=True, sa_type=UtcDateTime)
    kind: str = Field(primary_key=True, max_length=10)
    phase: str = Field(default="", primary_key=True, max_length=8)
    value: float
    # Sent after the session ended, as the sessions service says (late data): never priced.
    late: bool = False
    # Read after the session's CDR was issued (not late for the sessions service): priced
    # by a correction only, which a change of the session's final figures makes.
    after_cdr: bool = False
    # The station's signature over the reading (OCMF and the like), carried into the CDR.
    signed: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    context: str | None = Field(default=None, max_length=24)


class TariffChange(SQLModel, table=True):
    """A session's tariff changed while it ran (OCPP 2.1 ChangeTransactionTariff, or the
    operator's change on REST): from ``at`` on, that tariff version prices it."""

    __tablename__ = "session_tariff_change"
    __table_args__ = {"schema": SCHEMA}

    session_id: str = Field(primary_key=True, max_length=36)
    at: datetime = Field(primary_key=True, sa_type=UtcDateTime)
    tariff_id: str = Field(max_length=36)
    tariff_version: int
    # What the 2.1 station answered ChangeTransactionTariff (None: no station was asked).
    station_status: str | None = Field(default=None, max_length=24)
