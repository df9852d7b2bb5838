"""The bus interface both implementations honour.

``publish`` returns only once the record is durable (Kafka: acks=all), so a
caller may acknowledge upstream afterwards. Consumers belong to a group, see
each record at least once, and commit only what their handler has finished.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self

from csms_core.envelope import Envelope


class PublishError(RuntimeError):
    """The record could not be made durable; nothing may be acknowledged for it."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One record as a consumer sees it."""

    topic: str
    partition: int
    offset: int
    key: str
    envelope: Envelope
    headers: dict[str, str] = field(default_factory=dict)


class Consumer(Protocol):
    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    async def next_batch(self, max_records: int = 500, timeout_s: float = 0.5) -> list[Delivery]:
        """Records not yet seen by this member of the group, possibly none."""
        ...

    async def commit(self) -> None:
        """Mark every record returned so far as done for the group."""
        ...


class Bus(Protocol):
    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    async def publish(self, topic: str, envelope: Envelope) -> None:
        """Append the event (key = its station id); return once it is durable."""
        ...

    def consumer(self, topics: Sequence[str], group: str) -> Consumer:
        """A member of consumer group ``group`` reading ``topics``."""
        ...
