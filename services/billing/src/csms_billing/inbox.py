"""The ``billing.processed_event`` table: each consumed event changes things once.

An event's effects, its id and the events it causes (the outbox) commit in one
transaction; only then are the events published and the record marked
completed. A replay of a completed id changes and sends nothing; a replay of one
that crashed in between publishes its outbox again (same envelope ids, so
consumers de-duplicate).
"""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from csms_billing.db import SCHEMA
from csms_core.db import UtcDateTime, utc_now


class ProcessedEvent(SQLModel, table=True):
    __tablename__ = "processed_event"
    __table_args__ = {"schema": SCHEMA}

    event_id: str = Field(primary_key=True, max_length=80)
    processed_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime, index=True)
    # Events owed to the bus: [{"topic": ..., "event": <Envelope JSON>}].
    outbox: list[dict[str, Any]] | None = Field(default=None, sa_type=JSON)
    completed: bool = False
