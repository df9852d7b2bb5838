"""The ``firmware.station`` and ``firmware.site`` tables."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from csms_firmware.db import SCHEMA, UtcDateTime, utc_now


class FirmwareStation(SQLModel, table=True):
    """A station as its BootNotifications and connections describe it."""

    __tablename__ = "station"
    __table_args__ = {"schema": SCHEMA}

    station_id: str = Field(primary_key=True, max_length=48)
    vendor: str | None = Field(default=None, index=True)
    model: str | None = Field(default=None, index=True)
    serial_number: str | None = None
    firmware_version: str | None = Field(default=None, index=True)
    ocpp_version: str | None = None
    site_id: str | None = Field(default=None, max_length=64, index=True)
    online: bool = False
    connection_id: str | None = None
    last_boot_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)


class Site(SQLModel, table=True):
    """A site's time zone: maintenance windows are local to it."""

    __tablename__ = "site"
    __table_args__ = {"schema": SCHEMA}

    site_id: str = Field(primary_key=True, max_length=64)
    timezone: str = "UTC"
    name: str | None = None
