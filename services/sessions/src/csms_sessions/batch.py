"""One transaction's worth of station events: what it loads in bulk, coalesces and owes.

The batched consumer (``csms_core.bus.batching``) applies many events in one ORM
session. Before the first, ``StationBatch.load`` reads every record once (one
validation each), then in one statement (``BatchReads``: one round trip, where each
is a wait for the database and a wake-up of the process) which of the batch's events the
inbox has, the batch's stored stations, their connectors' statuses and which of them
have an active session, so a handler's lookup of those needs no round trip, also for a
row that does not exist; the ORM rows of stations whose handlers need them and of a
replay's inbox rows follow, when there are any. A handler's query still sees what the
events before it wrote (the session flushes first).

Most of a network's messages are status reports, heartbeats and meter values, whose
handlers read only the station's id (``context.reads_station_id_only``). A station
that sent only those in the batch gets no ORM row: its last-seen time and OCPP version
are coalesced and written with one Core UPDATE for all such stations
(``StationTouches``). Connector statuses are applied in memory and the newest of each
connector written in one upsert (``ConnectorStatuses``); the 2.x meter values' samples
are de-duplicated against one read and written in one statement (``PendingSamples``);
the batch's inbox rows go in one statement too (``finish``).
"""

import functools
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    ARRAY,
    Integer,
    Select,
    String,
    any_,
    bindparam,
    cast,
    literal_column,
    null,
    type_coerce,
    union_all,
)
from sqlalchemy import select as sql_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.bus import Delivery, Outgoing
from csms_core.db import UtcDateTime, Writes, among, insert_part
from csms_core.envelope import EncodedEvent, Event
from csms_core.events import OcppCall, OcppSend, Topic
from csms_core.identity.store import record_registrations
from csms_core.router import CallAnswer
from csms_core.telemetry import current_trace_headers
from csms_core.topics import BY_NAME
from csms_sessions.context import STATION_ID_ONLY, Consumed
from csms_sessions.db import parse_ocpp_time, utc_now
from csms_sessions.inbox import ProcessedEvent
from csms_sessions.metering.bulk import PendingSamples
from csms_sessions.stations.bulk import (
    STATUS_REPORTS,
    ConnectorStatuses,
    ReportedStatus,
    StationTouches,
)
from csms_sessions.stations.handlers import touch
from csms_sessions.stations.models import ConnectorState, ConnectorStatus, Station
from csms_sessions.transactions.active import ActiveSessions
from csms_sessions.transactions.known import KnownSessions
from csms_sessions.transactions.models import ChargingSession, SessionState


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
    # Each record's event (or why it is none), by the record (its ``id()``).
    decoded: dict[int, Consumed | Exception]
    # The inbox's rows of the batch's events stored before (a replay).
    processed: dict[str, ProcessedEvent]
    stations: dict[str, Station]  # ORM rows of the stations an event needs the row of
    touches: StationTouches  # the other stations of the batch
    active_sessions: ActiveSessions
    statuses: ConnectorStatuses
    samples: PendingSamples
    known: KnownSessions
    last_seen: dict[str, datetime] = field(default_factory=dict)
    registrations: dict[str, str] = field(default_factory=dict)  # the boots' statuses
    applied: list[dict[str, Any]] = field(default_factory=list)  # new inbox rows
    applied_ids: set[str] = field(default_factory=set)
    now: datetime = field(default_factory=utc_now)
    owed: list[Owed] = field(default_factory=list)  # to send after the commit

    @classmethod
    async def load(cls, session: AsyncSession, deliveries: Sequence[Delivery]) -> "StationBatch":
        decoded = {id(delivery): _decode(delivery) for delivery in deliveries}
        events = [event for event in decoded.values() if not isinstance(event, Exception)]
        station_ids = {event.station_id for event in events}
        with_row = {event.station_id for event in events if not _station_id_only(event)}
        # Only a status report asks for its station's active sessions and connector
        # statuses (the other events' stations cost no query).
        reporting = {event.station_id for event in events if _action(event) in STATUS_REPORTS}
        read = await BatchReads.read(
            session, [event.id for event in events], station_ids - with_row, reporting
        )
        touches = StationTouches(read.versions, {}, {})
        # A station not stored yet is created as an ORM row by its first event.
        with_row |= {station_id for station_id in station_ids if not touches.stored(station_id)}
        return cls(
            session,
            decoded,
            await _processed(session, read.replayed),
            await _stations(session, with_row),
            touches,
            ActiveSessions(session, read.active, reporting),
            ConnectorStatuses.read_as(reporting, read.statuses),
            await _samples_of(session, events),
            await KnownSessions.load(session, _transactions_of(events)),
        )

    def event(self, delivery: Delivery) -> Consumed:
        """The record's event; why it is none (``InvalidEvent``) raised."""
        event = self.decoded.get(id(delivery))
        if event is None:  # not one of the records the batch began with
            event = self.decoded[id(delivery)] = _decode(delivery)
        if isinstance(event, Exception):
            raise event
        return event

    def station(self, event: Consumed) -> Station | None:
        """The station's ORM row, created (not registered) the first time we hear of it;
        None if the batch keeps its last-seen time and version in ``touches``."""
        station_id = event.station_id
        station = self.stations.get(station_id)
        if station is None and self.touches.stored(station_id):
            return None
        if station is None:
            station = self.stations[station_id] = Station(station_id=station_id)
            self.session.add(station)
        return station

    def speaks(self, station: Station | None, event: Consumed) -> None:
        """The station sent ``event`` in its OCPP version: the station's version now."""
        version = event.ocpp_version
        if not version:
            return
        if station is None:
            self.touches.speaks(event.station_id, version)
        elif station.ocpp_version != version:
            station.ocpp_version = version

    def seen(self, station_id: str, at: datetime) -> None:
        """The station sent a message received ``at`` (written once, in ``finish``)."""
        if station_id not in self.stations:
            self.touches.seen(station_id, at)
            return
        before = self.last_seen.get(station_id)
        if before is None or before < at:
            self.last_seen[station_id] = at

    def record(
        self,
        envelope: Consumed,
        answer: CallAnswer | None,
        events: Sequence[tuple[Topic[Any], Event[Any] | EncodedEvent[Any]]],
    ) -> None:
        """An event applied now: its inbox row (with what it owes) joins the batch's.

        Each domain event is written as JSON once: the same bytes go into the outbox (an
        orjson fragment inside the row's JSON) and onto the bus."""
        completed = answer is None and not events
        gateway_id = envelope.data.gateway_id
        encoded: list[tuple[Topic[Any], EncodedEvent[Any]]] = [
            (topic, e if isinstance(e, EncodedEvent) else EncodedEvent(e.station_id, e.to_bytes()))
            for topic, e in events
        ]
        self.applied.append(
            {
                "event_id": envelope.id,
                "processed_at": self.now,
                "gateway_id": gateway_id,
                "answer": answer.model_dump(mode="json") if answer else None,
                "outbox": [
                    {"topic": t.name, "event": orjson.Fragment(e.value)} for t, e in encoded
                ],
                "completed": completed,
            }
        )
        self.applied_ids.add(envelope.id)
        if not completed:
            trace = current_trace_headers()
            records = [Outgoing(topic, event, trace) for topic, event in encoded]
            self.owed.append(Owed(envelope.id, gateway_id, answer, records))

    def owe_again(self, record: ProcessedEvent) -> bool:
        """A replayed event: send again what it did not deliver; whether a station waits."""
        if record.completed or any(owed.event_id == record.event_id for owed in self.owed):
            return False
        owed = Owed.stored(record)
        self.owed.append(owed)
        return owed.answer is not None

    async def finish(self) -> None:
        """Before the commit: the boots' registration statuses, then the coalesced
        last-seen times, the connectors' newest statuses, the new samples and the new
        inbox rows, all of them in one statement (``Writes``: one round trip)."""
        for station_id, at in self.last_seen.items():
            touch(self.stations[station_id], at)
        await record_registrations(self.session, self.registrations)
        writes = Writes()
        self.touches.add_to(writes, self.session)
        writes.add(self.statuses.part(self.session))
        writes.add(self.samples.part(self.session))
        writes.add(insert_part(self.session, ProcessedEvent, self.applied))
        await writes.run(self.session)


@dataclass(frozen=True, slots=True)
class BatchReads:
    """What a batch reads before its first event, in one statement (one round trip where
    there were four): which of its events the inbox has (a replay), the OCPP versions of
    its stored stations, and of the stations that sent a status report the ones with an
    active session and their connectors' statuses."""

    replayed: list[str]  # event ids the inbox has
    versions: dict[str, str | None]  # stored stations among those asked
    active: set[str]
    statuses: list[ReportedStatus]

    @classmethod
    async def read(
        cls,
        session: AsyncSession,
        event_ids: Collection[str],
        station_ids: Collection[str],
        reporting: Collection[str],
    ) -> "BatchReads":
        parameters = {
            name: list(values)
            for name, values in (
                ("inbox", event_ids),
                ("station", station_ids),
                ("reporting", reporting),
            )
            if values
        }
        reads = cls([], {}, set(), [])
        if not parameters:
            return reads
        query = _reads(_dialect(session), frozenset(parameters))
        # Core, on the transaction's connection: the batch has no ORM changes to flush yet.
        rows = await (await session.connection()).execute(query, parameters)
        for (
            kind,
            key,
            text,
            ocpp_status,
            error_code,
            evse_id,
            connector_id,
            at,
        ) in rows:
            if kind == "inbox":
                reads.replayed.append(key)
            elif kind == "station":
                reads.versions[key] = text
            elif kind == "active":
                reads.active.add(key)
            else:
                status = ConnectorState(text)
                reads.statuses.append(
                    ReportedStatus(key, evse_id, connector_id, status, ocpp_status, at, error_code)
                )
        return reads


_COLUMNS = ("text", "ocpp_status", "error_code", "evse_id", "connector_id", "at")


@functools.cache
def _reads(dialect: str, asked: frozenset[str]) -> Select[Any]:
    """The statement of ``BatchReads`` for the key sets asked (built once each: the keys
    are array parameters on PostgreSQL, expanding ones elsewhere). Every part has the same
    columns: (kind, key, text, ocpp_status, error_code, evse_id, connector_id, at)."""

    def among_keys(column: Any, name: str) -> Any:
        if dialect == "postgresql":
            keys = bindparam(name, type_=ARRAY(String))
            return column == any_(cast(keys, ARRAY(String)))
        return column.in_(bindparam(name, expanding=True))

    def part(kind: str, key: Any, *columns: Any) -> list[Any]:
        # A NULL is typed (PostgreSQL resolves a UNION's column types pair by pair: two
        # untyped NULLs make text, which an integer column then does not match).
        types: list[Any] = [String(), String(), String(), Integer(), Integer(), UtcDateTime()]
        typed = [type_coerce(value, kind_) for value, kind_ in zip(columns, types, strict=False)]
        nulls = [cast(null(), kind_) for kind_ in types[len(columns) :]]
        return [
            literal_column(f"'{kind}'", String).label("kind"),
            type_coerce(key, String).label("key"),
            *(value.label(name) for value, name in zip([*typed, *nulls], _COLUMNS, strict=True)),
        ]

    parts: list[Select[Any]] = []
    if "inbox" in asked:
        inbox = ProcessedEvent.__table__.c  # type: ignore[attr-defined]
        parts.append(
            sql_select(*part("inbox", inbox.event_id)).where(among_keys(inbox.event_id, "inbox"))
        )
    if "station" in asked:
        station = Station.__table__.c  # type: ignore[attr-defined]
        parts.append(
            sql_select(*part("station", station.station_id, station.ocpp_version)).where(
                among_keys(station.station_id, "station")
            )
        )
    if "reporting" in asked:
        charging = ChargingSession.__table__.c  # type: ignore[attr-defined]
        parts.append(
            sql_select(*part("active", charging.station_id))
            .where(
                among_keys(charging.station_id, "reporting"),
                charging.state == SessionState.ACTIVE.value,
            )
            .distinct()
        )
        connector = ConnectorStatus.__table__.c  # type: ignore[attr-defined]
        parts.append(
            sql_select(
                *part(
                    "status",
                    connector.station_id,
                    type_coerce(connector.status, String),
                    connector.ocpp_status,
                    connector.error_code,
                    connector.evse_id,
                    connector.connector_id,
                    connector.updated_at,
                )
            ).where(among_keys(connector.station_id, "reporting"))
        )
    if len(parts) == 1:
        return parts[0]
    return sql_select(union_all(*parts).subquery())


async def _processed(session: AsyncSession, event_ids: list[str]) -> dict[str, ProcessedEvent]:
    """The inbox rows of the events a batch replays (none, but after a crash)."""
    if not event_ids:
        return {}
    query = select(ProcessedEvent).where(among(session, col(ProcessedEvent.event_id), event_ids))
    return {record.event_id: record for record in await session.exec(query)}


async def _stations(session: AsyncSession, station_ids: set[str]) -> dict[str, Station]:
    if not station_ids:
        return {}
    query = select(Station).where(among(session, col(Station.station_id), station_ids))
    return {station.station_id: station for station in await session.exec(query)}


def _decode(delivery: Delivery) -> Consumed | Exception:
    try:
        event: Consumed = BY_NAME[delivery.topic].decode(delivery)
    except Exception as exc:  # noqa: BLE001 - raised when the record is applied (dead letter)
        return exc
    return event


async def _samples_of(session: AsyncSession, events: Sequence[Consumed]) -> PendingSamples:
    """The stored samples the batch's 2.x MeterValues will be compared with, read at once."""
    samples = PendingSamples()
    stamps = {
        (event.station_id, at)
        for event in events
        if isinstance(event, OcppCall | OcppSend)
        and event.data.action == "MeterValues"
        and _station_id_only(event)
        for at in _timestamps(event.data.payload)
    }
    await samples.read(session, stamps)
    return samples


def _transactions_of(events: Sequence[Consumed]) -> set[tuple[str, str]]:
    """The (station, transactionId) pairs whose sessions the batch's messages look up."""
    keys = set()
    for event in events:
        if isinstance(event, OcppCall | OcppSend) and event.data.action in _OF_A_TRANSACTION:
            transaction_id = _transaction_id(event.data.payload)
            if transaction_id is not None:
                keys.add((event.station_id, transaction_id))
    return keys


# The messages whose handlers look their session up by transactionId (service.find).
_OF_A_TRANSACTION = frozenset({"TransactionEvent", "StopTransaction", "MeterValues"})


def _transaction_id(payload: dict[str, Any]) -> str | None:
    """2.x transactionInfo.transactionId, or 1.6 transactionId (a number), as stored."""
    info = payload.get("transactionInfo")
    if isinstance(info, dict) and isinstance(info.get("transactionId"), str):
        return str(info["transactionId"])
    number = payload.get("transactionId")
    return str(number) if isinstance(number, int) else None


def _timestamps(payload: dict[str, Any]) -> list[datetime]:
    """The times of a MeterValues' readings (a malformed one fails when it is applied)."""
    try:
        return [parse_ocpp_time(meter_value["timestamp"]) for meter_value in payload["meterValue"]]
    except (KeyError, TypeError, ValueError):
        return []


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else ""


def _action(event: Consumed) -> str | None:
    return event.data.action if isinstance(event, OcppCall | OcppSend) else None


def _station_id_only(event: Consumed) -> bool:
    """Whether the event's handler reads no more of its station than the id."""
    if not isinstance(event, OcppCall | OcppSend):
        return False
    return (event.data.action, event.ocpp_version or "1.6") in STATION_ID_ONLY


def _outgoing(item: dict[str, Any], trace: dict[str, str]) -> Outgoing:
    topic = BY_NAME[item["topic"]]
    return Outgoing(topic, topic.parse_object(item["event"]), trace)
