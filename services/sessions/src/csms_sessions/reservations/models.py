"""The ``sessions.reservation`` table."""

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from csms_sessions.db import SCHEMA, UtcDateTime, enum_column, utc_now


class ReservationStatus(StrEnum):
    PENDING = "pending"  # stored, the station's answer not (yet) known
    ACCEPTED = "accepted"
    REJECTED = "rejected"  # the station answered Faulted/Occupied/Rejected/Unavailable
    CANCELLED = "cancelled"  # by us (CancelReservation Accepted)
    EXPIRED = "expired"  # past expires_at unused (2.x: ReservationStatusUpdate Expired)
    REMOVED = "removed"  # by the station (2.x ReservationStatusUpdate Removed)
    USED = "used"  # a transaction started with it


ACTIVE = frozenset({ReservationStatus.PENDING, ReservationStatus.ACCEPTED})


class Reservation(SQLModel, table=True):
    __tablename__ = "reservation"
    __table_args__ = {"schema": SCHEMA}

    # Our reservation id allocator: the database's auto-increment, unique across replicas.
    id: int | None = Field(default=None, primary_key=True)
    station_id: str = Field(max_length=48, index=True)
    # 1.6 connectorId / 2.x evseId; None: any (1.6 connectorId 0).
    evse_id: int | None = None
    connector_type: str | None = Field(default=None, max_length=20)
    id_token: str = Field(max_length=255)
    token_type: str | None = Field(default=None, max_length=20)
    group_id: str | None = Field(default=None, max_length=255)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    status: ReservationStatus = Field(sa_column=enum_column(ReservationStatus))
    # What the station said: ReserveNow status, or ReservationStatusUpdate's.
    ocpp_status: str | None = None
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)

    @property
    def effective_status(self) -> ReservationStatus:
        """The status, with an accepted reservation past its expiry counted as expired."""
        if self.status is ReservationStatus.ACCEPTED and self.expires_at <= utc_now():
            return ReservationStatus.EXPIRED
        return self.status
