"""Consumption of ``csms.sessions``, ``csms.meter-values``, ``ocpp.inbound``, ``ocpp.connections``
and ``csms.site-load``: decode, dispatch to the handler registered for it, allocate.

The handlers live with their domain (``charging.handlers``, ``charging.external``,
``topology.site_load``) and register themselves in ``context.calls`` / ``context.events``.
It runs on the batched consumer (``csms_core.bus.batching``): a poll's records of a
partition in one transaction, one after the other in one session (a record reads what
the ones before it wrote); the batch's processed event ids and its stations' site
assignments are read in one statement each. Each event's effects commit together with
its id (``ProcessedEvent``), so a replay changes nothing. Other calls, and session,
meter and connection events of stations on no site, are skipped without a write: smart
charging has nothing to do for them (a station assigned mid-session is balanced from
its next session on). The answer to a CALL we decide (NotifyEVChargingNeeds,
NotifyEVChargingSchedule) is derived from the event alone, so it is sent again on a
replay: the gateway drops an answer no connection waits for any more. Answers leave
after the commit, all of a batch's in one round trip, and then the allocator hears
what changed. A record that is no event of its topic, and a site-load event that is
invalid (a bad field, an unknown site), go to ``csms.dead-letter`` with the reason.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

# The handlers register themselves where they are defined.
import csms_smartcharging.charging.external
import csms_smartcharging.charging.handlers
import csms_smartcharging.topology.site_load  # noqa: F401
from csms_core.bus import Delivery
from csms_core.db import among
from csms_core.envelope import Event
from csms_core.events import OcppCall, OcppSend, SiteLoadMeasured
from csms_core.router import CallAnswer, CommandClient
from csms_core.topics import (
    BY_NAME,
    METER_VALUES,
    OCPP_CONNECTIONS,
    OCPP_INBOUND,
    SESSIONS,
    SITE_LOAD,
)
from csms_smartcharging.charging.allocator import Allocator
from csms_smartcharging.charging.models import ProcessedEvent
from csms_smartcharging.charging.store import site_of_station
from csms_smartcharging.context import ChargingContext, calls, events
from csms_smartcharging.settings import SmartChargingSettings
from csms_smartcharging.topology.models import StationAssignment

logger = logging.getLogger(__name__)

TOPICS = (SESSIONS, METER_VALUES, OCPP_INBOUND, OCPP_CONNECTIONS, SITE_LOAD)


@dataclass
class ChargingBatch:
    """One transaction's records: its session, each record's event, the events done
    already (stored before or applied earlier in this one), the batch's stations' sites,
    and what the commit lets out (answers, then the allocator's news)."""

    session: AsyncSession
    decoded: dict[int, Event[Any] | Exception]
    done: set[str]
    sites: dict[str, str | None]  # station → its site (None: on no site)
    answers: list[tuple[CallAnswer, str]] = field(default_factory=list)
    news: list[Callable[[Allocator], None]] = field(default_factory=list)

    def event(self, delivery: Delivery) -> Event[Any]:
        event = self.decoded.get(id(delivery))
        if event is None:  # not one of the records the batch began with
            event = self.decoded[id(delivery)] = _decode(delivery)
        if isinstance(event, Exception):
            raise event
        return event

    async def site_of(self, station_id: str) -> str | None:
        if station_id not in self.sites:
            self.sites[station_id] = await site_of_station(self.session, station_id)
        return self.sites[station_id]


class SmartChargingConsumer:
    """The smart charging service's handler on the batched consumer (a ``BatchHandler``)."""

    def __init__(
        self,
        settings: SmartChargingSettings,
        commands: CommandClient,
        allocator: Allocator,
    ) -> None:
        self._settings = settings
        self._commands = commands
        self._allocator = allocator

    async def begin(self, session: AsyncSession, deliveries: Sequence[Delivery]) -> ChargingBatch:
        """The batch's events decoded; their processed ids and stations' sites loaded."""
        decoded = {id(delivery): _decode(delivery) for delivery in deliveries}
        events = [event for event in decoded.values() if not isinstance(event, Exception)]
        ids = [event.id for event in events]
        stations = {event.station_id for event in events}
        done = await session.exec(
            select(ProcessedEvent.event_id).where(among(session, col(ProcessedEvent.event_id), ids))
        )
        assigned = await session.exec(
            select(StationAssignment.station_id, StationAssignment.site_id).where(
                among(session, col(StationAssignment.station_id), stations)
            )
        )
        sites: dict[str, str | None] = dict.fromkeys(stations)
        sites.update(assigned.all())
        return ChargingBatch(session, decoded, set(done), sites)

    async def apply(self, batch: ChargingBatch, delivery: Delivery) -> bool:
        """One record's effects; True if a station waits for the answer it owes."""
        # A record that is no event of its topic: InvalidEvent, dead-lettered with the reason.
        event = batch.event(delivery)
        if not await self._relevant(batch, event):
            return False
        ctx = ChargingContext(batch.session, self._settings, event)
        answer: CallAnswer | None = None
        if event.id not in batch.done:
            answer = await self._apply(event, ctx)
            batch.session.add(ProcessedEvent(event_id=event.id))
            batch.done.add(event.id)
        elif _decided_here(event):  # a replay: the same answer again (idempotent effects)
            answer = await self._apply(event, ctx)
        if answer is not None and isinstance(event, OcppCall):
            batch.answers.append((answer, event.data.gateway_id))
        await self._news(batch, ctx)
        return answer is not None

    async def finish(self, batch: ChargingBatch) -> None:
        """Nothing coalesced: every record wrote its own rows."""

    async def deliver(self, batch: ChargingBatch) -> None:
        """After the commit: the answers (stations wait), then the allocator's news."""
        await self._commands.answer_many(batch.answers)
        for news in batch.news:
            news(self._allocator)

    async def _news(self, batch: ChargingBatch, ctx: ChargingContext) -> None:
        """What the allocator hears of the event once it committed."""
        station_id = ctx.station_id
        site_id = ctx.site_id or await batch.site_of(station_id)
        if site_id is None:
            return
        if (connected := ctx.connected) is not None:
            batch.news.append(lambda a: a.station_connected(station_id, connected, site_id))
        elif (reason := ctx.dirty) is not None:
            if ctx.site_id is not None:  # the site's own figures changed
                batch.news.append(lambda a: a.topology_changed(site_id))
            batch.news.append(lambda a: a.mark_dirty(site_id, reason))

    async def _relevant(self, batch: ChargingBatch, event: Event[Any]) -> bool:
        """Calls we handle always; session and connection events only of stations on a site."""
        if isinstance(event, SiteLoadMeasured):
            return True
        if isinstance(event, OcppCall | OcppSend):
            payload = event.data.payload
            if event.data.action == "TransactionEvent" and payload.get("eventType") != "Started":
                return False  # the many Updated/Ended ones come as sessions events
            return calls.handler(event.data.action, event.ocpp_version) is not None
        if not events.handles(event):
            return False
        return await batch.site_of(event.station_id) is not None

    async def _apply(self, event: Event[Any], ctx: ChargingContext) -> CallAnswer | None:
        """The event's effects; the answer owed to the station, if any."""
        if isinstance(event, OcppCall | OcppSend):
            return await calls.run(ctx, event)
        await events.dispatch(event, ctx)
        return None


def _decode(delivery: Delivery) -> Event[Any] | Exception:
    try:
        event: Event[Any] = BY_NAME[delivery.topic].decode(delivery)
    except Exception as exc:  # noqa: BLE001 - raised when the record is applied (dead letter)
        return exc
    return event


def _decided_here(event: Event[Any]) -> bool:
    return isinstance(event, OcppCall) and event.data.owner == calls.party
