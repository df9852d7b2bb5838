"""The embedded bus: an in-process append-only log per topic with consumer-group offsets.

Same semantics as Kafka where callers can see them: ordered per topic, each
group reads every record once, replays from its committed offset.
"""

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

from csms_core.bus.base import Delivery, Outgoing
from csms_core.envelope import EncodedEvent, Event
from csms_core.events.topic import Topic
from csms_core.telemetry import record_trace_headers

E = TypeVar("E", bound=Event[Any])


class InMemoryBus:
    def __init__(self) -> None:
        self._logs: dict[str, list[Delivery]] = defaultdict(list)
        self._committed: dict[tuple[str, str], int] = defaultdict(int)
        self._consumers: set[InMemoryConsumer] = set()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    async def publish(self, topic: Topic[E], event: E | EncodedEvent[E]) -> None:
        """Append the event as its record bytes, as Kafka would keep it."""
        await self.append(topic, event.station_id, event.to_bytes(), record_trace_headers(topic))

    async def publish_many(self, records: Sequence[Outgoing]) -> None:
        for record in records:
            headers = dict(record.headers or record_trace_headers(record.topic))
            await self.append(
                record.topic, record.event.station_id, record.event.to_bytes(), headers
            )

    def append_now(self, record: Outgoing) -> "asyncio.Future[Any]":
        """Append at once; the future of its acknowledgement, already done (in process)."""
        headers = dict(record.headers or record_trace_headers(record.topic))
        self._append(record.topic, record.event.station_id, record.event.to_bytes(), headers)
        acknowledged: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        acknowledged.set_result(None)
        return acknowledged

    async def append(
        self, topic: str, key: str, value: bytes, headers: dict[str, str] | None = None
    ) -> None:
        """Append a record as it is, e.g. one an integrator wrote (tests of bad input)."""
        self._append(topic, key, value, headers)

    def _append(self, topic: str, key: str, value: bytes, headers: dict[str, str] | None) -> None:
        log = self._logs[topic]
        log.append(Delivery(str(topic), 0, len(log), key, value, headers or {}))
        for consumer in self._consumers:
            consumer._nudge.set()

    def records(self, topic: str) -> list[Delivery]:
        """Everything on a topic so far (for inspection and tests)."""
        return list(self._logs[topic])

    def consumer(self, topics: Sequence[str], group: str) -> "InMemoryConsumer":
        return InMemoryConsumer(self, tuple(topics), group)


class InMemoryConsumer:
    def __init__(self, bus: InMemoryBus, topics: tuple[str, ...], group: str) -> None:
        self._bus = bus
        self._topics = topics
        self._group = group
        self._positions: dict[str, int] = {}
        self._nudge = asyncio.Event()  # set by an append, or by wake()
        self._woken = False

    async def __aenter__(self) -> Self:
        self._positions = {t: self._bus._committed[(self._group, t)] for t in self._topics}
        self._bus._consumers.add(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._bus._consumers.discard(self)

    def _take(self, max_records: int) -> list[Delivery]:
        batch: list[Delivery] = []
        for topic in self._topics:
            log = self._bus._logs[topic]
            start = self._positions[topic]
            taken = log[start : start + max_records - len(batch)]
            self._positions[topic] = start + len(taken)
            batch.extend(taken)
        return batch

    async def next_batch(self, max_records: int = 500, timeout_s: float = 0.5) -> list[Delivery]:
        batch = self._take(max_records)
        if batch or self._woken:
            self._woken = False
            return batch
        self._nudge.clear()  # nothing was appended since the take: no await in between
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._nudge.wait(), timeout_s)
        self._woken = False
        return self._take(max_records)

    def wake(self) -> None:
        self._woken = True
        self._nudge.set()

    async def commit(self) -> None:
        for topic, position in self._positions.items():
            self._bus._committed[(self._group, topic)] = position

    async def commit_through(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:  # one partition per topic: its offset is the position
            key = (self._group, delivery.topic)
            self._bus._committed[key] = max(self._bus._committed[key], delivery.offset + 1)
