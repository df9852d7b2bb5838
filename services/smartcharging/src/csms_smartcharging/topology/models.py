"""Tables of the site topology and its limits (schema ``smartcharging``)."""

from datetime import datetime

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from csms_core.db import UtcDateTime, utc_now
from csms_smartcharging.db import SCHEMA


class Site(SQLModel, table=True):
    """A grid connection: its limit in A per phase, or in kW over all its phases."""

    __tablename__ = "site"
    __table_args__ = {"schema": SCHEMA}

    site_id: str = Field(primary_key=True, max_length=64)
    name: str = ""
    phases: int = 3
    voltage_v: float = 230.0
    limit_a: float | None = None
    limit_kw: float | None = None
    # The station-wide TxDefaultProfile sent on connect; None: the settings' failsafe_a.
    failsafe_a: float | None = None
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)


class ChargingGroup(SQLModel, table=True):
    """A feeder or charging group inside a site, possibly inside another group."""

    __tablename__ = "charging_group"
    __table_args__ = {"schema": SCHEMA}

    group_id: str = Field(primary_key=True, max_length=64)
    site_id: str = Field(index=True, max_length=64)
    parent_group_id: str | None = Field(default=None, max_length=64)
    name: str = ""
    limit_a: float | None = None
    limit_kw: float | None = None


class StationAssignment(SQLModel, table=True):
    """Where a station hangs: one site, optionally one group of it."""

    __tablename__ = "station"
    __table_args__ = {"schema": SCHEMA}

    station_id: str = Field(primary_key=True, max_length=48)
    site_id: str = Field(index=True, max_length=64)
    group_id: str | None = Field(default=None, max_length=64)
    max_a: float | None = None  # the station's own rating, shared by its EVSEs


class EvseRating(SQLModel, table=True):
    """An EVSE's current range and wiring (a 1-phase EVSE loads the phase its rotation names)."""

    __tablename__ = "evse"
    __table_args__ = {"schema": SCHEMA}

    station_id: str = Field(primary_key=True, max_length=48)
    evse_id: int = Field(primary_key=True)
    max_a: float = 32.0
    min_a: float = 6.0
    phases: int = 3
    # OCPP 2.0.1 PhaseRotation (RST, RTS, SRT, STR, TRS, TSR): the first letter is the
    # site phase the EVSE's L1 is wired to.
    phase_rotation: str = "RST"
    priority: float = 1.0


class LimitSchedule(SQLModel, table=True):
    """A lower limit on some days between two times of day (e.g. 17:00-21:00 on weekdays)."""

    __tablename__ = "limit_schedule"
    __table_args__ = {"schema": SCHEMA}

    schedule_id: int | None = Field(default=None, primary_key=True)
    site_id: str = Field(index=True, max_length=64)
    group_id: str | None = Field(default=None, max_length=64)
    days: list[int] = Field(default_factory=lambda: list(range(7)), sa_type=JSON)
    start: str = "17:00"  # HH:MM, local to ``timezone``
    end: str = "21:00"
    timezone: str = "UTC"
    limit_a: float | None = None
    limit_kw: float | None = None


class LimitOverride(SQLModel, table=True):
    """A limit the grid operator set through REST, in force until ``until`` (or removed)."""

    __tablename__ = "limit_override"
    __table_args__ = {"schema": SCHEMA}

    site_id: str = Field(primary_key=True, max_length=64)
    limit_a: float | None = None
    limit_kw: float | None = None
    until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    set_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)


class SiteLoad(SQLModel, table=True):
    """The measured non-EV load of a site, per phase in A, subtracted from its limit."""

    __tablename__ = "site_load"
    __table_args__ = {"schema": SCHEMA}

    site_id: str = Field(primary_key=True, max_length=64)
    load_a: list[float] = Field(default_factory=lambda: [0.0, 0.0, 0.0], sa_type=JSON)
    measured_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
