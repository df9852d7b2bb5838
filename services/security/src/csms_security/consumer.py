"""Consumption of ``ocpp.inbound``, ``ocpp.connections``, ``ocpp.refusals`` and
``csms.station-status``.

Each event is handled once (``inbox``): its effects, the answer owed to the
station and its domain events commit with its id; the answer is sent and the
events published after that. Calls this service does not handle, and the other
station-status events, are skipped without a write.
"""

import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

# Importing the domains registers their handlers (``context.handles``).
import csms_security.certificates.signing
import csms_security.events.service
import csms_security.pnc.handlers  # noqa: F401
from csms_core import topics
from csms_core.bus import Bus, Delivery, Unprocessable
from csms_core.db import session_factory, transaction
from csms_core.envelope import Envelope, Event
from csms_core.events.security import SecurityProfileUpgraded
from csms_core.router import CallAnswer, CommandClient
from csms_core.topics import OCPP_CONNECTIONS, OCPP_INBOUND, OCPP_REFUSALS, STATION_STATUS
from csms_security.certificates.signing import Issuer
from csms_security.context import (
    SECURITY_EVENTS,
    SOURCE,
    CallContext,
    ConnectionChange,
    Pki,
    calls,
)
from csms_security.events.refusals import on_refusal
from csms_security.inbox import ProcessedEvent
from csms_security.profiles.connections import on_connection
from csms_security.settings import SecuritySettings

logger = logging.getLogger(__name__)

TOPICS = (OCPP_INBOUND, OCPP_CONNECTIONS, OCPP_REFUSALS, STATION_STATUS)
CONNECTION_EVENTS = {"ocpp.connection.opened": True, "ocpp.connection.closed": False}

events_handled = Counter(
    "csms_security_events_handled_total", "Events the security service handled", ["topic", "kind"]
)


class SecurityConsumer:
    """The ``run_consumer`` handler of the security service."""

    def __init__(
        self,
        settings: SecuritySettings,
        bus: Bus,
        commands: CommandClient,
        engine: AsyncEngine,
        pki: Pki,
        issuer: Issuer,
        on_booted: list[Callable[[str], None]],
    ) -> None:
        self._settings = settings
        self._bus = bus
        self._commands = commands
        self._factory = session_factory(engine)
        self._pki = pki
        self._issuer = issuer
        self._on_booted = on_booted

    async def __call__(self, delivery: Delivery) -> None:
        envelope = delivery.envelope
        if delivery.topic == STATION_STATUS:
            self._on_station_status(envelope)
            return
        if delivery.topic == OCPP_INBOUND and not _handled(envelope):
            return  # not ours: nothing to store
        if delivery.topic == OCPP_CONNECTIONS and envelope.type not in CONNECTION_EVENTS:
            return
        after_commit: list[Callable[[], None]] = []
        async with transaction(self._factory) as session:
            record = await session.get(ProcessedEvent, envelope.id)
            replayed = record is not None
            if record is None:
                record = await self._apply(session, delivery, after_commit)
                session.add(record)
        for callback in after_commit:
            callback()
        kind = "replayed" if replayed else envelope.data.get("action", envelope.type)
        events_handled.labels(delivery.topic, kind).inc()
        if not record.completed:
            await self._deliver(record)

    async def _apply(
        self, session: AsyncSession, delivery: Delivery, after_commit: list[Callable[[], None]]
    ) -> ProcessedEvent:
        envelope = delivery.envelope
        if delivery.topic == OCPP_CONNECTIONS:
            events = await self._on_connection(session, envelope)
            return _processed(envelope, None, events)
        if delivery.topic == OCPP_REFUSALS:  # a gateway refused a station: a security event
            refused = OCPP_REFUSALS.decode(delivery)
            recorded = on_refusal(session, refused, after_commit)
            return _processed(envelope, None, [(SECURITY_EVENTS, recorded)])
        # A record that is no station CALL: InvalidEvent, dead-lettered with the reason.
        call = OCPP_INBOUND.decode(delivery)
        ctx = CallContext(session, self._settings, self._pki, call)
        answer = await calls.run(ctx, call)
        after_commit.extend(ctx.after_commit)
        if call.data.action == "SignCertificate":
            after_commit.append(self._issuer.wake)
        return _processed(envelope, answer, ctx.events)

    async def _on_connection(
        self, session: AsyncSession, envelope: Envelope
    ) -> list[tuple[str, Event[Any]]]:
        try:
            change = ConnectionChange.model_validate(envelope.data)
        except ValidationError as exc:
            raise Unprocessable(f"not a connection event: {exc.error_count()} errors") from exc
        upgraded = await on_connection(
            session,
            envelope.station_id,
            envelope.ocpp_version or "1.6",
            change,
            opened=CONNECTION_EVENTS[envelope.type],
        )
        if upgraded is None:
            return []
        event = SecurityProfileUpgraded(
            id=f"{envelope.id}.upgraded",
            source=SOURCE,
            station_id=envelope.station_id,
            ocpp_version=envelope.ocpp_version,
            data=upgraded,
        )
        return [(SECURITY_EVENTS, event)]

    def _on_station_status(self, envelope: Envelope) -> None:
        # A station just accepted at boot may be due for a renewal or a fresh certificate list.
        if envelope.type == "station.booted" and envelope.data.get("boot_status") == "Accepted":
            for booted in self._on_booted:
                booted(envelope.station_id)

    async def _deliver(self, record: ProcessedEvent) -> None:
        """The answer first (the station waits), then the domain events, then the mark."""
        if record.answer is not None and record.gateway_id is not None:
            await self._commands.answer(CallAnswer.model_validate(record.answer), record.gateway_id)
        for item in record.outbox or []:
            topic = topics.BY_NAME[item["topic"]]
            await self._bus.publish(topic, topic.parse_object(item["event"]))
        async with transaction(self._factory) as session:
            stored = await session.get(ProcessedEvent, record.event_id)
            if stored is not None:
                stored.completed = True
                session.add(stored)


def _processed(
    envelope: Envelope, answer: CallAnswer | None, events: list[tuple[str, Event[Any]]]
) -> ProcessedEvent:
    return ProcessedEvent(
        event_id=envelope.id,
        gateway_id=envelope.data.get("gateway_id"),
        answer=answer.model_dump(mode="json") if answer else None,
        outbox=[{"topic": t, "event": e.model_dump(mode="json")} for t, e in events],
        completed=answer is None and not events,
    )


def _handled(envelope: Envelope) -> bool:
    """A station CALL this service has a handler of (the others are skipped unopened)."""
    action = envelope.data.get("action")
    return isinstance(action, str) and calls.handler(action, envelope.ocpp_version) is not None
