"""``csms.dead-letter``: a record a consumer group gave up on, with the reason."""

from typing import ClassVar, Literal

from pydantic import Field

from csms_core.envelope import Envelope, Event
from csms_core.events.data import SparseEventData


class DeadLetterData(SparseEventData):
    omitted_when_none: ClassVar[frozenset[str]] = frozenset({"raw"})

    group: str = Field(description="The consumer group that gave up.")
    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    error: str = Field(description="The last error, as Python repr.")
    event: Envelope | None = Field(description="The record's event; null if it was none.")
    raw: str | None = Field(default=None, description="The record, when it was no event.")


class DeadLetter(Event[DeadLetterData]):
    type: Literal["csms.dead-letter"] = "csms.dead-letter"
