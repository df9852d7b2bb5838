"""What a handler of one consumed event gets: its transaction, the station and the event;
and the registries its handlers are registered in where they are defined (``calls``: the
station CALLs this service decides or handles; ``events``: the other events it consumes)."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.calls import CallHandlers
from csms_core.envelope import EncodedEvent, Envelope, Event
from csms_core.events import (
    ConnectionClosed,
    ConnectionOpened,
    EventData,
    InboundCall,
    OcppCall,
    OcppSend,
    Topic,
    topic_of,
)
from csms_core.handlers import EventHandlers
from csms_ocpp import OcppVersion
from csms_ocpp.messages import Message
from csms_sessions.settings import SessionsSettings
from csms_sessions.stations.models import Station

if TYPE_CHECKING:
    from csms_sessions.metering.bulk import PendingSamples
    from csms_sessions.stations.bulk import ConnectorStatuses
    from csms_sessions.transactions.active import ActiveSessions
    from csms_sessions.transactions.known import KnownSessions

SOURCE = "csms/sessions"
PARTY = "sessions"
D = TypeVar("D", bound=EventData)
E = TypeVar("E", bound=Event[Any])
Consumed = OcppCall | OcppSend | ConnectionOpened | ConnectionClosed


@dataclass
class EventContext:
    session: AsyncSession
    settings: SessionsSettings
    # The event handled; an ``Envelope`` for a cause of the CSMS's own (no record: a
    # session resolution), whose ``time`` counts as received at.
    envelope: Consumed | Envelope
    # The station's row; None for an event whose handler reads only the station's id (a
    # batch's status reports and heartbeats: csms_sessions.batch), so none is loaded.
    station_row: Station | None
    # Domain events to publish once the transaction has committed: (topic, event), the
    # event as a model or as the bytes its handler wrote (``publish_encoded``).
    events: list[tuple[Topic[Any], Event[Any] | EncodedEvent[Any]]] = field(default_factory=list)
    # Of a batch (csms_sessions.batch): which stations may have an active session, and
    # the connectors' statuses and meter samples it reads and writes in bulk.
    active_sessions: "ActiveSessions | None" = None
    statuses: "ConnectorStatuses | None" = None
    samples: "PendingSamples | None" = None
    # Of a batch: the RegistrationStatus each station's boot got, written for all of them
    # before the commit (``record_registrations``); None: written at once.
    registrations: dict[str, str] | None = None
    known: "KnownSessions | None" = None  # the sessions of its transaction messages

    @property
    def station_id(self) -> str:
        return self.envelope.station_id

    @property
    def station(self) -> Station:
        """The station's row (a handler that reads more than its id is given one)."""
        if self.station_row is None:
            raise RuntimeError(f"{self.envelope.id}: handled without its station's row")
        return self.station_row

    def may_have_active_sessions(self) -> bool:
        """False only if the station certainly has no active session (a query may be skipped)."""
        return self.active_sessions is None or self.active_sessions.may_have(self.station_id)

    @property
    def version(self) -> OcppVersion:
        """The OCPP version the event was received in (1.6 if the event does not say)."""
        stored = self.station_row.ocpp_version if self.station_row is not None else None
        return OcppVersion.from_number(self.envelope.ocpp_version or stored or "1.6")

    @property
    def call(self) -> InboundCall | None:
        """The station CALL, when the event is one."""
        data = self.envelope.data
        return data if isinstance(data, InboundCall) else None

    @property
    def payload(self) -> dict[str, Any]:
        """The OCPP payload of an ``ocpp.call`` event (already schema-validated)."""
        return self.call.payload if self.call is not None else {}

    @property
    def received_at(self) -> datetime:
        return self.call.received_at if self.call is not None else self.envelope.time

    def publish(self, kind: type[Event[D]], data: D) -> None:
        """Queue a version-neutral domain event about this station (on its model's topic)."""
        event = kind.model_validate(
            {
                "id": self.next_event_id(),
                "source": SOURCE,
                "station_id": self.station_id,
                "ocpp_version": self.envelope.ocpp_version,
                "data": data,
            }
        )
        self.events.append((topic_of(kind), event))

    def next_event_id(self) -> str:
        """The id of the next domain event published: derived from the cause, so a
        re-published event keeps its id."""
        return f"{self.envelope.id}.{len(self.events)}"

    def publish_encoded(self, kind: type[E], event: EncodedEvent[E]) -> None:
        """Queue a domain event its handler wrote as record bytes (with ``next_event_id``)."""
        self.events.append((topic_of(kind), event))


calls = CallHandlers[EventContext](PARTY)
events = EventHandlers[EventContext]()

# The station CALLs, as (action, version), whose handlers read only the station's id,
# never its row: a batch loads no ORM row for a station that sent only these (by far the
# most of a network's messages), see ``csms_sessions.batch``.
STATION_ID_ONLY: set[tuple[str, str]] = set()


def reads_station_id_only(*messages: Message[Any, Any]) -> None:
    """Declare, where their handlers are defined, that these handlers read ``ctx.station_id``
    only (``ctx.station`` raises for them in a batch)."""
    STATION_ID_ONLY.update((m.action, version) for m in messages for version in m.versions)
