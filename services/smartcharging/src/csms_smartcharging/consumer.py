"""Consumption of ``csms.sessions``, ``csms.meter-values``, ``ocpp.inbound``, ``ocpp.connections``
and ``csms.site-load``: decode, dispatch to the handler registered for it, allocate.

The handlers live with their domain (``charging.handlers``, ``charging.external``,
``topology.site_load``) and register themselves in ``context.calls`` / ``context.events``.
Each event's effects commit together with its id (``ProcessedEvent``), so a
replay changes nothing. Other calls, and session, meter and connection events of
stations on no site, are skipped without a write: smart charging has nothing to do
for them (a station assigned mid-session is balanced from its next session on).
The answer to a CALL we decide (NotifyEVChargingNeeds, NotifyEVChargingSchedule) is
derived from the event alone, so it is sent again on a replay: the gateway drops
an answer no connection waits for any more. A record that is no event of its topic,
and a site-load event that is invalid (a bad field, an unknown site), go to
``csms.dead-letter`` with the reason.
"""

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

# The handlers register themselves where they are defined.
import csms_smartcharging.charging.external
import csms_smartcharging.charging.handlers
import csms_smartcharging.topology.site_load  # noqa: F401
from csms_core.bus import Delivery
from csms_core.db import session_factory, transaction
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

logger = logging.getLogger(__name__)

TOPICS = (SESSIONS, METER_VALUES, OCPP_INBOUND, OCPP_CONNECTIONS, SITE_LOAD)


class SmartChargingConsumer:
    """The ``run_consumer`` handler of the smart charging service."""

    def __init__(
        self,
        settings: SmartChargingSettings,
        commands: CommandClient,
        engine: AsyncEngine,
        allocator: Allocator,
    ) -> None:
        self._settings = settings
        self._commands = commands
        self._factory = session_factory(engine)
        self._allocator = allocator

    async def __call__(self, delivery: Delivery) -> None:
        # A record that is no event of its topic: InvalidEvent, dead-lettered with the reason.
        event: Event[Any] = BY_NAME[delivery.topic].decode(delivery)
        if not await self._relevant(event):
            return
        answer: CallAnswer | None = None
        async with transaction(self._factory) as session:
            ctx = ChargingContext(session, self._settings, event)
            if await session.get(ProcessedEvent, event.id) is None:
                answer = await self._apply(event, ctx)
                session.add(ProcessedEvent(event_id=event.id))
            elif _decided_here(event):  # a replay: the same answer again (idempotent effects)
                answer = await self._apply(event, ctx)
            site_id = ctx.site_id or await site_of_station(session, event.station_id)
        if answer is not None and isinstance(event, OcppCall):
            await self._commands.answer(answer, event.data.gateway_id)
        if site_id is not None and ctx.connected is not None:
            self._allocator.station_connected(event.station_id, ctx.connected, site_id)
        elif site_id is not None and ctx.dirty is not None:
            if ctx.site_id is not None:  # the site's own figures changed
                self._allocator.topology_changed(site_id)
            self._allocator.mark_dirty(site_id, ctx.dirty)

    async def _relevant(self, event: Event[Any]) -> bool:
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
        async with self._factory() as session:
            return await site_of_station(session, event.station_id) is not None

    async def _apply(self, event: Event[Any], ctx: ChargingContext) -> CallAnswer | None:
        """The event's effects; the answer owed to the station, if any."""
        if isinstance(event, OcppCall | OcppSend):
            return await calls.run(ctx, event)
        await events.dispatch(event, ctx)
        return None


def _decided_here(event: Event[Any]) -> bool:
    return isinstance(event, OcppCall) and event.data.owner == calls.party
