"""The ``billing.processed_event`` table: each consumed event changes things once.

An event's effects and its id commit in one transaction; a replay of a stored
id is skipped. What the service then sends (an answer, a CostUpdated, events)
is derived from stored state, so a crash in between loses nothing: the replay
finds the id and the state, and the sender looks at the state again.
"""

from datetime import datetime

from sqlmodel import Field, SQLModel

from csms_billing.db import SCHEMA
from csms_core.db import UtcDateTime, utc_now


class ProcessedEvent(SQLModel, table=True):
    __tablename__ = "processed_event"
    __table_args__ = {"schema": SCHEMA}

    event_id: str = Field(primary_key=True, max_length=80)
    processed_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime, index=True)
