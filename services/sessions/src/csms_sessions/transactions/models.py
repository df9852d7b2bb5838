"""The ``sessions.charging_session`` and ``sessions.transaction_id`` tables."""

from datetime import datetime
from enum import StrEnum
from uuid import uuid4

from sqlalchemy import JSON, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from csms_sessions.db import SCHEMA, UtcDateTime, enum_column, utc_now


class SessionState(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


def _new_session_id() -> str:
    return str(uuid4())


class ChargingSession(SQLModel, table=True):
    """One charging session (an OCPP transaction), whatever version the station speaks.

    ``transaction_id`` is the OCPP id as a string: the 1.6 integer we allocated
    (see TransactionId) or the 2.x station's own transactionId. ``start_seen``
    is False while the session is only known from later messages (an offline
    replay out of order, a Stop for an id we never saw); ``started_at`` is then
    the earliest time seen so far.
    """

    __tablename__ = "charging_session"
    __table_args__ = (
        UniqueConstraint("station_id", "transaction_id", name="uq_charging_session_transaction"),
        Index("ix_charging_session_station_state", "station_id", "state"),
        Index("ix_charging_session_started_at", "started_at"),
        Index("ix_charging_session_id_token", "id_token"),
        {"schema": SCHEMA},
    )

    session_id: str = Field(default_factory=_new_session_id, primary_key=True, max_length=36)
    station_id: str = Field(max_length=48)
    evse_id: int | None = None
    connector_id: int | None = None
    transaction_id: str = Field(max_length=36)
    ocpp_version: str | None = Field(default=None, max_length=8)
    id_token: str | None = Field(default=None, max_length=255)
    id_token_type: str | None = Field(default=None, max_length=20)
    state: SessionState = Field(sa_column=enum_column(SessionState))
    start_seen: bool = False
    started_at: datetime = Field(sa_type=UtcDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # Version-neutral (see transactions.reasons) and as the station sent it.
    stop_reason: str | None = Field(default=None, max_length=30)
    ocpp_stop_reason: str | None = Field(default=None, max_length=30)
    trigger_reason: str | None = Field(default=None, max_length=40)
    charging_state: str | None = Field(default=None, max_length=20)
    meter_start_wh: float | None = None
    meter_stop_wh: float | None = None
    energy_wh: float | None = None
    last_power_w: float | None = None
    last_current_a: float | None = None
    soc_percent: float | None = None
    # The time of the newest sample behind power/current/SoC (older replays do not win).
    measured_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # 2.x seqNo: the highest seen, every one seen (to drop re-sent events), and whether
    # numbers are missing between 0 (or the lowest seen) and the highest.
    last_seq_no: int | None = None
    seen_seq_nos: list[int] = Field(default_factory=list, sa_type=JSON)
    seq_gap: bool = False
    offline: bool = False
    reservation_id: int | None = None
    remote_start_id: int | None = None
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)


class TransactionId(SQLModel, table=True):
    """One allocated 1.6 transactionId; the database's auto-increment makes it unique
    across replicas (SERIAL on PostgreSQL, the rowid on SQLite)."""

    __tablename__ = "transaction_id"
    __table_args__ = {"schema": SCHEMA}

    transaction_id: int | None = Field(default=None, primary_key=True)
    station_id: str = Field(max_length=48)
    event_id: str = Field(max_length=64, unique=True)
    allocated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
