"""The batched consumer: many records per poll, each partition's records in one transaction.

One poll brings up to ``BatchLimits.max_records`` records. They are split by partition
number (a station's records are on the same partition of every topic, since the key is
its id), and the partitions are applied side by side (``lanes`` at most), each in one
database transaction: the handler applies record after record in one ORM session, so a
record reads what the ones before it in the batch wrote (the session flushes before a
query); then it writes what the records coalesced (a station's last-seen time), the
transaction commits, and what the batch owes goes out (answers to stations first, then
domain events). Offsets are committed once every partition of the poll is done:
at-least-once delivery, and the handler's inbox makes a replayed batch change nothing.

The steps overlap where order allows: a poll's offsets are committed (only its own
records': ``Consumer.commit_through``) while the next poll is applied; with
``poll_ahead`` the consumer goes on polling while a poll is applied and the next poll is
everything collected meanwhile; with ``send_behind`` a lane's next transaction begins
while the one before sends what it owes (the lane's sends one after another, in order,
and the poll's offsets after them). A poll of fewer records than ``lanes_from`` is applied
in one transaction, its lanes together (a low rate's small polls would otherwise pay each
lane's statements and commit for a few records); its sends follow every lane's before it.

A station waiting for an answer is not kept waiting for the batch: once a record whose
answer a station waits for is applied (``apply`` returns True), the transaction commits
within the answer budget and the rest of the partition follows in the next one. The
budget adapts to what a transaction costs besides its records (load, finish, commit,
deliver: measured, a moving average): the records left in hand would wait for that cost
again in the next transaction, so taking them now, for up to as long as it, costs the
first waiting station at most as much again and lets a backlog of waiting stations (a
reconnect storm's boots) be decided in batches rather than a handful per transaction.
It is never below ``answer_budget_s`` nor above ``max_answer_budget_s``, and it holds
nothing when the poll brought nothing more: a quiet station's answer leaves at once.

Failures, with the one-by-one rules of ``runner``: a dependency down
(``TRANSIENT_ERRORS``) rolls the transaction back and tries it again with back-off for as
long as it takes. Any other failure of a record rolls the transaction back and splits the
batch: the records before it are applied as a batch, the failing one alone (retried a few
times, then dead-lettered with its error; ``Unprocessable`` at once), the rest as a batch
again. ``Ignored`` (raised before any effect) skips the record.

Every transaction plans its lookups by index where one serves (``db.prefer_indexes``): a
statement's cached plan made while a table was nearly empty would otherwise read it whole
in every batch as it grows.
"""

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, runtime_checkable

from prometheus_client import Histogram
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.bus.base import Bus, Consumer, Delivery, wake_on
from csms_core.bus.runner import MAX_BACKOFF_S, TRANSIENT_ERRORS, Stopped, _handle
from csms_core.db import prefer_indexes
from csms_core.errors import Ignored
from csms_core.telemetry import traced_delivery

# A record's effects may need no I/O at all: without a pause now and then, a batch would
# hold the event loop (the REST API and the command replies of the process) for its whole
# apply step.
YIELD_EVERY_S = 0.002
# The weight of the last transaction in the moving average of their overhead.
OVERHEAD_WEIGHT = 0.2

if TYPE_CHECKING:
    from prometheus_client.context_managers import Timer

logger = logging.getLogger(__name__)

T = TypeVar("T")
Sending = asyncio.Task[None]  # a committed transaction's answers and events on their way
Lanes = tuple[int, ...]  # the lanes whose records a transaction applies

batch_records = Histogram(
    "csms_consumer_batch_records",
    "Records applied per transaction of the batched consumer",
    ["group"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
poll_records = Histogram(
    "csms_consumer_poll_records",
    "Records per poll of the batched consumer (polls that brought none left out)",
    ["group"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000),
)
batch_seconds = Histogram(
    "csms_consumer_batch_seconds",
    "Time per step of the batched consumer: poll (waiting for records), load (what the "
    "records read, in bulk), apply (their effects), finish (bulk writes), commit (the ORM "
    "flush and COMMIT), deliver (answers and events), offsets (the Kafka commit)",
    ["group", "step"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """How much one poll and one transaction take, and how long an answer may wait."""

    max_records: int = 1000  # per poll
    max_per_transaction: int = 500
    # From the first applied record a station waits for to the commit that lets it go: at
    # least this, and as long as a transaction's measured cost besides its records, up to
    # ``max_answer_budget_s`` (the module docstring).
    answer_budget_s: float = 0.005
    max_answer_budget_s: float = 0.1
    # Transactions side by side, each for the records of its share of the partitions (1 on
    # SQLite: one writer at a time).
    lanes: int = 2
    # A poll of fewer records than this is applied in one transaction, its lanes together:
    # at a low offered rate the polls are small, and each lane's transaction would cost
    # its statements and commit for a few records (0: always in lanes).
    lanes_from: int = 0
    # Go on polling while a poll is applied (the records wait in hand for the next).
    poll_ahead: bool = False
    # Begin a lane's next transaction while the one before sends what it owes (each lane's
    # sends one after another, in order; a poll's offsets wait for its sends). For a
    # handler whose next transaction reads nothing its sends change (sessions).
    send_behind: bool = False


@runtime_checkable
class BatchHandler(Protocol[T]):
    """A service's work on its records, one transaction at a time (``T``: that
    transaction's state, e.g. its session, the prefetched inbox rows and what it owes)."""

    async def begin(self, session: AsyncSession, deliveries: Sequence[Delivery]) -> T:
        """The transaction's state; load in bulk what these records will read (the inbox)."""
        ...

    async def apply(self, batch: T, delivery: Delivery) -> bool:
        """One record's effects; True if a station waits for what it owes (an answer)."""
        ...

    async def finish(self, batch: T) -> None:
        """After the last record, before the commit: write what the records coalesced."""
        ...

    async def deliver(self, batch: T) -> None:
        """After the commit: send what the batch owes, answers first."""
        ...


@dataclass
class BatchedConsumer(Generic[T]):
    """Runs ``handler`` over the records of ``group`` (see the module docstring)."""

    bus: Bus
    group: str
    handler: BatchHandler[T]
    factory: async_sessionmaker[AsyncSession]
    limits: BatchLimits = BatchLimits()
    # A transaction's cost besides applying its records (load, finish, commit, deliver): a
    # moving average of the measured ones (None before the first), the answer budget's
    # measure.
    overhead_s: float | None = None
    # Each lane's last send under way (``BatchLimits.send_behind``; a transaction of
    # several lanes is the last send of each of them).
    _sending: dict[int, "Sending"] = field(default_factory=dict)

    @property
    def answer_budget_s(self) -> float:
        """How long a waiting station's answer may be held for the records in hand."""
        least = self.limits.answer_budget_s
        most = max(least, self.limits.max_answer_budget_s)
        return min(max(least, self.overhead_s or 0.0), most)

    def _measured(self, overhead_s: float) -> None:
        if self.overhead_s is None:
            self.overhead_s = overhead_s
        else:
            self.overhead_s += OVERHEAD_WEIGHT * (overhead_s - self.overhead_s)

    async def run(
        self,
        topic_names: Sequence[str],
        *,
        stopping: asyncio.Event,
        ready: asyncio.Event | None = None,
    ) -> None:
        """Consume until ``stopping`` is set; finish and commit the poll in hand first.

        A poll's offsets are committed once its transactions are, while the next poll is
        taken and applied (its records wait for no commit round trip); one commit at a
        time, in the polls' order, each of its own poll's records only."""
        async with self.bus.consumer(topic_names, self.group) as consumer:
            if ready is not None:
                ready.set()
            committing: asyncio.Task[None] | None = None
            polls = _Polls(consumer, self.limits.max_records)
            collecting = asyncio.create_task(polls.collect()) if self.limits.poll_ahead else None
            waking = wake_on(stopping, polls.wake)
            try:
                while not stopping.is_set():
                    if collecting is not None and collecting.done():
                        collecting.result()  # its failure (Kafka's) is the consumer's
                    with self._timed("poll"):
                        records = await (polls.take() if collecting else polls.poll())
                    if not records:
                        continue
                    poll_records.labels(self.group).observe(len(records))
                    try:
                        sending = await self._apply_poll(records, stopping)
                        if committing is not None:
                            await committing  # the poll before: offsets in order
                    except Stopped:
                        return  # uncommitted: the group's next member applies the rest again
                    committing = asyncio.create_task(self._commit(consumer, records, sending))
                if committing is not None:
                    with contextlib.suppress(Stopped):
                        await committing
                    committing = None
            finally:
                waking.cancel()
                if collecting is not None:  # what it holds is uncommitted: read again
                    # Not cancelled inside a poll (an in-memory bus's cancelled wait could
                    # hang on its condition): it ends after the poll under way.
                    polls.stop()
                    with contextlib.suppress(Exception):
                        await collecting
                # Leaving on a failure: what committed transactions owe, and the offsets of
                # a poll whose sends are done, may still go out.
                for task in [*self._sending.values(), *([committing] if committing else [])]:
                    with contextlib.suppress(Exception):  # a Stopped: nothing more to send
                        await asyncio.shield(task)
                self._sending.clear()

    async def _commit(
        self, consumer: Consumer, records: Sequence[Delivery], sending: Sequence["Sending"]
    ) -> None:
        """The poll's offsets, once what its transactions owe is sent (Stopped if a stop
        came while a dependency was down: then not)."""
        for task in sending:
            await task
        with self._timed("offsets"):
            await consumer.commit_through(records)

    def _timed(self, step: str) -> "Timer":
        return batch_seconds.labels(self.group, step).time()

    def _observe(self, step: str, seconds: float) -> None:
        batch_seconds.labels(self.group, step).observe(seconds)

    async def apply_poll(self, records: Sequence[Delivery], stopping: asyncio.Event) -> None:
        """Every partition's records: the partitions shared out over ``lanes`` transactions
        applied side by side (partition p in lane p mod lanes), each in its records' order;
        returns once what they owe is sent."""
        for task in await self._apply_poll(records, stopping):
            await task

    async def _apply_poll(
        self, records: Sequence[Delivery], stopping: asyncio.Event
    ) -> list["Sending"]:
        """``apply_poll``, returning once the transactions committed: the sends of the
        poll's lanes still under way (``send_behind``)."""
        by_lane: dict[int, list[Delivery]] = defaultdict(list)
        for delivery in records:
            by_lane[delivery.partition % self.limits.lanes].append(delivery)
        if len(by_lane) == 1 or len(records) < self.limits.lanes_from:
            # One transaction's records in the poll's order: each partition's order kept.
            await self._apply_partition(tuple(by_lane), records, stopping)
        else:
            try:
                async with asyncio.TaskGroup() as tasks:
                    for lane, deliveries in by_lane.items():
                        tasks.create_task(self._apply_partition((lane,), deliveries, stopping))
            except* Stopped:
                raise Stopped from None
        return list({self._sending[lane] for lane in by_lane if lane in self._sending})

    async def _apply_partition(
        self, lanes: "Lanes", deliveries: Sequence[Delivery], stopping: asyncio.Event
    ) -> None:
        """The records of ``lanes`` (one, or all of a small poll's together)."""
        pending: Sequence[Delivery] = deliveries
        while pending:
            done = await self._apply_some(lanes, pending, stopping)
            pending = pending[done:]

    async def _sent(self, lanes: "Lanes") -> None:
        """Wait until the lanes have sent what their transactions owe (before a record of
        them goes alone: its answers and events follow theirs)."""
        for lane in lanes:
            task = self._sending.pop(lane, None)
            if task is not None:
                await task

    def _send(
        self, lanes: "Lanes", batch: T, applied: int, overhead_s: float, stopping: asyncio.Event
    ) -> None:
        """Send what a committed transaction owes, after the lanes' sends before it."""
        before = list({self._sending[lane] for lane in lanes if lane in self._sending})

        async def send() -> None:
            for task in before:
                await task  # its Stopped is this one's too: nothing out of order
            delivering = time.perf_counter()
            await self._deliver(batch, stopping)
            delivered_s = time.perf_counter() - delivering
            self._observe("deliver", delivered_s)
            self._measured(overhead_s + delivered_s)
            batch_records.labels(self.group).observe(applied)

        task = asyncio.create_task(send())
        for lane in lanes:
            self._sending[lane] = task

    async def _apply_some(
        self, lanes: "Lanes", pending: Sequence[Delivery], stopping: asyncio.Event
    ) -> int:
        """Apply a prefix of ``pending`` in one transaction (retried while a dependency is
        down; split around a failing record); how many records it took."""
        chunk = pending[: self.limits.max_per_transaction]
        backoff = 0.1
        while True:
            try:
                batch, applied, overhead_s = await self._transaction(chunk)
            except _RecordFailed as failed:
                await self._sent(lanes)
                return await self._around(lanes, chunk, failed.index, stopping)
            except TRANSIENT_ERRORS as exc:
                logger.warning("dependency unavailable for a batch of %d: %r", len(chunk), exc)
                if stopping.is_set():
                    raise Stopped from exc
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            except Exception:
                # Not one record's failure (the commit, a bulk write): find it one by one.
                logger.exception("a batch of %d failed; applying it record by record", len(chunk))
                await self._sent(lanes)
                for delivery in chunk:
                    await self._alone(delivery, stopping)
                return len(chunk)
            self._send(lanes, batch, applied, overhead_s, stopping)
            if not self.limits.send_behind:
                await self._sent(lanes)
            return applied

    async def _transaction(self, chunk: Sequence[Delivery]) -> tuple[T, int, float]:
        """Apply records of ``chunk`` and commit; the state, how many it took and the
        time spent besides applying them (load, finish, commit)."""
        started = time.perf_counter()
        budget_s = self.answer_budget_s
        async with self.factory() as session, session.begin():
            await prefer_indexes(session)
            batch = await self.handler.begin(session, chunk)
            loaded_at = time.perf_counter()
            applied, waiting_since, yielded = 0, None, time.monotonic()
            for index, delivery in enumerate(chunk):
                if time.monotonic() - yielded >= YIELD_EVERY_S:
                    await asyncio.sleep(0)  # let the rest of the process run (REST, replies)
                    yielded = time.monotonic()
                try:
                    with traced_delivery(delivery, self.group):
                        urgent = await self.handler.apply(batch, delivery)
                except TRANSIENT_ERRORS:
                    raise
                except Ignored as exc:
                    logger.debug("%s skipped: %s", delivery.describe(), exc)
                    applied += 1
                    continue
                except Exception as exc:
                    raise _RecordFailed(index) from exc
                applied += 1
                if urgent and waiting_since is None:
                    waiting_since = time.monotonic()
                if waiting_since is not None and time.monotonic() - waiting_since >= budget_s:
                    break
            applied_at = time.perf_counter()
            await self.handler.finish(batch)
            finished_at = time.perf_counter()
        self._observe("load", loaded_at - started)
        self._observe("apply", applied_at - loaded_at)
        self._observe("finish", finished_at - applied_at)
        committed_at = time.perf_counter()
        self._observe("commit", committed_at - finished_at)
        return batch, applied, committed_at - started - (applied_at - loaded_at)

    async def _around(
        self, lanes: "Lanes", chunk: Sequence[Delivery], index: int, stopping: asyncio.Event
    ) -> int:
        """The records before the failing one as a batch, then the failing one alone."""
        done = 0
        while done < index:
            done += await self._apply_some(lanes, chunk[done:index], stopping)
        await self._sent(lanes)
        await self._alone(chunk[index], stopping)
        return index + 1

    async def _alone(self, delivery: Delivery, stopping: asyncio.Event) -> None:
        """One record in a transaction of its own, with the runner's retries and dead letter."""

        async def one(record: Delivery) -> None:
            batch, _applied = await self._transaction_of_one(record)
            await self._deliver(batch, stopping)

        await _handle(self.bus, self.group, one, delivery, stopping)

    async def _transaction_of_one(self, delivery: Delivery) -> tuple[T, int]:
        async with self.factory() as session, session.begin():
            await prefer_indexes(session)
            batch = await self.handler.begin(session, [delivery])
            await self.handler.apply(batch, delivery)
            await self.handler.finish(batch)
        return batch, 1

    async def _deliver(self, batch: T, stopping: asyncio.Event) -> None:
        """Send what the committed batch owes; while a dependency is down, try again (a
        stop leaves the offsets uncommitted: the replay sends it from the inbox)."""
        backoff = 0.1
        while True:
            try:
                await self.handler.deliver(batch)
            except TRANSIENT_ERRORS as exc:
                logger.warning("could not deliver a batch's answers and events yet: %r", exc)
                if stopping.is_set():
                    raise Stopped from exc
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            except Exception:
                # Committed, so a retry of the records would not send it either: a bug.
                logger.exception("a batch's answers and events could not be sent")
                return
            else:
                return


class _Polls:
    """The consumer's polls: one when asked (``poll``), or, with ``collect`` running, the
    records polled meanwhile (``take``). Collecting keeps aiokafka's fetcher busy while a
    poll is applied: it fetches a partition again only once what it buffered of it was
    taken, so records taken only after the apply would have waited for a fetch then."""

    def __init__(self, consumer: Consumer, max_records: int) -> None:
        self._consumer = consumer
        self._max_records = max_records
        self._held: list[Delivery] = []
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._stopped = False

    def stop(self) -> None:
        """Collect no more (the poll under way returns now)."""
        self._stopped = True
        self._room.set()
        self._consumer.wake()

    def wake(self) -> None:
        """A take or a poll under way returns now (a stop was asked)."""
        self._arrived.set()
        self._consumer.wake()

    async def poll(self) -> list[Delivery]:
        return await self._consumer.next_batch(self._max_records)

    async def collect(self) -> None:
        while not self._stopped:
            await self._room.wait()
            if self._stopped:
                return
            records = await self._consumer.next_batch(self._max_records - len(self._held))
            if records:
                self._held.extend(records)
                self._arrived.set()
                if len(self._held) >= self._max_records:
                    self._room.clear()

    async def take(self, timeout_s: float = 0.5) -> list[Delivery]:
        """What was polled since the last take (waiting up to ``timeout_s`` for some)."""
        if not self._held:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout_s)
        records, self._held = self._held, []
        self._arrived.clear()
        self._room.set()
        return records


class _RecordFailed(Exception):
    """Applying the record at ``index`` of the transaction's chunk failed."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index
