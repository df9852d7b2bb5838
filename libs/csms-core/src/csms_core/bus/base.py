"""The bus interface both implementations honour.

``publish`` returns only once the record is durable (Kafka: acks=all), so a
caller may acknowledge upstream afterwards. Consumers belong to a group, see
each record at least once, and commit only what their handler has finished.
"""

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar, runtime_checkable

from pydantic import ValidationError

from csms_core.envelope import EncodedEvent, Envelope, Event
from csms_core.events.topic import InvalidEvent, Topic, problems

E = TypeVar("E", bound=Event[Any])


class PublishError(RuntimeError):
    """The record could not be made durable; nothing may be acknowledged for it."""


@dataclass(frozen=True)
class Delivery:
    """One record as a consumer sees it: its value still as bytes.

    ``topics.X.decode(delivery)`` reads it as one of the topic's event models;
    ``envelope`` reads only the envelope (``data`` untyped), for code that routes
    records without reading them.
    """

    topic: str
    partition: int
    offset: int
    key: str
    value: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @cached_property
    def envelope(self) -> Envelope:
        """The record's envelope; ``InvalidEvent`` if the record is none."""
        try:
            return Envelope.from_bytes(self.value)
        except ValidationError as exc:
            raise InvalidEvent(f"{self.topic}: not an event envelope: {problems(exc)}") from None

    def describe(self) -> str:
        """``type id`` for logs, also for a record that is no event."""
        try:
            return f"{self.envelope.type} {self.envelope.id}"
        except InvalidEvent:
            return f"record {self.topic}/{self.partition}@{self.offset}"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One record for ``Bus.publish_many``: the event, its topic, and the trace headers it
    carries (None: the current context's, as ``publish`` writes them)."""

    topic: Topic[Any]
    event: Event[Any] | EncodedEvent[Any]
    headers: Mapping[str, str] | None = None


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

    def wake(self) -> None:
        """The poll under way, or the next one, returns now (what it has, possibly none):
        a consumer asked to stop does not sit out the poll's timeout."""
        ...

    async def commit(self) -> None:
        """Mark every record returned so far as done for the group."""
        ...

    async def commit_through(self, deliveries: Sequence[Delivery]) -> None:
        """Mark ``deliveries`` and every record before them on their partitions as done
        (not the records returned since: a poll taken ahead stays uncommitted)."""
        ...


class Bus(Protocol):
    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    async def publish(self, topic: Topic[E], event: E | EncodedEvent[E]) -> None:
        """Append the event (key = its station id); return once it is durable."""
        ...

    async def publish_many(self, records: Sequence[Outgoing]) -> None:
        """Append the records in their order (each keyed by its station id); return once
        every one is durable. One acknowledgement wait for all, not one per record."""
        ...

    def consumer(self, topics: Sequence[str], group: str) -> Consumer:
        """A member of consumer group ``group`` reading ``topics``."""
        ...


@runtime_checkable
class AppendsNow(Protocol):
    """A bus that appends a record without a coroutine (for a caller that answers from a
    callback once the record is durable)."""

    def append_now(self, record: Outgoing) -> "asyncio.Future[Any] | None":
        """Append the record; the future of its acknowledgement, failed if it does not
        become durable (raises if it cannot even be appended). None: not now (nothing
        done; ``publish_many`` must)."""
        ...


def wake_on(stopping: asyncio.Event, wake: Callable[[], None]) -> "asyncio.Task[None]":
    """A task that calls ``wake()`` once ``stopping`` is set (a consumer loop's poll under
    way then returns at once, not at its timeout); cancel it when the loop ends."""

    async def watch() -> None:
        await stopping.wait()
        wake()

    return asyncio.create_task(watch(), name="wake on stop")
