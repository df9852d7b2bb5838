"""The ``sessions.station`` and ``sessions.connector_status`` tables."""

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from csms_sessions.db import SCHEMA, UtcDateTime, enum_column, utc_now


class BootStatus(StrEnum):
    """RegistrationStatus, identical in OCPP 1.6 and 2.x."""

    ACCEPTED = "Accepted"
    PENDING = "Pending"
    REJECTED = "Rejected"


class ConnectorState(StrEnum):
    """Version-neutral connector status: the OCPP 2.x ConnectorStatusEnumType."""

    AVAILABLE = "Available"
    OCCUPIED = "Occupied"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


class Station(SQLModel, table=True):
    """A charging station we have heard of: registered over REST or seen on the wire."""

    __tablename__ = "station"
    __table_args__ = {"schema": SCHEMA}

    station_id: str = Field(primary_key=True, max_length=48)
    # Created or updated through `PUT /stations/{id}`; an unknown station that booted is not.
    registered: bool = False
    vendor: str | None = None
    model: str | None = None
    serial_number: str | None = None
    firmware_version: str | None = None
    ocpp_version: str | None = None
    boot_status: BootStatus | None = Field(
        default=None, sa_column=enum_column(BootStatus, nullable=True)
    )
    last_boot_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_seen_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    online: bool = Field(default=False, index=True)
    gateway_id: str | None = None
    connection_id: str | None = None
    connected_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    disconnected_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)


class ConnectorStatus(SQLModel, table=True):
    """The last reported status of one connector.

    Addressing is the 2.x one (EVSE, connector). OCPP 1.6 has connectors only:
    1.6 connectorId N > 0 is stored as (evse N, connector 1), and connectorId 0
    (the whole station) as (evse 0, connector 0).
    """

    __tablename__ = "connector_status"
    __table_args__ = {"schema": SCHEMA}

    station_id: str = Field(primary_key=True, max_length=48)
    evse_id: int = Field(primary_key=True)
    connector_id: int = Field(primary_key=True)
    status: ConnectorState = Field(sa_column=enum_column(ConnectorState))
    ocpp_status: str = Field(description="the status as the station sent it, e.g. 1.6 Charging")
    error_code: str | None = None
    # The station's own timestamp of the status (time of receipt when 1.6 omits it).
    updated_at: datetime = Field(sa_type=UtcDateTime)
