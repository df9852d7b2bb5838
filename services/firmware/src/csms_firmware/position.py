"""How far behind the stations the consumer reads: silence is judged against it.

A station is silent when it has sent nothing for a while, by the times the gateway
received its messages. A consumer that lags (a boot storm, a slow database) has simply
not read the station's latest messages yet, and must not take that for silence. So each
consumer member records its position: while it applies a poll, everything sent before the
poll's oldest record has been read ("read until" that record's time); once a poll comes
back empty it has read everything ("read until" then). The campaign runner judges
silence against the position of the member furthest behind (``lag``): a station is
quiet for ``(now - lag) - its last message``, never for the time its message waited.

Members write their position to ``firmware.consumer_position`` (a replica's runner judges
stations another replica's consumer reads); a member that wrote nothing for ``STALE``
has left the group (its partitions went to another member, which reports its own lag).
"""

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self
from uuid import uuid4

from prometheus_client import Gauge
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.bus import Bus, Consumer, Delivery, Outgoing
from csms_core.db import transaction
from csms_core.envelope import EncodedEvent, Event
from csms_core.events import InvalidEvent, Topic
from csms_firmware.db import SCHEMA, UtcDateTime, utc_now

logger = logging.getLogger(__name__)

STALE = timedelta(seconds=60)
WRITE_EVERY_S = 1.0
consumer_lag = Gauge(
    "csms_firmware_consumer_lag_seconds",
    "How far behind the stations' messages the firmware consumer reads (the furthest member)",
)


class ConsumerPosition(SQLModel, table=True):
    __tablename__ = "consumer_position"
    __table_args__ = {"schema": SCHEMA}

    member_id: str = Field(primary_key=True, max_length=32)
    read_until: datetime = Field(sa_type=UtcDateTime)
    busy: bool  # applying a poll (its lag grows until the next poll)
    measured_at: datetime = Field(sa_type=UtcDateTime)


@dataclass(frozen=True, slots=True)
class Position:
    read_until: datetime
    busy: bool
    measured_at: datetime

    def lag(self, now: datetime) -> timedelta:
        """How far behind ``now`` this member reads."""
        return max(timedelta(0), now - self.read_until) if self.busy else timedelta(0)


class ReadPosition:
    """One consumer member's position, from the polls it makes."""

    def __init__(self) -> None:
        self.member_id = uuid4().hex
        self.current: Position | None = None
        # One write at a time: two (the background writer's and a caller's) would both
        # find no row yet and both insert it.
        self._writing = asyncio.Lock()

    def polled(self, deliveries: Sequence[Delivery], at: datetime) -> None:
        """A poll returned ``deliveries`` at ``at`` (the poll before it is applied)."""
        times = [_sent_at(delivery) for delivery in deliveries]
        oldest = min((t for t in times if t is not None), default=None)
        if deliveries and oldest is not None:
            self.current = Position(min(oldest, at), busy=True, measured_at=at)
        elif not deliveries:
            self.current = Position(at, busy=False, measured_at=at)

    async def write(self, factory: async_sessionmaker[AsyncSession]) -> None:
        async with self._writing:
            await self._write(factory)

    async def _write(self, factory: async_sessionmaker[AsyncSession]) -> None:
        position = self.current
        if position is None:
            return
        async with transaction(factory) as session:
            await session.merge(
                ConsumerPosition(
                    member_id=self.member_id,
                    read_until=position.read_until,
                    busy=position.busy,
                    measured_at=position.measured_at,
                )
            )

    async def run(self, factory: async_sessionmaker[AsyncSession], stopping: asyncio.Event) -> None:
        """Write the position every second until ``stopping``; then remove it."""
        written: Position | None = None
        while not stopping.is_set():
            if self.current is not written:
                try:
                    await self.write(factory)
                    written = self.current
                except Exception:
                    logger.warning("the consumer position was not written", exc_info=True)
            try:
                await asyncio.wait_for(stopping.wait(), WRITE_EVERY_S)
            except TimeoutError:
                continue
        async with transaction(factory) as session:
            await session.exec(
                delete(ConsumerPosition).where(col(ConsumerPosition.member_id) == self.member_id)
            )


def _sent_at(delivery: Delivery) -> datetime | None:
    try:
        return delivery.envelope.time
    except InvalidEvent:  # not an event at all: the runner dead-letters it
        return None


async def lag(session: AsyncSession, now: datetime, wall: datetime | None = None) -> timedelta:
    """How far behind ``now`` the furthest live consumer member reads (0 when caught up);
    a member is live if it wrote its position within ``STALE`` of ``wall`` (the clock)."""
    live_since = (wall or utc_now()) - STALE
    rows = await session.exec(
        select(ConsumerPosition).where(col(ConsumerPosition.measured_at) >= live_since)
    )
    behind = max(
        (Position(r.read_until, r.busy, r.measured_at).lag(now) for r in rows),
        default=timedelta(0),
    )
    consumer_lag.set(behind.total_seconds())
    return behind


async def prune(session: AsyncSession, now: datetime) -> None:
    """Forget members that left long ago."""
    await session.exec(
        delete(ConsumerPosition).where(col(ConsumerPosition.measured_at) < now - timedelta(days=1))
    )


class PositionedBus:
    """A bus whose consumers report each poll to ``position`` (publishing is the bus's)."""

    def __init__(self, bus: Bus, position: ReadPosition) -> None:
        self._bus = bus
        self._position = position

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    async def publish(self, topic: Topic[Any], event: Event[Any] | EncodedEvent[Any]) -> None:
        await self._bus.publish(topic, event)

    async def publish_many(self, records: Sequence[Outgoing]) -> None:
        await self._bus.publish_many(records)

    def consumer(self, topics: Sequence[str], group: str) -> "PositionedConsumer":
        return PositionedConsumer(self._bus.consumer(topics, group), self._position)


class PositionedConsumer:
    def __init__(self, consumer: Consumer, position: ReadPosition) -> None:
        self._consumer = consumer
        self._position = position

    async def __aenter__(self) -> Self:
        await self._consumer.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._consumer.__aexit__(exc_type, exc, traceback)

    async def next_batch(self, max_records: int = 500, timeout_s: float = 0.5) -> list[Delivery]:
        deliveries = await self._consumer.next_batch(max_records, timeout_s)
        self._position.polled(deliveries, utc_now())
        return deliveries

    def wake(self) -> None:
        self._consumer.wake()

    async def commit(self) -> None:
        await self._consumer.commit()

    async def commit_through(self, deliveries: Sequence[Delivery]) -> None:
        await self._consumer.commit_through(deliveries)
