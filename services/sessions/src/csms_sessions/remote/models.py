"""The ``sessions.remote_start`` table: remote starts we asked for, and their remoteStartId."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from csms_sessions.db import SCHEMA, UtcDateTime, utc_now


class RemoteStart(SQLModel, table=True):
    """One remote start request. Its auto-increment id is the 2.x remoteStartId, unique
    across replicas; the station echoes it in TransactionEvent (OCPP 2.0.1 F01.FR.04),
    which links the transaction to this request."""

    __tablename__ = "remote_start"
    __table_args__ = {"schema": SCHEMA}

    remote_start_id: int | None = Field(default=None, primary_key=True)
    station_id: str = Field(max_length=48, index=True)
    id_token: str = Field(max_length=255)
    token_type: str | None = Field(default=None, max_length=20)
    evse_id: int | None = None
    requested_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    # The station's answer (Accepted/Rejected) once it gave one.
    status: str | None = Field(default=None, max_length=20)
    # The charging session it started, once linked (2.x remoteStartId; 1.6 idTag and EVSE).
    session_id: str | None = Field(default=None, max_length=36)
