"""What a handler of one consumed event gets: its transaction, the station and the event;
and the registries its handlers are registered in where they are defined (``calls``: the
station CALLs this service decides or handles; ``events``: the other events it consumes)."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.calls import CallHandlers
from csms_core.db import Prefetched
from csms_core.envelope import Envelope, Event
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
from csms_sessions.settings import SessionsSettings
from csms_sessions.stations.models import Station

if TYPE_CHECKING:
    from csms_sessions.transactions.active import ActiveSessions

SOURCE = "csms/sessions"
PARTY = "sessions"
D = TypeVar("D", bound=EventData)
M = TypeVar("M", bound=SQLModel)
Consumed = OcppCall | OcppSend | ConnectionOpened | ConnectionClosed


@dataclass
class EventContext:
    session: AsyncSession
    settings: SessionsSettings
    # The event handled; an ``Envelope`` for a cause of the CSMS's own (no record: a
    # session resolution), whose ``time`` counts as received at.
    envelope: Consumed | Envelope
    station: Station
    # Domain events to publish once the transaction has committed: (topic, event).
    events: list[tuple[Topic[Any], Event[Any]]] = field(default_factory=list)
    # Of a batch (csms_sessions.batch): which stations may have an active session, and
    # the rows it read in bulk.
    active_sessions: "ActiveSessions | None" = None
    rows: Prefetched | None = None

    async def get(self, model: type[M], key: tuple[Any, ...]) -> M | None:
        """A row by primary key, as ``session.get`` finds it (from the batch's rows if it
        read that table in bulk)."""
        if self.rows is not None:
            return await self.rows.get(model, key)
        return await self.session.get(model, key)

    def may_have_active_sessions(self) -> bool:
        """False only if the station certainly has no active session (a query may be skipped)."""
        return self.active_sessions is None or self.active_sessions.may_have(
            self.station.station_id
        )

    @property
    def version(self) -> OcppVersion:
        """The OCPP version the event was received in (1.6 if the event does not say)."""
        return OcppVersion.from_number(
            self.envelope.ocpp_version or self.station.ocpp_version or "1.6"
        )

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
                # Derived from the cause, so a re-published event keeps its id.
                "id": f"{self.envelope.id}.{len(self.events)}",
                "source": SOURCE,
                "station_id": self.station.station_id,
                "ocpp_version": self.envelope.ocpp_version,
                "data": data,
            }
        )
        self.events.append((topic_of(kind), event))


calls = CallHandlers[EventContext](PARTY)
events = EventHandlers[EventContext]()
