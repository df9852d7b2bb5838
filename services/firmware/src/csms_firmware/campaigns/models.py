"""The ``firmware.campaign``, ``firmware.campaign_station`` and ``firmware.status_record``
tables."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from csms_firmware.campaigns.states import CampaignState, StationState
from csms_firmware.db import SCHEMA, UtcDateTime, enum_column, utc_now


class Campaign(SQLModel, table=True):
    __tablename__ = "campaign"
    __table_args__ = {"schema": SCHEMA}

    campaign_id: str = Field(primary_key=True, max_length=32)
    name: str | None = None
    image_id: str = Field(max_length=32, index=True)
    target: dict[str, Any] = Field(sa_type=JSON)
    plan: dict[str, Any] = Field(sa_type=JSON)
    state: CampaignState = Field(sa_column=enum_column(CampaignState, index=True))
    state_reason: str | None = None
    starts_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    ends_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # Counts at the last start or resume (at ``resumed_at``): the failure threshold judges
    # what came since.
    failed_at_resume: int = 0
    finished_at_resume: int = 0
    resumed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class CampaignStation(SQLModel, table=True):
    """One station of a campaign. ``active`` rows are unique per station: one campaign each."""

    __tablename__ = "campaign_station"
    __table_args__ = {"schema": SCHEMA}

    campaign_id: str = Field(primary_key=True, max_length=32)
    station_id: str = Field(primary_key=True, max_length=48)
    wave: int
    position: int
    state: StationState = Field(sa_column=enum_column(StationState))
    active: bool = True
    ocpp_status: str | None = None
    attempt: int = 0
    request_id: int | None = Field(default=None, index=True)
    from_version: str | None = None
    reason: str | None = None
    dispatched_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_activity_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    retry_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    triggered: bool = False
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class StatusRecord(SQLModel, table=True):
    """A status a station reported (firmware, publish or log), once per change."""

    __tablename__ = "status_record"
    __table_args__ = {"schema": SCHEMA}

    id: int | None = Field(default=None, primary_key=True)
    station_id: str = Field(max_length=48, index=True)
    kind: str = Field(max_length=16)  # firmware | publish | log
    status: str
    request_id: int | None = None
    campaign_id: str | None = None
    reported_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
