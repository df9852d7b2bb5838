"""The ``security.security_event`` table: every security event, from stations and our own."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from csms_core.events.security import SecurityEventSource as EventSource
from csms_core.events.security import Severity
from csms_security.db import SCHEMA, UtcDateTime, enum_column, utc_now

__all__ = ["EventSource", "SecurityEvent"]


class SecurityEvent(SQLModel, table=True):
    __tablename__ = "security_event"
    __table_args__ = {"schema": SCHEMA}

    id: str = Field(primary_key=True, max_length=64)  # the id of the event that reported it
    station_id: str = Field(index=True, max_length=48)
    type: str = Field(max_length=50)  # as reported
    name_2x: str | None = Field(default=None, max_length=50, index=True)
    name_16: str | None = Field(default=None, max_length=50)
    severity: Severity = Field(sa_column=enum_column(Severity, index=True))
    critical: bool = False
    source: EventSource = Field(sa_column=enum_column(EventSource))
    ocpp_version: str | None = Field(default=None, max_length=8)
    timestamp: datetime = Field(sa_type=UtcDateTime, index=True)  # when it happened
    received_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    tech_info: str | None = Field(default=None, max_length=255)
