"""Consumption of ``ocpp.inbound`` and ``ocpp.connections``: dispatch, answer, publish.

Each event is handled once (see ``inbox``): its effects, the answer owed to
the station and its domain events commit together with its id; the answer is
sent and the events published after that. That they went out is recorded for
many events in one UPDATE (``flush_completed``, at most ``COMPLETION_FLUSH_S``
later), not in a transaction of each event's own: a crash before it only means
that a replay sends the answer (dropped by the gateway) and the events (the same
ids: consumers de-duplicate) again.
"""

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from prometheus_client import Counter
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.bus import Bus, Delivery
from csms_core.db import session_factory, transaction
from csms_core.router import CallAnswer, CommandClient
from csms_core.telemetry import current_trace_headers
from csms_core.topics import OCPP_CONNECTIONS, OCPP_INBOUND
from csms_ocpp import ErrorCode, error_code, schemas
from csms_ocpp.actions import Owner
from csms_sessions.batch import StationBatch
from csms_sessions.configuration.handlers import on_notify_report
from csms_sessions.context import EventContext
from csms_sessions.datatransfer import on_data_transfer
from csms_sessions.inbox import ProcessedEvent
from csms_sessions.metering.handlers import on_meter_values
from csms_sessions.reservations.handlers import on_reservation_status_update
from csms_sessions.settings import SessionsSettings
from csms_sessions.stations.handlers import (
    on_boot_notification,
    on_connection_closed,
    on_connection_opened,
    on_heartbeat,
    on_status_notification,
)
from csms_sessions.tokens.handlers import on_authorize
from csms_sessions.transactions.handlers import (
    on_start_transaction,
    on_stop_transaction,
    on_transaction_event,
)

logger = logging.getLogger(__name__)

TOPICS = (OCPP_INBOUND, OCPP_CONNECTIONS)

Handler = Callable[[EventContext], Awaitable[dict[str, Any] | None]]
# Per OCPP action; a handler returns the CALLRESULT payload when the station waits for one.
CALL_HANDLERS: dict[str, Handler] = {
    "BootNotification": on_boot_notification,
    "Heartbeat": on_heartbeat,
    "StatusNotification": on_status_notification,
    "Authorize": on_authorize,
    "DataTransfer": on_data_transfer,
    "NotifyReport": on_notify_report,
    "StartTransaction": on_start_transaction,
    "StopTransaction": on_stop_transaction,
    "TransactionEvent": on_transaction_event,
    "MeterValues": on_meter_values,
    "ReservationStatusUpdate": on_reservation_status_update,
}
CONNECTION_HANDLERS: dict[str, Handler] = {
    "ocpp.connection.opened": on_connection_opened,
    "ocpp.connection.closed": on_connection_closed,
}

COMPLETION_FLUSH_S = 0.1  # delivered events are marked completed this often
COMPLETION_BATCH = 256  # ... or as soon as this many wait

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
        self._delivered_wake = asyncio.Event()

    async def begin(self, session: AsyncSession, deliveries: Sequence[Delivery]) -> StationBatch:
        """A transaction's state, with the inbox rows and stations of its events loaded."""
        return await StationBatch.load(session, deliveries)

    async def apply(self, batch: StationBatch, delivery: Delivery) -> bool:
        """Apply one event unless the inbox has it; True if a station waits for its answer."""
        envelope = delivery.envelope
        if envelope.id in batch.applied_ids:  # twice in one batch: applied already
            return False
        record = batch.processed.get(envelope.id)
        if record is not None:  # a replay: it owes again what it did not deliver
            _handled(delivery.topic, "replayed").inc()
            return batch.owe_again(record)
        station = batch.station(envelope.station_id)
        context = EventContext(
            batch.session,
            self._settings,
            envelope,
            station,
            active_sessions=batch.active_sessions,
            rows=batch.rows,
        )
        if delivery.topic == OCPP_INBOUND:
            batch.seen(station.station_id, context.received_at)
        answer = await self._apply(context, delivery.topic)
        batch.record(envelope, answer, context.events)
        _handled(delivery.topic, envelope.data.get("action", "connection")).inc()
        return answer is not None

    async def finish(self, batch: StationBatch) -> None:
        await batch.finish()

    async def deliver(self, batch: StationBatch) -> None:
        """Send what the committed events owe: the answers first (stations wait), then the
        domain events, in the order the events were applied."""
        for owed in batch.owed:
            if owed.answer is not None and owed.gateway_id is not None:
                await self._commands.answer(owed.answer, owed.gateway_id)
        await self._bus.publish_many([record for owed in batch.owed for record in owed.records])
        self._delivered.extend(owed.event_id for owed in batch.owed)
        if len(self._delivered) >= COMPLETION_BATCH:
            self._delivered_wake.set()

    async def _apply(self, ctx: EventContext, topic: str) -> CallAnswer | None:
        """The event's effects; the answer the station waits for, if it waits."""
        if topic == OCPP_INBOUND:
            return await self._on_call(ctx)
        if (on_connection := CONNECTION_HANDLERS.get(ctx.envelope.type)) is not None:
            await on_connection(ctx)
        return None

    async def _on_call(self, ctx: EventContext) -> CallAnswer | None:
        if ctx.envelope.ocpp_version and ctx.station.ocpp_version != ctx.envelope.ocpp_version:
            ctx.station.ocpp_version = ctx.envelope.ocpp_version
        action = ctx.envelope.data["action"]
        handler = CALL_HANDLERS.get(action)
        payload = await handler(ctx) if handler else None
        waits = (
            ctx.envelope.type == "ocpp.call" and ctx.envelope.data.get("owner") == Owner.SESSIONS
        )
        return _answer(ctx, action, payload) if waits else None

    async def flush_completed(self) -> None:
        """Mark what was delivered as completed, in one UPDATE."""
        ids, self._delivered = self._delivered, []
        if not ids:
            return
        try:
            async with transaction(self._factory) as session:
                await session.exec(
                    update(ProcessedEvent)
                    .where(col(ProcessedEvent.event_id).in_(ids))
                    .values(completed=True)
                )
        except Exception:
            self._delivered[:0] = ids  # the next flush tries again
            raise

    async def run_completions(self, stopping: asyncio.Event) -> None:
        """Flush the completion marks every ``COMPLETION_FLUSH_S`` (and once when stopping)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._delivered_wake.wait(), COMPLETION_FLUSH_S)
            self._delivered_wake.clear()
            try:
                await self.flush_completed()
            except Exception as exc:  # noqa: BLE001 - a database outage: kept, tried again
                logger.warning("completion marks not written yet: %r", exc)
            if stopping.is_set():
                return


@functools.cache
def _handled(topic: str, kind: str) -> Counter:
    """The counter of one topic and kind (a labels() lookup costs more than the count)."""
    return events_handled.labels(topic, kind)


def _answer(ctx: EventContext, action: str, payload: dict[str, Any] | None) -> CallAnswer:
    data = ctx.envelope.data
    error: tuple[ErrorCode, str] | None = None
    if payload is None:
        error = ErrorCode.NOT_IMPLEMENTED, f"{action} is not handled by the CSMS"
    elif (violation := schemas.validate(ctx.version, action, payload, response=True)) is not None:
        # Our bug, not the station's: the gateway would refuse this answer anyway.
        logger.error("own %s answer breaks its schema: %s", action, violation.description)
        error = ErrorCode.INTERNAL_ERROR, "the CSMS could not form a valid answer"
    return CallAnswer(
        station_id=ctx.station.station_id,
        connection_id=data["connection_id"],
        message_id=data["message_id"],
        payload=None if error else payload,
        error_code=error_code(error[0], ctx.version) if error else None,
        error_description=error[1] if error else "",
        traceparent=current_trace_headers().get("traceparent"),
    )
