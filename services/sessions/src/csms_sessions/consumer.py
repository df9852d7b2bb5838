"""Consumption of ``ocpp.inbound`` and ``ocpp.connections``: dispatch, answer, publish.

Each event is handled once (see ``inbox``): its effects, the answer owed to
the station and its domain events commit together with its id; the answer is
sent and the events published after that. That they went out is recorded for
many events in one UPDATE (``flush_completed``), not in a transaction of each
event's own: a crash before it only means that a replay sends the answer (dropped by
the gateway) and the events (the same ids: consumers de-duplicate) again. The UPDATE
waits for a pause in the deliveries (``COMPLETION_QUIET_S``), for ``COMPLETION_BATCH``
ids or for ``COMPLETION_MAX_WAIT_S`` (``completion_due``): under a steady stream a
transaction of its own per tenth of a second cost more than its ids (measured:
bench/RESULTS.md, lag4), and only a replay of records whose offsets were not yet
committed ever reads the mark.
"""

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Sequence

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

# The handlers register themselves (``calls``, ``events``) where they are defined.
import csms_sessions.configuration.handlers
import csms_sessions.customers.handlers
import csms_sessions.datatransfer
import csms_sessions.metering.handlers
import csms_sessions.monitoring.handlers
import csms_sessions.reservations.handlers
import csms_sessions.stations.handlers
import csms_sessions.tokens.handlers
import csms_sessions.transactions.handlers  # noqa: F401
from csms_core.bus import Bus, Delivery
from csms_core.db import mark_completed, session_factory
from csms_core.events import OcppCall, OcppSend
from csms_core.router import CallAnswer, CommandClient
from csms_core.topics import OCPP_CONNECTIONS, OCPP_INBOUND
from csms_sessions.batch import StationBatch
from csms_sessions.context import Consumed, EventContext, calls, events
from csms_sessions.inbox import ProcessedEvent
from csms_sessions.settings import SessionsSettings

logger = logging.getLogger(__name__)

TOPICS = (OCPP_INBOUND, OCPP_CONNECTIONS)

COMPLETION_QUIET_S = 0.1  # delivered events are marked completed once none came this long
COMPLETION_BATCH = 2048  # ... or as soon as this many wait
COMPLETION_MAX_WAIT_S = 1.0  # ... or once the first of them waited this long

events_handled = Counter(
    "csms_sessions_events_total", "Events the sessions service handled", ["topic", "kind"]
)


class InboundConsumer:
    """The sessions service's handler of the batched consumer (``csms_core.bus.batching``)."""

    def __init__(
        self, settings: SessionsSettings, bus: Bus, commands: CommandClient, engine: AsyncEngine
    ) -> None:
        self._settings = settings
        self._bus = bus
        self._commands = commands
        self._factory = session_factory(engine)
        self._delivered: list[str] = []  # event ids sent out, not yet marked completed
        self._delivered_since = 0.0  # when the first of them was (time.monotonic())
        self._delivered_wake = asyncio.Event()

    async def begin(self, session: AsyncSession, deliveries: Sequence[Delivery]) -> StationBatch:
        """A transaction's state, with the inbox rows and stations of its events loaded."""
        return await StationBatch.load(session, deliveries)

    async def apply(self, batch: StationBatch, delivery: Delivery) -> bool:
        """Apply one event unless the inbox has it; True if a station waits for its answer."""
        # A record that is no event of its topic: InvalidEvent, dead-lettered with the reason.
        event = batch.event(delivery)
        if event.id in batch.applied_ids:  # twice in one batch: applied already
            return False
        record = batch.processed.get(event.id)
        if record is not None:  # a replay: it owes again what it did not deliver
            _handled(delivery.topic, "replayed").inc()
            return batch.owe_again(record)
        station = batch.station(event)
        context = EventContext(
            batch.session,
            self._settings,
            event,
            station,
            active_sessions=batch.active_sessions,
            statuses=batch.statuses,
            samples=batch.samples,
            registrations=batch.registrations,
            known=batch.known,
        )
        call = context.call
        if call is not None:
            batch.seen(event.station_id, call.received_at)
            batch.speaks(station, event)
        answer = await self._apply(event, context)
        batch.record(event, answer, context.events)
        _handled(delivery.topic, call.action if call else "connection").inc()
        return answer is not None

    async def finish(self, batch: StationBatch) -> None:
        await batch.finish()

    async def deliver(self, batch: StationBatch) -> None:
        """Send what the committed events owe: the answers first (stations wait), then the
        domain events, in the order the events were applied."""
        await self._commands.answer_many(
            [
                (owed.answer, owed.gateway_id)
                for owed in batch.owed
                if owed.answer is not None and owed.gateway_id is not None
            ]
        )
        await self._bus.publish_many([record for owed in batch.owed for record in owed.records])
        if batch.owed and not self._delivered:
            self._delivered_since = time.monotonic()
        self._delivered.extend(owed.event_id for owed in batch.owed)
        self._delivered_wake.set()

    async def _apply(self, event: Consumed, ctx: EventContext) -> CallAnswer | None:
        """The event's effects; the answer the station waits for, if it waits."""
        if not isinstance(event, OcppCall | OcppSend):
            await events.dispatch(event, ctx)
            return None
        return await calls.run(ctx, event)  # nothing when the gateway routed it elsewhere

    async def flush_completed(self) -> None:
        """Mark what was delivered as completed, in one UPDATE."""
        ids, self._delivered = self._delivered, []
        if not ids:
            return
        try:
            await mark_completed(self._factory, ProcessedEvent, ids)
        except Exception:
            self._delivered[:0] = ids  # the next flush tries again
            raise

    async def run_completions(self, stopping: asyncio.Event) -> None:
        """Flush the completion marks when ``completion_due`` (and once when stopping)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._delivered_wake.wait(), COMPLETION_QUIET_S)
            delivering = self._delivered_wake.is_set()
            self._delivered_wake.clear()
            waited_s = time.monotonic() - self._delivered_since
            if stopping.is_set() or completion_due(delivering, len(self._delivered), waited_s):
                try:
                    await self.flush_completed()
                except Exception as exc:  # noqa: BLE001 - a database outage: kept, tried again
                    logger.warning("completion marks not written yet: %r", exc)
            if stopping.is_set():
                return


def completion_due(delivering: bool, waiting: int, waited_s: float) -> bool:
    """Whether the ``waiting`` completion marks are written now: the deliveries paused
    (none for ``COMPLETION_QUIET_S``), or ``COMPLETION_BATCH`` of them wait, or the first
    has waited ``COMPLETION_MAX_WAIT_S``."""
    if not waiting:
        return False
    return not delivering or waiting >= COMPLETION_BATCH or waited_s >= COMPLETION_MAX_WAIT_S


@functools.cache
def _handled(topic: str, kind: str) -> Counter:
    """The counter of one topic and kind (a labels() lookup costs more than the count)."""
    return events_handled.labels(topic, kind)
