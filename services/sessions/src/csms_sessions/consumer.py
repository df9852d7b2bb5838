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
import logging
from collections.abc import Awaitable, Callable
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
from csms_core.topics import BY_NAME, OCPP_CONNECTIONS, OCPP_INBOUND
from csms_ocpp import ErrorCode, error_code, schemas
from csms_ocpp.actions import Owner
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
    touch,
)
from csms_sessions.stations.models import Station
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
    """The ``run_consumer`` handler of the sessions service."""

    def __init__(
        self, settings: SessionsSettings, bus: Bus, commands: CommandClient, engine: AsyncEngine
    ) -> None:
        self._settings = settings
        self._bus = bus
        self._commands = commands
        self._factory = session_factory(engine)
        self._delivered: list[str] = []  # event ids sent out, not yet marked completed
        self._delivered_wake = asyncio.Event()

    async def __call__(self, delivery: Delivery) -> None:
        async with transaction(self._factory) as session:
            record = await session.get(ProcessedEvent, delivery.envelope.id)
            replayed = record is not None
            if record is None:
                station = await _station(session, delivery.envelope.station_id)
                context = EventContext(session, self._settings, delivery.envelope, station)
                record = await self._apply(context, delivery.topic)
                session.add(record)
        kind = "replayed" if replayed else delivery.envelope.data.get("action", "connection")
        events_handled.labels(delivery.topic, kind).inc()
        if not record.completed:
            await self._deliver(record)

    async def _apply(self, ctx: EventContext, topic: str) -> ProcessedEvent:
        answer = None
        if topic == OCPP_INBOUND:
            answer = await self._on_call(ctx)
        elif (on_connection := CONNECTION_HANDLERS.get(ctx.envelope.type)) is not None:
            await on_connection(ctx)
        return ProcessedEvent(
            event_id=ctx.envelope.id,
            gateway_id=ctx.envelope.data.get("gateway_id"),
            answer=answer.model_dump(mode="json") if answer else None,
            outbox=[{"topic": t.name, "event": e.model_dump(mode="json")} for t, e in ctx.events],
            completed=answer is None and not ctx.events,
        )

    async def _on_call(self, ctx: EventContext) -> CallAnswer | None:
        touch(ctx.station, ctx.received_at)
        if ctx.envelope.ocpp_version:
            ctx.station.ocpp_version = ctx.envelope.ocpp_version
        action = ctx.envelope.data["action"]
        handler = CALL_HANDLERS.get(action)
        payload = await handler(ctx) if handler else None
        waits = (
            ctx.envelope.type == "ocpp.call" and ctx.envelope.data.get("owner") == Owner.SESSIONS
        )
        return _answer(ctx, action, payload) if waits else None

    async def _deliver(self, record: ProcessedEvent) -> None:
        """Send what the committed event owes: the answer first (the station waits), then events."""
        if record.answer is not None and record.gateway_id is not None:
            await self._commands.answer(CallAnswer.model_validate(record.answer), record.gateway_id)
        for item in record.outbox or []:
            topic = BY_NAME[item["topic"]]
            await self._bus.publish(topic, topic.parse_object(item["event"]))
        self._delivered.append(record.event_id)
        if len(self._delivered) >= COMPLETION_BATCH:
            self._delivered_wake.set()

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


async def _station(session: AsyncSession, station_id: str) -> Station:
    """The station's row, created (not registered) the first time we hear of it."""
    station = await session.get(Station, station_id) or Station(station_id=station_id)
    session.add(station)
    return station


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
