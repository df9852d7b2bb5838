"""The ``sessions.charging_session`` and ``sessions.transaction_id`` tables."""

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import uuid4

from sqlalchemy import JSON, BigInteger, Index, Integer, UniqueConstraint
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
        Index("ix_charging_session_station_evse_state", "station_id", "evse_id", "state"),
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
    # 2.x: the seqNo of the Started that set the start (a lower one takes over while active).
    start_seq_no: int | None = None
    offline: bool = False
    reservation_id: int | None = None
    remote_start_id: int | None = None
    # Ended with its start known: start, end, stop reading and energy never change again
    # (docs/sessions.md). An ended session whose start is missing becomes final when it comes.
    final: bool = False
    # Where the station's own data disagree, or the CSMS ended the session itself:
    # [{"reason": FlagReason, "detail": str, "flagged_at": OCPP time}], one per reason.
    flags: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    # Messages that arrived for the session once it had ended (stored, never applied).
    late_messages: int = 0
    # The station reported the EVSE Available (its time) while the session was active, and
    # when we heard it; the resolution (transactions.resolution) ends it after a grace.
    idle_since: datetime | None = Field(default=None, sa_type=UtcDateTime)
    idle_noticed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # When a replica last asked the station about it (claims the check, see resolution).
    resolution_checked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)


class MessageDisposition(StrEnum):
    """What a transaction message did to its session (docs/sessions.md)."""

    APPLIED = "applied"  # it set or moved the session's figures
    DUPLICATE = "duplicate"  # the same message again (same content or same seqNo and content)
    LATE = "late"  # it came once the session had ended: stored, not applied
    CONFLICTING = "conflicting"  # a reused seqNo with other content: stored, not applied


# BIGINT on PostgreSQL (every transaction message), INTEGER for SQLite's rowid.
MESSAGE_ID = BigInteger().with_variant(Integer(), "sqlite")


class SessionMessage(SQLModel, table=True):
    """Every transaction message a session received, as sent, and what it did: nothing of
    a session is deleted, so late and contradictory data stay visible."""

    __tablename__ = "session_message"
    __table_args__ = (
        Index("ix_session_message_session", "session_id", "id"),
        {"schema": SCHEMA},
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=MESSAGE_ID)
    session_id: str = Field(max_length=36)
    event_id: str = Field(max_length=64, description="the inbound event's envelope id")
    action: str = Field(max_length=40)
    event_type: str | None = Field(default=None, max_length=10, description="2.x eventType")
    seq_no: int | None = None
    timestamp: datetime | None = Field(default=None, sa_type=UtcDateTime)
    received_at: datetime = Field(sa_type=UtcDateTime)
    disposition: MessageDisposition = Field(sa_column=enum_column(MessageDisposition))
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class TransactionId(SQLModel, table=True):
    """One allocated 1.6 transactionId; the database's auto-increment makes it unique
    across replicas (SERIAL on PostgreSQL, the rowid on SQLite)."""

    __tablename__ = "transaction_id"
    __table_args__ = {"schema": SCHEMA}

    transaction_id: int | None = Field(default=None, primary_key=True)
    station_id: str = Field(max_length=48)
    event_id: str = Field(max_length=64, unique=True)
    allocated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
