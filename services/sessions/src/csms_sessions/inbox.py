"""The ``sessions.processed_event`` table: exactly-once effects under at-least-once delivery.

A consumed event's effects, the answer to the station and the domain events
it causes are stored in one transaction together with the event id. Only then
is the answer sent and the domain events published; ``completed`` is set once
both are out. A replay of a completed event changes and sends nothing; a
replay of one that crashed in between sends the stored answer and events again
(the gateway drops an answer no connection waits for any more, and domain
events keep their envelope id, so their consumers de-duplicate them).
"""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from csms_sessions.db import SCHEMA, UtcDateTime, utc_now


class ProcessedEvent(SQLModel, table=True):
    __tablename__ = "processed_event"
    __table_args__ = {"schema": SCHEMA}

    event_id: str = Field(primary_key=True, max_length=64)
    processed_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime, index=True)
    gateway_id: str | None = None
    # The CallAnswer (JSON) owed to the gateway, if the station waits for one.
    answer: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    # Domain events owed to the bus: [{"topic": ..., "event": <Envelope JSON>}].
    outbox: list[dict[str, Any]] | None = Field(default=None, sa_type=JSON)
    completed: bool = False
