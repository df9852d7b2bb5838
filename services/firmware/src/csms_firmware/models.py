"""Tables every domain of the service shares: consumed events, the outbox, request ids."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from csms_firmware.db import SCHEMA, UtcDateTime, utc_now


class ProcessedEvent(SQLModel, table=True):
    """A consumed event whose effects are stored: a replay of it changes nothing."""

    __tablename__ = "processed_event"
    __table_args__ = {"schema": SCHEMA}

    event_id: str = Field(primary_key=True, max_length=64)
    processed_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime, index=True)


class OutboxRecord(SQLModel, table=True):
    """A ``csms.firmware`` event stored with the change it reports, published after commit."""

    __tablename__ = "outbox"
    __table_args__ = {"schema": SCHEMA}

    id: int | None = Field(default=None, primary_key=True)
    topic: str
    envelope: dict[str, Any] = Field(sa_type=JSON)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    published: bool = Field(default=False, index=True)


class StationRequest(SQLModel, table=True):
    """One request sent to a station; its id is the OCPP ``requestId`` (unique across kinds)."""

    __tablename__ = "request"
    __table_args__ = {"schema": SCHEMA}

    request_id: int | None = Field(default=None, primary_key=True)
    station_id: str = Field(max_length=48, index=True)
    kind: str = Field(max_length=16)  # update | publish | log
    campaign_id: str | None = None
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
