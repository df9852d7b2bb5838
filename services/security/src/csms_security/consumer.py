"""Consumption of ``ocpp.inbound``, ``ocpp.connections``, ``ocpp.refusals`` and
``csms.station-status``.

It runs on the batched consumer (``csms_core.bus.batching``): a poll's records of a
partition in one transaction, one after the other in one session (a record reads what
the ones before it wrote), the batch's inbox rows read in one statement. Each event is
handled once (``inbox``): its effects, the answer owed to the station and its domain
events commit with its id; after the commit the batch's answers are sent in one round
trip, its events published together, and their rows marked completed in one UPDATE.
Calls this service does not handle, and the other station-status events, are skipped
without a write.
"""

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

# Importing the domains registers their handlers (``context.handles``).
import csms_security.certificates.signing
import csms_security.events.service
import csms_security.pnc.handlers  # noqa: F401
from csms_core import topics
from csms_core.bus import Bus, Delivery, Outgoing, Unprocessable
from csms_core.db import among, mark_completed, session_factory
from csms_core.envelope import Envelope, Event
from csms_core.events import InvalidEvent
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


@dataclass
class SecurityBatch:
    """One transaction's records: its session, the inbox rows of its events (stored
    before or applied in this one), what the commit lets out."""

    session: AsyncSession
    processed: dict[str, ProcessedEvent]
    owed: list[ProcessedEvent] = field(default_factory=list)  # to deliver, in order
    after_commit: list[Callable[[], None]] = field(default_factory=list)


class SecurityConsumer:
    """The security service's handler on the batched consumer (a ``BatchHandler``)."""

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

    async def begin(self, session: AsyncSession, deliveries: Sequence[Delivery]) -> SecurityBatch:
        """The batch's state, with the inbox rows of its events loaded in one statement."""
        ids = [event_id for delivery in deliveries if (event_id := _event_id(delivery))]
        query = select(ProcessedEvent).where(among(session, col(ProcessedEvent.event_id), ids))
        processed = {record.event_id: record for record in await session.exec(query)}
        return SecurityBatch(session, processed)

    async def apply(self, batch: SecurityBatch, delivery: Delivery) -> bool:
        """One record's effects unless the inbox has it; True if a station waits for the
        answer it owes."""
        envelope = delivery.envelope
        if delivery.topic == STATION_STATUS:
            batch.after_commit.extend(self._on_station_status(envelope))
            return False
        if delivery.topic == OCPP_INBOUND and not _handled(envelope):
            return False  # not ours: nothing to store
        if delivery.topic == OCPP_CONNECTIONS and envelope.type not in CONNECTION_EVENTS:
            return False
        record = batch.processed.get(envelope.id)
        replayed = record is not None
        if record is None:
            record = await self._apply(batch.session, delivery, batch.after_commit)
            batch.session.add(record)
            batch.processed[record.event_id] = record
        elif any(owed.event_id == record.event_id for owed in batch.owed):
            return False  # twice in one batch: owed once
        kind = "replayed" if replayed else envelope.data.get("action", envelope.type)
        events_handled.labels(delivery.topic, kind).inc()
        if record.completed:
            return False
        batch.owed.append(record)
        return record.answer is not None

    async def finish(self, batch: SecurityBatch) -> None:
        """Nothing coalesced: every record wrote its own rows."""

    async def deliver(self, batch: SecurityBatch) -> None:
        """After the commit: the answers first (stations wait), then the domain events,
        then the rows marked completed; the callbacks of the committed effects."""
        for callback in batch.after_commit:
            callback()
        await self._commands.answer_many(
            [
                (CallAnswer.model_validate(record.answer), record.gateway_id)
                for record in batch.owed
                if record.answer is not None and record.gateway_id is not None
            ]
        )
        await self._bus.publish_many(
            [_outgoing(item) for record in batch.owed for item in record.outbox or []]
        )
        await mark_completed(
            self._factory, ProcessedEvent, [record.event_id for record in batch.owed]
        )

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

    def _on_station_status(self, envelope: Envelope) -> list[Callable[[], None]]:
        """A station just accepted at boot may be due for a renewal or a fresh certificate
        list: who to tell, after the commit."""
        if envelope.type != "station.booted" or envelope.data.get("boot_status") != "Accepted":
            return []
        station_id = envelope.station_id
        return [functools.partial(booted, station_id) for booted in self._on_booted]


def _outgoing(item: dict[str, Any]) -> Outgoing:
    """A domain event kept in an inbox row's outbox, to publish."""
    topic = topics.BY_NAME[item["topic"]]
    return Outgoing(topic, topic.parse_object(item["event"]))


def _event_id(delivery: Delivery) -> str | None:
    try:
        return delivery.envelope.id
    except InvalidEvent:  # dead-lettered with its reason when it is applied
        return None


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
