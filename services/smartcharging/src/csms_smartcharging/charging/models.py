"""Tables of the charging state: sessions, limits on the wire, station reports, load samples."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from csms_core.db import UtcDateTime, utc_now
from csms_smartcharging.db import SCHEMA


class ChargingSession(SQLModel, table=True):
    """An active session (from ``csms.sessions``), with what the EV told us it needs.

    ``provisional``: a transaction the station just reported starting (``ocpp.inbound``)
    whose session has not come yet: counted at the EVSE's maximum, never sent a profile,
    replaced by the session when it comes (or ignored once ``provisional_ttl_s`` passed).
    """

    __tablename__ = "charging_session"
    __table_args__ = {"schema": SCHEMA}

    session_id: str = Field(primary_key=True, max_length=64)
    station_id: str = Field(index=True, max_length=48)
    evse_id: int
    transaction_id: str | None = None
    ocpp_version: str | None = None
    started_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    power_w: float | None = None
    current_a: float | None = None  # measured, per phase
    energy_wh: float = 0.0
    priority: float = 1.0
    # 2.x NotifyEVChargingNeeds
    ev_min_a: float | None = None
    ev_max_a: float | None = None
    energy_needed_wh: float | None = None
    departure_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # Since when it has drawn clearly less than its limit (None: it draws what it gets).
    underuse_since: datetime | None = Field(default=None, sa_type=UtcDateTime)
    provisional: bool = False


class EvseLimit(SQLModel, table=True):
    """The limit last sent to an EVSE (0: station-wide failsafe) and how the station took it."""

    __tablename__ = "evse_limit"
    __table_args__ = {"schema": SCHEMA}

    station_id: str = Field(primary_key=True, max_length=48)
    evse_id: int = Field(primary_key=True)
    session_id: str | None = None
    purpose: str = "TxProfile"
    limit_a: float = 0.0
    phases: int = 3
    outcome: str = "pending"  # Accepted | Rejected | error | timeout | offline | ...
    accepted: bool = False
    sent_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)


class StationLimit(SQLModel, table=True):
    """A limit a 2.x station reported itself (NotifyChargingLimit), until it clears it."""

    __tablename__ = "station_limit"
    __table_args__ = {"schema": SCHEMA}

    station_id: str = Field(primary_key=True, max_length=48)
    evse_id: int = Field(primary_key=True)  # 0: the whole station
    source: str = Field(primary_key=True, max_length=20)
    limit_a: float | None = None
    grid_critical: bool = False
    received_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)


class ProfileReport(SQLModel, table=True):
    """A 2.x ReportChargingProfiles, as the station sent it."""

    __tablename__ = "profile_report"
    __table_args__ = {"schema": SCHEMA}

    report_id: int | None = Field(default=None, primary_key=True)
    station_id: str = Field(index=True, max_length=48)
    evse_id: int
    request_id: int
    source: str
    profiles: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    received_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)


class LoadSample(SQLModel, table=True):
    """A site's load against its limit at one allocation (per phase, A)."""

    __tablename__ = "load_sample"
    __table_args__ = {"schema": SCHEMA}

    sample_id: int | None = Field(default=None, primary_key=True)
    site_id: str = Field(index=True, max_length=64)
    at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime, index=True)
    limit_a: list[float | None] = Field(default_factory=list, sa_type=JSON)  # None: no limit
    non_ev_a: list[float] = Field(default_factory=list, sa_type=JSON)
    allocated_a: list[float] = Field(default_factory=list, sa_type=JSON)
    measured_a: list[float] = Field(default_factory=list, sa_type=JSON)
    sessions: int = 0
    paused: int = 0


class ProcessedEvent(SQLModel, table=True):
    """Events already applied: a replay after a crash changes nothing."""

    __tablename__ = "processed_event"
    __table_args__ = {"schema": SCHEMA}

    event_id: str = Field(primary_key=True, max_length=64)
    processed_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime, index=True)
