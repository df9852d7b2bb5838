"""The ``sessions.meter_sample`` table: every sampled value any station sent, normalised."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer
from sqlmodel import Field, SQLModel

from csms_sessions.db import SCHEMA, UtcDateTime

# BIGINT on PostgreSQL (a busy network stores billions); SQLite needs INTEGER for a rowid.
SAMPLE_ID = BigInteger().with_variant(Integer(), "sqlite")


class MeterSample(SQLModel, table=True):
    __tablename__ = "meter_sample"
    __table_args__ = (
        Index("ix_meter_sample_session_time", "session_id", "timestamp"),
        Index("ix_meter_sample_station_time", "station_id", "timestamp"),
        {"schema": SCHEMA},
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=SAMPLE_ID)
    station_id: str = Field(max_length=48)
    evse_id: int | None = None
    session_id: str | None = Field(default=None, max_length=36)
    transaction_id: str | None = Field(default=None, max_length=36)
    timestamp: datetime = Field(sa_type=UtcDateTime)
    measurand: str = Field(max_length=50)
    phase: str | None = Field(default=None, max_length=10)
    location: str | None = Field(default=None, max_length=10)
    context: str | None = Field(default=None, max_length=30)
    # In ``unit`` (a base unit: Wh, W, A, ...); None when the station sent no number.
    value: float | None = None
    unit: str | None = Field(default=None, max_length=20)
    # 1.6 SignedData value or 2.x signedMeterValue, as sent.
    signed: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    # The value as sent when it is not a number (kept, never lost).
    raw_value: str | None = None
    # Sent once its session had ended: kept, never counted in the session's figures.
    late: bool = False
