"""The batched consumer: one transaction per partition's batch, order, inbox, failures, answers."""

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core import topics
from csms_core.bus import Delivery
from csms_core.bus.batching import YIELD_EVERY_S, BatchedConsumer, BatchLimits
from csms_core.bus.memory import InMemoryBus, InMemoryConsumer
from csms_core.db import create_engine, session_factory
from csms_core.envelope import Envelope
from csms_core.errors import Unprocessable
from csms_core.events import Topic
from tests.kits.bus import PatientBus

GROUP = "ledger"
INBOUND = Topic(topics.OCPP_INBOUND.name, Envelope)
ONE_LANE = BatchLimits(lanes=1)

metadata = MetaData()
inbox = Table("inbox", metadata, Column("event_id", String, primary_key=True))
ledger = Table(
    "ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("station_id", String, nullable=False),
    Column("n", Integer, nullable=False),
)


@dataclass
class LedgerBatch:
    """One transaction's state: its session, the inbox ids it saw, what it owes."""

    session: AsyncSession
    seen: set[str]
    owed: list[str] = field(default_factory=list)


@dataclass
class Ledger:
    """A handler writing one ledger row per event, with an inbox; it records each
    transaction's events as it delivers them, and can be told to fail."""

    delivered: list[list[str]] = field(default_factory=list)
    poison: set[str] = field(default_factory=set)  # always fail
    invalid: set[str] = field(default_factory=set)  # Unprocessable
    flaky_commits: int = 0  # finish() fails (a dependency down) this many times
    attempts: list[str] = field(default_factory=list)

    async def begin(self, session: AsyncSession, deliveries: Sequence[Delivery]) -> LedgerBatch:
        ids = [delivery.envelope.id for delivery in deliveries]
        rows = await session.exec(select(inbox.c.event_id).where(inbox.c.event_id.in_(ids)))
        return LedgerBatch(session, set(rows))

    async def apply(self, batch: LedgerBatch, delivery: Delivery) -> bool:
        envelope = delivery.envelope
        self.attempts.append(envelope.id)
        if envelope.id in batch.seen:
            return False
        batch.seen.add(envelope.id)
        await batch.session.exec(
            insert(ledger).values(station_id=envelope.station_id, n=envelope.data["n"])
        )
        if envelope.id in self.invalid:
            raise Unprocessable(f"{envelope.id} is no event of ours")
        if envelope.id in self.poison:
            raise RuntimeError(f"{envelope.id} breaks the handler")
        await batch.session.exec(insert(inbox).values(event_id=envelope.id))
        batch.owed.append(envelope.id)
        return bool(envelope.data.get("urgent"))

    async def finish(self, batch: LedgerBatch) -> None:
        if self.flaky_commits:
            self.flaky_commits -= 1
            raise ConnectionError("the database restarts")

    async def deliver(self, batch: LedgerBatch) -> None:
        if batch.owed:
            self.delivered.append(batch.owed)


def event(station: str, n: int, *, urgent: bool = False) -> Envelope:
    return Envelope(
        id=f"{station}-{n}",
        type="ocpp.call",
        source="test",
        station_id=station,
        data={"n": n, "urgent": urgent},
    )


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def rows(engine: AsyncEngine) -> list[tuple[str, int]]:
    async with engine.connect() as connection:
        result = await connection.execute(
            select(ledger.c.station_id, ledger.c.n).order_by(ledger.c.id)
        )
        return [(station, n) for station, n in result]


async def consume(
    bus: InMemoryBus,
    engine: AsyncEngine,
    handler: Ledger,
    expected: int,
    limits: BatchLimits = ONE_LANE,
) -> None:
    """Run the consumer until ``expected`` rows are in the ledger, then stop it."""
    consumer = BatchedConsumer(bus, GROUP, handler, session_factory(engine), limits)
    stopping, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(consumer.run([INBOUND], stopping=stopping, ready=ready))
    await asyncio.wait_for(ready.wait(), 1)
    async with asyncio.timeout(5):
        while len(await rows(engine)) < expected or await uncommitted(bus):
            await asyncio.sleep(0.01)
    stopping.set()
    await asyncio.wait_for(task, 2)


async def uncommitted(bus: InMemoryBus) -> list[str]:
    async with bus.consumer([INBOUND], GROUP) as consumer:
        return [delivery.envelope.id for delivery in await consumer.next_batch(timeout_s=0.01)]


async def test_a_poll_is_applied_in_one_transaction_in_each_stations_order(
    engine: AsyncEngine,
) -> None:
    bus = InMemoryBus()
    for n in range(6):
        await bus.publish(INBOUND, event(f"CP-{n % 2}", n))
    handler = Ledger()

    await consume(bus, engine, handler, expected=6)

    assert handler.delivered == [[f"CP-{n % 2}-{n}" for n in range(6)]]
    assert await rows(engine) == [(f"CP-{n % 2}", n) for n in range(6)]
    assert await uncommitted(bus) == []


async def test_a_replayed_event_changes_nothing(engine: AsyncEngine) -> None:
    bus = InMemoryBus()
    await bus.publish(INBOUND, event("CP-1", 1))
    handler = Ledger()
    await consume(bus, engine, handler, expected=1)
    # The same event again (a replay after a crash), in the same poll as a new one.
    await bus.publish(INBOUND, event("CP-1", 1))
    await bus.publish(INBOUND, event("CP-1", 2))
    await bus.publish(INBOUND, event("CP-1", 2))

    await consume(bus, engine, handler, expected=2)

    assert await rows(engine) == [("CP-1", 1), ("CP-1", 2)]
    assert handler.delivered == [["CP-1-1"], ["CP-1-2"]]


async def test_a_failing_event_is_dead_lettered_and_the_others_are_applied_once(
    engine: AsyncEngine,
) -> None:
    bus = InMemoryBus()
    for n in range(5):
        await bus.publish(INBOUND, event("CP-1", n))
    handler = Ledger(poison={"CP-1-2"})

    await consume(bus, engine, handler, expected=4)

    # Its own effects were rolled back with it; the others are there exactly once.
    assert await rows(engine) == [("CP-1", 0), ("CP-1", 1), ("CP-1", 3), ("CP-1", 4)]
    assert handler.delivered == [["CP-1-0", "CP-1-1"], ["CP-1-3", "CP-1-4"]]
    assert handler.attempts.count("CP-1-2") == 4  # once in the batch, three times alone
    [dead] = bus.records(topics.DEAD_LETTER)
    letter = topics.DEAD_LETTER.decode(dead)
    assert letter.data.event is not None
    assert letter.data.event.id == "CP-1-2"
    assert letter.data.error == "RuntimeError('CP-1-2 breaks the handler')"
    assert (letter.data.topic, letter.data.offset) == ("ocpp.inbound", 2)


async def test_an_unprocessable_event_is_dead_lettered_at_once(engine: AsyncEngine) -> None:
    bus = InMemoryBus()
    for n in range(3):
        await bus.publish(INBOUND, event("CP-1", n))
    handler = Ledger(invalid={"CP-1-0"})

    await consume(bus, engine, handler, expected=2)

    assert await rows(engine) == [("CP-1", 1), ("CP-1", 2)]
    assert handler.attempts.count("CP-1-0") == 2  # in the batch, then once alone
    [dead] = bus.records(topics.DEAD_LETTER)
    assert topics.DEAD_LETTER.decode(dead).data.error.startswith("Unprocessable(")


async def test_a_waiting_station_ends_the_transaction_after_the_answer_budget(
    engine: AsyncEngine,
) -> None:
    bus = InMemoryBus()
    await bus.publish(INBOUND, event("CP-1", 0))
    await bus.publish(INBOUND, event("CP-2", 1, urgent=True))
    for n in range(2, 5):
        await bus.publish(INBOUND, event("CP-1", n))
    handler = Ledger()

    await consume(bus, engine, handler, 5, BatchLimits(lanes=1, answer_budget_s=0.0))

    # The answer owed to CP-2 went out with the commit right after it was applied.
    assert handler.delivered == [["CP-1-0", "CP-2-1"], ["CP-1-2", "CP-1-3", "CP-1-4"]]


@dataclass
class CostlyLedger(Ledger):
    """Each record costs ``apply_s``, each transaction ``overhead_s`` besides its records
    (e.g. its commit on a busy database)."""

    apply_s: float = 0.001
    overhead_s: float = 0.2

    async def apply(self, batch: LedgerBatch, delivery: Delivery) -> bool:
        await asyncio.sleep(self.apply_s)
        return await super().apply(batch, delivery)

    async def finish(self, batch: LedgerBatch) -> None:
        await asyncio.sleep(self.overhead_s)


async def test_the_answer_budget_grows_to_a_transactions_overhead(engine: AsyncEngine) -> None:
    """A backlog of waiting stations (a reconnect storm's boots) is decided in batches: once
    a transaction's overhead is measured, the records in hand join the waiting one's
    transaction for up to as long (they would wait for that overhead again otherwise)."""
    bus = InMemoryBus()
    for n in range(20):
        await bus.publish(INBOUND, event(f"CP-{n}", n, urgent=True))
    # Records that cost only their insert against a 500 ms overhead: the 19 fit within it
    # even on a loaded machine (at 1 ms of sleep each and 200 ms, a CI run at load 14 took 12).
    handler = CostlyLedger(apply_s=0.0, overhead_s=0.5)

    await consume(bus, engine, handler, 20, BatchLimits(lanes=1, answer_budget_s=0.0))

    # Nothing measured yet: the first transaction ends with its first waiting record; the
    # second takes the 19 others.
    assert handler.delivered == [["CP-0-0"], [f"CP-{n}-{n}" for n in range(1, 20)]]


async def test_the_answer_budget_grows_no_further_than_its_maximum(engine: AsyncEngine) -> None:
    bus = InMemoryBus()
    for n in range(10):
        await bus.publish(INBOUND, event(f"CP-{n}", n, urgent=True))
    handler = CostlyLedger(apply_s=0.01)
    limits = BatchLimits(lanes=1, answer_budget_s=0.0, max_answer_budget_s=0.02)

    await consume(bus, engine, handler, 10, limits)

    # 20 ms after the first waiting record, whatever the 200 ms overhead: 3 records at most.
    sizes = [len(owed) for owed in handler.delivered]
    assert sizes[0] == 1
    assert max(sizes[1:]) <= 3
    assert sum(sizes) == 10


@dataclass
class BusyLedger(Ledger):
    """Effects that need no I/O (a status kept in memory): each record costs CPU only;
    how often the rest of the process ran is noted at each record."""

    ticks: list[int] = field(default_factory=list)
    seen_ticks: list[int] = field(default_factory=list)

    async def apply(self, batch: LedgerBatch, delivery: Delivery) -> bool:
        until = time.monotonic() + 2 * YIELD_EVERY_S
        while time.monotonic() < until:  # the CPU one record's effects cost
            pass
        self.seen_ticks.append(len(self.ticks))
        batch.owed.append(delivery.envelope.id)
        return False


async def test_a_batch_without_io_lets_the_rest_of_the_process_run(engine: AsyncEngine) -> None:
    """A REST request or a command reply waits a few ms at most, not the whole batch."""
    bus = InMemoryBus()
    for n in range(10):
        await bus.publish(INBOUND, event("CP-1", n))
    handler = BusyLedger()
    consumer = BatchedConsumer(bus, GROUP, handler, session_factory(engine), ONE_LANE)
    stopping, ready = asyncio.Event(), asyncio.Event()

    async def rest_of_the_process() -> None:
        while not stopping.is_set():
            handler.ticks.append(1)
            await asyncio.sleep(0)

    other = asyncio.create_task(rest_of_the_process())
    task = asyncio.create_task(consumer.run([INBOUND], stopping=stopping, ready=ready))
    async with asyncio.timeout(5):
        while not handler.delivered:
            await asyncio.sleep(0.01)
    stopping.set()
    await asyncio.wait_for(asyncio.gather(task, other), 2)

    assert handler.delivered == [[f"CP-1-{n}" for n in range(10)]]  # one transaction
    # The other task ran between every two records of it.
    assert all(b > a for a, b in zip(handler.seen_ticks, handler.seen_ticks[1:], strict=False))


async def test_transactions_hold_at_most_the_limit(engine: AsyncEngine) -> None:
    bus = InMemoryBus()
    for n in range(5):
        await bus.publish(INBOUND, event("CP-1", n))
    handler = Ledger()

    await consume(bus, engine, handler, 5, BatchLimits(lanes=1, max_per_transaction=2))

    assert [len(owed) for owed in handler.delivered] == [2, 2, 1]


async def test_a_dependency_outage_is_waited_out_and_nothing_applied_twice(
    engine: AsyncEngine,
) -> None:
    bus = InMemoryBus()
    for n in range(3):
        await bus.publish(INBOUND, event("CP-1", n))
    handler = Ledger(flaky_commits=2)

    await consume(bus, engine, handler, expected=3)

    assert await rows(engine) == [("CP-1", 0), ("CP-1", 1), ("CP-1", 2)]
    assert handler.delivered == [["CP-1-0", "CP-1-1", "CP-1-2"]]
    assert bus.records(topics.DEAD_LETTER) == []


async def test_stopping_during_an_outage_leaves_the_poll_uncommitted(engine: AsyncEngine) -> None:
    bus = InMemoryBus()
    await bus.publish(INBOUND, event("CP-1", 0))
    handler = Ledger(flaky_commits=1_000)
    consumer = BatchedConsumer(bus, GROUP, handler, session_factory(engine), BatchLimits())
    stopping = asyncio.Event()
    task = asyncio.create_task(consumer.run([INBOUND], stopping=stopping))
    async with asyncio.timeout(2):
        while not handler.attempts:
            await asyncio.sleep(0.01)
    stopping.set()

    await asyncio.wait_for(task, 2)

    assert await rows(engine) == []
    assert await uncommitted(bus) == ["CP-1-0"]


@dataclass
class OutageLedger(Ledger):
    """The database goes down for good once ``down_at`` is among a transaction's events."""

    down_at: str = ""

    async def finish(self, batch: LedgerBatch) -> None:
        if self.down_at in batch.owed:
            raise ConnectionError("the database is gone")


@pytest.mark.parametrize("poll_ahead", [False, True])
async def test_a_poll_failing_after_one_was_committed_is_delivered_again(
    engine: AsyncEngine, poll_ahead: bool
) -> None:
    """The first poll's offsets are committed while the next is taken (ahead: while the
    first is applied) and applied; the second's outage then stops the consumer: its
    records (and only they) come again, and applying them again changes nothing that was
    committed."""
    bus = InMemoryBus()
    for n in range(4):
        await bus.publish(INBOUND, event("CP-1", n))
    handler = OutageLedger(down_at="CP-1-2")
    limits = BatchLimits(max_records=2, lanes=1, poll_ahead=poll_ahead)
    consumer = BatchedConsumer(bus, GROUP, handler, session_factory(engine), limits)
    stopping = asyncio.Event()
    task = asyncio.create_task(consumer.run([INBOUND], stopping=stopping))
    async with asyncio.timeout(5):
        while "CP-1-2" not in handler.attempts:
            await asyncio.sleep(0.01)
    stopping.set()
    await asyncio.wait_for(task, 2)

    assert handler.delivered == [["CP-1-0", "CP-1-1"]]
    assert await uncommitted(bus) == ["CP-1-2", "CP-1-3"]
    # The next member, with the database back: the rest once, nothing twice.
    replacement = Ledger()
    await consume(bus, engine, replacement, expected=4)
    assert await rows(engine) == [("CP-1", n) for n in range(4)]
    assert replacement.delivered == [["CP-1-2", "CP-1-3"]]


async def test_polls_taken_ahead_are_applied_in_order_and_all_committed(
    engine: AsyncEngine,
) -> None:
    bus = InMemoryBus()
    for n in range(6):
        await bus.publish(INBOUND, event(f"CP-{n % 2}", n))
    handler = Ledger()

    await consume(bus, engine, handler, 6, BatchLimits(max_records=2, lanes=1, poll_ahead=True))

    assert handler.delivered == [[f"CP-{n % 2}-{n}", f"CP-{n % 2 + 1}-{n + 1}"] for n in (0, 2, 4)]
    assert await rows(engine) == [(f"CP-{n % 2}", n) for n in range(6)]
    assert await uncommitted(bus) == []


async def test_each_poll_commits_its_own_records_only() -> None:
    bus = InMemoryBus()
    for n in range(3):
        await bus.publish(INBOUND, event("CP-1", n))
    async with bus.consumer([INBOUND], GROUP) as consumer:
        first = await consumer.next_batch(max_records=2)
        ahead = await consumer.next_batch(max_records=2)
        await consumer.commit_through(first)

    assert [d.envelope.id for d in ahead] == ["CP-1-2"]
    assert await uncommitted(bus) == ["CP-1-2"]


async def test_lanes_of_partitions_are_applied_side_by_side_each_in_its_order() -> None:
    @dataclass
    class Slow:
        running: int = 0
        most: int = 0
        transactions: list[list[int]] = field(default_factory=list)

        async def begin(self, session: AsyncSession, deliveries: Sequence[Delivery]) -> list[int]:
            self.running += 1
            self.most = max(self.most, self.running)
            await asyncio.sleep(0.02)
            return []

        async def apply(self, batch: list[int], delivery: Delivery) -> bool:
            batch.append(delivery.offset)
            return False

        async def finish(self, batch: list[int]) -> None:
            self.running -= 1
            self.transactions.append(batch)

        async def deliver(self, batch: list[int]) -> None:
            return None

    records = [
        Delivery(INBOUND, offset % 6, offset, f"CP-{offset % 6}", event("CP", offset).to_bytes())
        for offset in range(12)
    ]
    handler = Slow()
    engine = create_engine("sqlite+aiosqlite://")
    consumer = BatchedConsumer(
        InMemoryBus(), GROUP, handler, session_factory(engine), BatchLimits(lanes=3)
    )

    await consumer.apply_poll(records, asyncio.Event())
    await engine.dispose()

    # Three lanes: partitions 0 and 3 in one transaction, 1 and 4 in another, 2 and 5.
    assert sorted(handler.transactions) == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11]]
    assert handler.most == 3


@dataclass
class Transactions:
    """Records each transaction's offsets as it finishes and as it is sent; the one with
    offset ``held`` is sent only once ``release`` is set."""

    transactions: list[list[int]] = field(default_factory=list)
    sent: list[list[int]] = field(default_factory=list)
    held: int | None = None
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def begin(self, session: AsyncSession, deliveries: Sequence[Delivery]) -> list[int]:
        return []

    async def apply(self, batch: list[int], delivery: Delivery) -> bool:
        batch.append(delivery.offset)
        return False

    async def finish(self, batch: list[int]) -> None:
        self.transactions.append(batch)

    async def deliver(self, batch: list[int]) -> None:
        if self.held in batch:
            await self.release.wait()
        self.sent.append(batch)


def spread(offsets: range) -> list[Delivery]:
    """Records of six partitions, offset n on partition n mod 6."""
    return [
        Delivery(INBOUND, offset % 6, offset, f"CP-{offset % 6}", event("CP", offset).to_bytes())
        for offset in offsets
    ]


@pytest.mark.parametrize(
    ("lanes_from", "expected"),
    [
        (13, [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]),
        (12, [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11]]),
    ],
)
async def test_a_poll_smaller_than_lanes_from_is_one_transaction_in_its_order(
    lanes_from: int, expected: list[list[int]]
) -> None:
    handler = Transactions()
    engine = create_engine("sqlite+aiosqlite://")
    limits = BatchLimits(lanes=3, lanes_from=lanes_from)
    consumer = BatchedConsumer(InMemoryBus(), GROUP, handler, session_factory(engine), limits)

    await consumer.apply_poll(spread(range(12)), asyncio.Event())
    await engine.dispose()

    assert sorted(handler.transactions) == expected


async def test_a_small_polls_sends_follow_those_of_every_lane_before_it() -> None:
    """send_behind: the transaction of a small poll's lanes together sends after each of
    those lanes' transactions before it, and the next lanes' sends wait for it."""
    handler = Transactions(held=1)
    engine = create_engine("sqlite+aiosqlite://")
    limits = BatchLimits(lanes=2, lanes_from=5, send_behind=True)
    consumer = BatchedConsumer(InMemoryBus(), GROUP, handler, session_factory(engine), limits)
    stopping = asyncio.Event()

    async with asyncio.timeout(5):
        first = await consumer._apply_poll(spread(range(6)), stopping)  # two lanes
        second = await consumer._apply_poll(spread(range(6, 10)), stopping)  # together
        third = await consumer._apply_poll(spread(range(10, 16)), stopping)  # two lanes
        assert len(handler.transactions) == 5  # all committed; lane 1's first send held
        await asyncio.sleep(0.05)
        assert handler.sent == [[0, 2, 4]]
        handler.release.set()
        for task in [*first, *second, *third]:
            await task
    await engine.dispose()

    assert handler.sent[:3] == [[0, 2, 4], [1, 3, 5], [6, 7, 8, 9]]
    assert sorted(handler.sent[3:]) == [[10, 12, 14], [11, 13, 15]]


BEHIND = BatchLimits(lanes=1, max_per_transaction=2, send_behind=True)


@dataclass
class HeldLedger(Ledger):
    """Its sends wait until ``release`` is set; what began and what was sent, in order."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    timeline: list[str] = field(default_factory=list)

    async def begin(self, session: AsyncSession, deliveries: Sequence[Delivery]) -> LedgerBatch:
        self.timeline.append(f"begin {deliveries[0].envelope.id}")
        return await super().begin(session, deliveries)

    async def deliver(self, batch: LedgerBatch) -> None:
        await self.release.wait()
        self.timeline.append(f"sent {batch.owed[0]}")
        await super().deliver(batch)


async def test_a_lane_begins_its_next_transaction_while_the_last_one_sends(
    engine: AsyncEngine,
) -> None:
    """With ``send_behind`` the sends go one after another in the lane's order, the next
    transactions do not wait for them, and the poll's offsets do."""
    bus = InMemoryBus()
    for n in range(6):
        await bus.publish(INBOUND, event("CP-1", n))
    handler = HeldLedger()
    consumer = BatchedConsumer(bus, GROUP, handler, session_factory(engine), BEHIND)
    stopping = asyncio.Event()
    task = asyncio.create_task(consumer.run([INBOUND], stopping=stopping))
    async with asyncio.timeout(5):
        while len(await rows(engine)) < 6:
            await asyncio.sleep(0.01)
    # Every transaction committed, nothing sent yet: the offsets wait.
    assert handler.delivered == []
    assert len(await uncommitted(bus)) == 6
    handler.release.set()
    async with asyncio.timeout(5):
        while await uncommitted(bus):
            await asyncio.sleep(0.01)
    stopping.set()
    await asyncio.wait_for(task, 2)

    assert handler.delivered == [[f"CP-1-{n}", f"CP-1-{n + 1}"] for n in (0, 2, 4)]
    assert handler.timeline == [
        "begin CP-1-0",
        "begin CP-1-2",
        "begin CP-1-4",
        "sent CP-1-0",
        "sent CP-1-2",
        "sent CP-1-4",
    ]


async def test_a_failing_event_waits_for_the_sends_before_it_with_sends_behind(
    engine: AsyncEngine,
) -> None:
    bus = InMemoryBus()
    for n in range(5):
        await bus.publish(INBOUND, event("CP-1", n))
    handler = Ledger(poison={"CP-1-2"})

    await consume(bus, engine, handler, 4, BEHIND)

    assert await rows(engine) == [("CP-1", 0), ("CP-1", 1), ("CP-1", 3), ("CP-1", 4)]
    assert handler.delivered == [["CP-1-0", "CP-1-1"], ["CP-1-3", "CP-1-4"]]
    assert len(bus.records(topics.DEAD_LETTER)) == 1


@dataclass
class UnsendableLedger(Ledger):
    """Its sends find a dependency down (the bus, say) for good."""

    async def deliver(self, batch: LedgerBatch) -> None:
        self.attempts.append("send")
        raise ConnectionError("the bus is down")


async def test_stopping_while_sends_behind_fail_leaves_the_poll_uncommitted(
    engine: AsyncEngine,
) -> None:
    """Committed but not sent: the offsets stay, so a replay sends it from the inbox."""
    bus = InMemoryBus()
    for n in range(4):
        await bus.publish(INBOUND, event("CP-1", n))
    handler = UnsendableLedger()
    consumer = BatchedConsumer(bus, GROUP, handler, session_factory(engine), BEHIND)
    stopping = asyncio.Event()
    task = asyncio.create_task(consumer.run([INBOUND], stopping=stopping))
    async with asyncio.timeout(5):
        while "send" not in handler.attempts or len(await rows(engine)) < 4:
            await asyncio.sleep(0.01)
    stopping.set()
    await asyncio.wait_for(task, 5)

    assert await rows(engine) == [("CP-1", n) for n in range(4)]
    assert await uncommitted(bus) == [f"CP-1-{n}" for n in range(4)]


@dataclass
class SlowLedger(Ledger):
    apply_s: float = 0.05
    applying: asyncio.Event = field(default_factory=asyncio.Event)

    async def apply(self, batch: LedgerBatch, delivery: Delivery) -> bool:
        self.applying.set()
        await asyncio.sleep(self.apply_s)
        return await super().apply(batch, delivery)


async def test_records_arriving_while_a_poll_is_applied_make_the_next_poll(
    engine: AsyncEngine,
) -> None:
    bus = InMemoryBus()
    handler = SlowLedger(apply_s=0.2)
    limits = BatchLimits(lanes=1, poll_ahead=True)
    consumer = BatchedConsumer(bus, GROUP, handler, session_factory(engine), limits)
    stopping, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(consumer.run([INBOUND], stopping=stopping, ready=ready))
    await asyncio.wait_for(ready.wait(), 1)
    await bus.publish(INBOUND, event("CP-1", 0))
    async with asyncio.timeout(5):
        await handler.applying.wait()
        for n in range(1, 6):  # while CP-1-0 is applied
            await bus.publish(INBOUND, event("CP-1", n))
            await asyncio.sleep(0.01)
        while len(await rows(engine)) < 6 or await uncommitted(bus):
            await asyncio.sleep(0.01)
    stopping.set()
    await asyncio.wait_for(task, 2)

    assert handler.delivered == [["CP-1-0"], [f"CP-1-{n}" for n in range(1, 6)]]


class BrokenBus(InMemoryBus):
    """Its consumers' polls fail after the first (Kafka gone for good, say)."""

    def consumer(self, topics: Sequence[str], group: str) -> "BrokenConsumer":
        return BrokenConsumer(self, tuple(topics), group)


class BrokenConsumer(InMemoryConsumer):
    polls = 0

    async def next_batch(self, max_records: int = 500, timeout_s: float = 0.5) -> list[Delivery]:
        self.polls += 1
        if self.polls > 1:
            raise RuntimeError("the broker is gone")
        return await super().next_batch(max_records, timeout_s)


@pytest.mark.parametrize("poll_ahead", [True, False])
async def test_a_stop_wakes_the_poll_under_way(engine: AsyncEngine, poll_ahead: bool) -> None:
    """Stopping does not sit out a poll's timeout (every test of a service paid 0.5-1 s)."""
    bus = PatientBus()
    await bus.publish(INBOUND, event("CP-1", 0))
    ledger = Ledger()
    consumer = BatchedConsumer(
        bus, GROUP, ledger, session_factory(engine), BatchLimits(lanes=1, poll_ahead=poll_ahead)
    )
    stopping = asyncio.Event()
    task = asyncio.create_task(consumer.run([INBOUND], stopping=stopping))
    while not ledger.delivered:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # polling again, for 60 s
    stopping.set()
    await asyncio.wait_for(task, 5)
    assert ledger.delivered == [["CP-1-0"]]


async def test_a_poll_failing_while_collected_ahead_fails_the_consumer(
    engine: AsyncEngine,
) -> None:
    bus = BrokenBus()
    await bus.publish(INBOUND, event("CP-1", 0))
    consumer = BatchedConsumer(
        bus, GROUP, Ledger(), session_factory(engine), BatchLimits(lanes=1, poll_ahead=True)
    )

    with pytest.raises(RuntimeError, match="the broker is gone"):
        await asyncio.wait_for(consumer.run([INBOUND], stopping=asyncio.Event()), 5)
