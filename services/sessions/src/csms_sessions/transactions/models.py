"""The ``sessions.transaction_id`` table: allocates OCPP 1.6 transaction ids."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from csms_sessions.db import SCHEMA, UtcDateTime, utc_now


class TransactionId(SQLModel, table=True):
    """One allocated 1.6 transactionId; the database's auto-increment makes it unique
    across replicas (SERIAL on PostgreSQL, the rowid on SQLite)."""

    __tablename__ = "transaction_id"
    __table_args__ = {"schema": SCHEMA}

    transaction_id: int | None = Field(default=None, primary_key=True)
    station_id: str = Field(max_length=48)
    event_id: str = Field(max_length=64, unique=True)
    allocated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
