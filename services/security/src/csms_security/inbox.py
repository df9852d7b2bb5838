"""The ``security.processed_event`` table: exactly-once effects under at-least-once delivery.

A consumed event's effects, the answer owed to the station and the domain events
it causes commit together with the event's id; then the answer is sent and the
events published, and the row marked completed. A replay of a completed event
changes and sends nothing; a replay of one that crashed in between sends the
stored answer (the gateway drops one nobody waits for) and events (same ids:
consumers de-duplicate) again.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from csms_security.db import SCHEMA, UtcDateTime, utc_now


class ProcessedEvent(SQLModel, table=True):
    __tablename__ = "processed_event"
    __table_args__ = {"schema": SCHEMA}

    event_id: str = Field(primary_key=True, max_length=64)
    processed_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime, index=True)
    gateway_id: str | None = None
    answer: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    outbox: list[dict[str, Any]] | None = Field(default=None, sa_type=JSON)
    completed: bool = False
