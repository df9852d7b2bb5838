"""One transaction's worth of station events: what it loads in bulk, coalesces and owes.

The batched consumer (``csms_core.bus.batching``) applies many events in one ORM
session. Before the first, ``StationBatch.load`` reads in one statement each the
inbox rows of the batch's events, the batch's stations, their connectors' statuses
and which of them have an active session, so a handler's lookup of those
(``ctx.get``) needs no round trip, also for a row that does not exist. A handler's
query still sees what the events before it wrote (the session flushes first). What
may be coalesced is: a station's last-seen time is kept here and written once, at
the end (``finish``), with the batch's inbox rows in one statement.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.bus import Delivery, Outgoing
from csms_core.db import Prefetched, among, insert_rows
from csms_core.envelope import Event
from csms_core.events import Topic
from csms_core.router import CallAnswer
from csms_core.telemetry import current_trace_headers
from csms_core.topics import BY_NAME
from csms_sessions.context import Consumed
from csms_sessions.db import utc_now
from csms_sessions.inbox import ProcessedEvent
from csms_sessions.stations.handlers import touch
from csms_sessions.stations.models import ConnectorStatus, Station
from csms_sessions.transactions.active import ActiveSessions


@dataclass(frozen=True, slots=True)
class Owed:
    """What one committed event still has to send: its answer, then its domain events
    (each in the trace of the event that caused it)."""

    event_id: str
    gateway_id: str | None
    answer: CallAnswer | None
    records: list[Outgoing]

    @classmethod
    def stored(cls, record: ProcessedEvent) -> "Owed":
        """What a stored inbox row owes (a replay of an event not delivered in full)."""
        trace = current_trace_headers()
        return cls(
            record.event_id,
            record.gateway_id,
            CallAnswer.model_validate(record.answer) if record.answer is not None else None,
            [_outgoing(item, trace) for item in record.outbox or []],
        )


@dataclass
class StationBatch:
    session: AsyncSession
    # The inbox's rows of the batch's events stored before (a replay).
    processed: dict[str, ProcessedEvent]
    stations: dict[str, Station]
    active_sessions: ActiveSessions
    rows: Prefetched  # the connectors' statuses
    last_seen: dict[str, datetime] = field(default_factory=dict)
    applied: list[dict[str, Any]] = field(default_factory=list)  # new inbox rows
    applied_ids: set[str] = field(default_factory=set)
    now: datetime = field(default_factory=utc_now)
    owed: list[Owed] = field(default_factory=list)  # to send after the commit

    @classmethod
    async def load(cls, session: AsyncSession, deliveries: Sequence[Delivery]) -> "StationBatch":
        event_ids = [delivery.envelope.id for delivery in deliveries]
        station_ids = {delivery.envelope.station_id for delivery in deliveries}
        processed = await session.exec(
            select(ProcessedEvent).where(among(session, col(ProcessedEvent.event_id), event_ids))
        )
        stations = await session.exec(
            select(Station).where(among(session, col(Station.station_id), station_ids))
        )
        rows = Prefetched(session)
        await rows.load(
            ConnectorStatus,
            among(session, col(ConnectorStatus.station_id), station_ids),
            covers=lambda key: key[0] in station_ids,
        )
        return cls(
            session,
            {record.event_id: record for record in processed},
            {station.station_id: station for station in stations},
            await ActiveSessions.load(session, station_ids),
            rows,
        )

    def station(self, station_id: str) -> Station:
        """The station's row, created (not registered) the first time we hear of it."""
        station = self.stations.get(station_id)
        if station is None:
            station = self.stations[station_id] = Station(station_id=station_id)
            self.session.add(station)
        return station

    def seen(self, station_id: str, at: datetime) -> None:
        """The station sent a message received ``at`` (written once, in ``finish``)."""
        before = self.last_seen.get(station_id)
        if before is None or before < at:
            self.last_seen[station_id] = at

    def record(
        self,
        envelope: Consumed,
        answer: CallAnswer | None,
        events: Sequence[tuple[Topic[Any], Event[Any]]],
    ) -> None:
        """An event applied now: its inbox row (with what it owes) joins the batch's."""
        completed = answer is None and not events
        gateway_id = envelope.data.gateway_id
        self.applied.append(
            {
                "event_id": envelope.id,
                "processed_at": self.now,
                "gateway_id": gateway_id,
                "answer": answer.model_dump(mode="json") if answer else None,
                "outbox": [
                    {"topic": t.name, "event": e.model_dump(mode="json")} for t, e in events
                ],
                "completed": completed,
            }
        )
        self.applied_ids.add(envelope.id)
        if not completed:
            trace = current_trace_headers()
            records = [Outgoing(topic, event, trace) for topic, event in events]
            self.owed.append(Owed(envelope.id, gateway_id, answer, records))

    def owe_again(self, record: ProcessedEvent) -> bool:
        """A replayed event: send again what it did not deliver; whether a station waits."""
        if record.completed or any(owed.event_id == record.event_id for owed in self.owed):
            return False
        owed = Owed.stored(record)
        self.owed.append(owed)
        return owed.answer is not None

    async def finish(self) -> None:
        """Before the commit: the coalesced last-seen times and the new inbox rows (one
        statement for all of them)."""
        for station_id, at in self.last_seen.items():
            touch(self.stations[station_id], at)
        await insert_rows(self.session, ProcessedEvent, self.applied)


def _outgoing(item: dict[str, Any], trace: dict[str, str]) -> Outgoing:
    topic = BY_NAME[item["topic"]]
    return Outgoing(topic, topic.parse_object(item["event"]), trace)
