"""Security profile upgrades (2.0.1 A05, 1.6 whitepaper) and the profile stations connect with."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from csms_security.db import SCHEMA, UtcDateTime, enum_column, utc_now


class UpgradeState(StrEnum):
    PENDING = "pending"  # created; the first command is on its way
    CONFIGURING = "configuring"  # SetNetworkProfile / SetVariables (2.x), ChangeConfiguration (1.6)
    RESETTING = "resetting"  # Reset sent
    AWAITING_RECONNECT = "awaiting-reconnect"  # the station reboots into the new profile
    COMPLETED = "completed"  # it came back with the new profile; the recorded one is raised
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in (UpgradeState.COMPLETED, UpgradeState.FAILED)


class ProfileUpgrade(SQLModel, table=True):
    __tablename__ = "profile_upgrade"
    __table_args__ = {"schema": SCHEMA}

    id: str = Field(primary_key=True, max_length=32)
    station_id: str = Field(index=True, max_length=48)
    ocpp_version: str = Field(max_length=8)
    from_profile: int
    target_profile: int
    state: UpgradeState = Field(sa_column=enum_column(UpgradeState, index=True))
    configuration_slot: int | None = None
    csms_url: str | None = None
    # Each call sent and its outcome: [{"action", "outcome", "status", "at"}].
    steps: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    error: str | None = None
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    deadline: datetime = Field(sa_type=UtcDateTime)


class StationLink(SQLModel, table=True):
    """A station's latest connection as the gateway reported it."""

    __tablename__ = "station_link"
    __table_args__ = {"schema": SCHEMA}

    station_id: str = Field(primary_key=True, max_length=48)
    connected: bool
    security_profile: int
    ocpp_version: str = Field(max_length=8)
    connection_id: str = Field(max_length=64)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
