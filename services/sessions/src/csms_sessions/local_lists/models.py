"""The ``sessions.local_list`` and ``sessions.local_list_entry`` tables."""

from datetime import datetime

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from csms_sessions.db import SCHEMA, UtcDateTime, utc_now


class LocalList(SQLModel, table=True):
    """One station's local authorization list: its version and sync state."""

    __tablename__ = "local_list"
    __table_args__ = {"schema": SCHEMA}

    station_id: str = Field(primary_key=True, max_length=48)
    # The last list version we sent (each SendLocalList takes the next one).
    version: int = 0
    # The version the station confirmed holding (Accepted), None until it did.
    station_version: int | None = None
    # Set: the list is "every token of this group", kept so as tokens join or leave it.
    group_id: str | None = Field(default=None, max_length=255)
    # Changes wait to be sent; a Full update is owed (new list, or the station lost track).
    pending: bool = Field(default=False, index=True)
    needs_full: bool = True
    # The station's last SendLocalList status, or our outcome (offline, timeout, error).
    last_status: str | None = None
    last_synced_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # No automatic retry before this (after a failure); a reconnect clears it.
    retry_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # A replica syncing the list holds it until then (so two never send at once).
    lease_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)


class LocalListEntry(SQLModel, table=True):
    """One token on a station's list, with the authorization data the list carries for it."""

    __tablename__ = "local_list_entry"
    __table_args__ = {"schema": SCHEMA}

    station_id: str = Field(primary_key=True, max_length=48)
    id_token: str = Field(primary_key=True, max_length=255)
    type: str = Field(primary_key=True, max_length=20)
    status: str
    expiry_date: datetime | None = Field(default=None, sa_type=UtcDateTime)
    group_id: str | None = Field(default=None, max_length=255)
    evse_ids: list[int] | None = Field(default=None, sa_type=JSON)
    # The station confirmed this entry as it is now; ``removed``: to be taken off the list.
    synced: bool = False
    removed: bool = False
