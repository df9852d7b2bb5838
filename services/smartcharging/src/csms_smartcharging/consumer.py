"""Consumption of ``csms.sessions``, ``csms.meter-values``, ``ocpp.inbound``, ``ocpp.connections``
and ``csms.site-load``.

Each event's effects commit together with its id (``ProcessedEvent``), so a
replay changes nothing. Other calls, and session, meter and connection events of
stations on no site, are skipped without a write: smart charging has nothing to do
for them (a station assigned mid-session is balanced from its next session on).
The answer to a CALL we own (NotifyEVChargingNeeds, NotifyEVChargingSchedule) is
derived from the event alone, so it is sent again on a replay: the gateway drops
an answer no connection waits for any more. A site-load event that is invalid (a
bad field, an unknown site) goes to ``csms.dead-letter`` with the reason.
"""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.bus import Delivery, Unprocessable
from csms_core.db import session_factory, transaction
from csms_core.router import CallAnswer, CommandClient
from csms_core.topics import METER_VALUES, OCPP_CONNECTIONS, OCPP_INBOUND, SESSIONS, SITE_LOAD
from csms_ocpp import OcppVersion, schemas
from csms_ocpp.actions import Owner
from csms_smartcharging.charging.allocator import Allocator
from csms_smartcharging.charging.models import (
    ChargingSession,
    EvseLimit,
    ProcessedEvent,
    ProfileReport,
    StationLimit,
)
from csms_smartcharging.charging.store import site_of_station, store_site_load
from csms_smartcharging.db import parse_time, utc_now
from csms_smartcharging.profiles.wire import reported_limit_a
from csms_smartcharging.settings import SmartChargingSettings
from csms_smartcharging.topology.models import EvseRating, Site, StationAssignment

logger = logging.getLogger(__name__)

TOPICS = (SESSIONS, METER_VALUES, OCPP_INBOUND, OCPP_CONNECTIONS, SITE_LOAD)
SITE_LOAD_MEASURED = "site.load.measured"
EXTERNAL_CONSTRAINTS = "ChargingStationExternalConstraints"


@dataclass
class Event:
    """One consumed event in its transaction; ``dirty`` names the reason to re-allocate."""

    session: AsyncSession
    settings: SmartChargingSettings
    delivery: Delivery
    dirty: str | None = None
    connected: str | None = None  # OCPP version of a station that just connected
    site_id: str | None = None  # the site, when the event names it (not its station)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def station_id(self) -> str:
        return self.delivery.envelope.station_id


Handler = Callable[[Event], Awaitable[None]]


async def on_session_started(event: Event) -> None:
    data = event.data
    evse_id = int(data.get("evse_id") or 1)
    provisional = await event.session.get(
        ChargingSession, provisional_id(event.station_id, evse_id)
    )
    if provisional is not None:  # the transaction we saw starting: the session replaces it
        await event.session.delete(provisional)
    if await event.session.get(ChargingSession, data["session_id"]) is not None:
        return
    event.session.add(
        ChargingSession(
            session_id=data["session_id"],
            station_id=event.station_id,
            evse_id=evse_id,
            transaction_id=_text(data.get("transaction_id")),
            ocpp_version=event.delivery.envelope.ocpp_version,
            started_at=parse_time(data["started_at"]) if data.get("started_at") else utc_now(),
        )
    )
    event.dirty = "session_started"


async def on_session_updated(event: Event) -> None:
    data = event.data
    charging = await event.session.get(ChargingSession, data["session_id"])
    if charging is None:
        return
    charging.updated_at = _time(data.get("updated_at"))
    charging.energy_wh = float(data.get("energy_wh") or charging.energy_wh)
    charging.power_w = _number(data.get("power_w"))
    current = _number(data.get("current_a"))
    if current is None and charging.power_w is not None:
        phases = await _evse_phases(event.session, charging)
        current = charging.power_w / (event.settings.voltage_v * phases)
    await _measured(event, charging, current)


def provisional_id(station_id: str, evse_id: int) -> str:
    return f"p:{station_id}:{evse_id}"


async def on_transaction_starting(event: Event) -> None:
    """1.6 StartTransaction / 2.x TransactionEvent(Started), straight from ``ocpp.inbound``:
    the EV may draw its EVSE's maximum before the sessions service's ``session.started``
    reaches us, so it counts at that maximum at once (the others make room for it)."""
    payload = event.data["payload"]
    if "connectorId" in payload:  # 1.6: the connector is the EVSE
        evse_id = payload["connectorId"]
    elif payload.get("eventType") == "Started" and isinstance(payload.get("evse"), dict):
        evse_id = payload["evse"]["id"]
    else:
        return
    if await event.session.get(StationAssignment, event.station_id) is None:
        return  # on no site
    running = await event.session.exec(
        select(ChargingSession).where(
            ChargingSession.station_id == event.station_id, ChargingSession.evse_id == evse_id
        )
    )
    if running.first() is not None:  # its session (or an earlier sign of it) is here already
        return
    event.session.add(
        ChargingSession(
            session_id=provisional_id(event.station_id, evse_id),
            station_id=event.station_id,
            evse_id=evse_id,
            ocpp_version=event.delivery.envelope.ocpp_version,
            provisional=True,
        )
    )
    event.dirty = "session_starting"


async def on_session_ended(event: Event) -> None:
    data = event.data
    charging = await event.session.get(ChargingSession, data["session_id"])
    if charging is None:
        return
    await event.session.delete(charging)
    # A TxProfile ends with its transaction (1.6 §3.13.4, K01.FR.29).
    await event.session.exec(
        delete(EvseLimit).where(
            col(EvseLimit.station_id) == charging.station_id,
            col(EvseLimit.evse_id) == charging.evse_id,
        )
    )
    event.dirty = "session_ended"


async def on_meter_values(event: Event) -> None:
    data = event.data
    query = select(ChargingSession).where(ChargingSession.station_id == event.station_id)
    if data.get("session_id"):
        query = query.where(ChargingSession.session_id == data["session_id"])
    elif data.get("evse_id") is not None:
        query = query.where(ChargingSession.evse_id == int(data["evse_id"]))
    charging = (await event.session.exec(query)).first()
    if charging is None:
        return
    samples = data.get("samples") or []
    currents = [_number(s.get("value")) for s in samples if s.get("measurand") == "Current.Import"]
    powers = [
        _number(s.get("value")) for s in samples if s.get("measurand") == "Power.Active.Import"
    ]
    current = max((c for c in currents if c is not None), default=None)
    if current is None and powers and powers[-1] is not None:
        charging.power_w = powers[-1]
        current = powers[-1] / (
            event.settings.voltage_v * await _evse_phases(event.session, charging)
        )
    await _measured(event, charging, current)


async def _measured(event: Event, charging: ChargingSession, current: float | None) -> None:
    """Track underuse: drawing clearly less than the limit the station accepted."""
    if current is None:
        return
    charging.current_a = current
    limit = await event.session.get(EvseLimit, (charging.station_id, charging.evse_id))
    if limit is None or not limit.accepted or limit.session_id != charging.session_id:
        return
    if current < limit.limit_a - event.settings.underuse_margin_a:
        charging.underuse_since = charging.underuse_since or utc_now()
    elif charging.underuse_since is not None:
        charging.underuse_since = None  # it ramps back: give it its share again
        event.dirty = "ramp_up"
    event.session.add(charging)


async def on_ev_charging_needs(event: Event) -> dict[str, Any]:
    """2.x NotifyEVChargingNeeds: the EV's current range, energy need and departure (K15-K17)."""
    payload = event.data["payload"]
    charging = (
        await event.session.exec(
            select(ChargingSession).where(
                ChargingSession.station_id == event.station_id,
                ChargingSession.evse_id == payload["evseId"],
            )
        )
    ).first()
    if charging is None:
        return {"status": "Rejected"}  # no session of ours to schedule on that EVSE
    needs = payload["chargingNeeds"]
    ac = needs.get("acChargingParameters") or {}
    charging.ev_min_a = _number(ac.get("evMinCurrent"))
    charging.ev_max_a = _number(ac.get("evMaxCurrent"))
    charging.energy_needed_wh = _number(ac.get("energyAmount"))
    dc = needs.get("dcChargingParameters") or {}
    if charging.energy_needed_wh is None:
        charging.energy_needed_wh = _number(dc.get("energyAmount"))
    if needs.get("departureTime"):
        charging.departure_at = parse_time(needs["departureTime"])
    event.session.add(charging)
    event.dirty = "ev_charging_needs"
    return {"status": "Accepted"}


async def on_ev_charging_schedule(event: Event) -> dict[str, Any]:
    """2.x NotifyEVChargingSchedule: the EV's own plan within our limit; noted, accepted."""
    return {"status": "Accepted"}


async def on_notify_charging_limit(event: Event) -> None:
    """2.x NotifyChargingLimit: an external limit on the station (K12)."""
    payload = event.data["payload"]
    limit = payload["chargingLimit"]
    station_limit = StationLimit(
        station_id=event.station_id,
        evse_id=int(payload.get("evseId", 0)),
        source=limit["chargingLimitSource"],
        limit_a=reported_limit_a(
            payload.get("chargingSchedule") or [], voltage_v=event.settings.voltage_v, phases=3
        ),
        grid_critical=bool(limit.get("isGridCritical", False)),
    )
    await event.session.merge(station_limit)
    event.dirty = "station_limit"


async def on_cleared_charging_limit(event: Event) -> None:
    """2.x ClearedChargingLimit: the external limit is gone (K13)."""
    payload = event.data["payload"]
    query = delete(StationLimit).where(
        col(StationLimit.station_id) == event.station_id,
        col(StationLimit.source) == payload["chargingLimitSource"],
    )
    if "evseId" in payload:
        query = query.where(col(StationLimit.evse_id) == payload["evseId"])
    await event.session.exec(query)
    event.dirty = "station_limit_cleared"


async def on_report_charging_profiles(event: Event) -> None:
    """2.x ReportChargingProfiles: recorded; a ChargingStationExternalConstraints profile in it
    (set on the station by an external system, never by us: K01.FR.22) caps that EVSE like a
    NotifyChargingLimit until its ClearedChargingLimit."""
    payload = event.data["payload"]
    event.session.add(
        ProfileReport(
            station_id=event.station_id,
            evse_id=payload["evseId"],
            request_id=payload["requestId"],
            source=payload["chargingLimitSource"],
            profiles=payload["chargingProfile"],
        )
    )
    external = [
        profile
        for profile in payload["chargingProfile"]
        if profile.get("chargingProfilePurpose") == EXTERNAL_CONSTRAINTS
    ]
    limits = [
        limit_a
        for profile in external
        if (
            limit_a := reported_limit_a(
                profile.get("chargingSchedule") or [], voltage_v=event.settings.voltage_v, phases=3
            )
        )
        is not None
    ]
    if limits:
        await event.session.merge(
            StationLimit(
                station_id=event.station_id,
                evse_id=int(payload["evseId"]),
                source=payload["chargingLimitSource"],
                limit_a=min(limits),
                grid_critical=False,
            )
        )
        event.dirty = "station_limit"


async def on_connection_opened(event: Event) -> None:
    """A (re)connected station gets its failsafe and its sessions' profiles again."""
    limits = await event.session.exec(
        select(EvseLimit).where(EvseLimit.station_id == event.station_id)
    )
    for limit in limits:
        limit.accepted, limit.outcome = False, "reconnected"
        event.session.add(limit)
    event.connected = event.delivery.envelope.ocpp_version or "1.6"
    event.dirty = "reconnected"


async def on_site_load(event: Event) -> None:
    """``csms.site-load``: a measurement of a site's non-EV load, as on ``PUT .../load``
    (a bad one is refused by its model: ``InvalidEvent``, dead-lettered with the reason)."""
    measured = SITE_LOAD.decode(event.delivery).data
    site = await event.session.get(Site, measured.site_id)
    if site is None:
        raise Unprocessable(f"no site {measured.site_id}")
    await store_site_load(event.session, site, measured)
    event.site_id, event.dirty = measured.site_id, "site_load"


SESSION_HANDLERS: dict[str, Handler] = {
    "session.started": on_session_started,
    "session.updated": on_session_updated,
    "session.ended": on_session_ended,
    "meter.values": on_meter_values,
    "ocpp.connection.opened": on_connection_opened,
}
CALL_HANDLERS: dict[str, Handler] = {
    "StartTransaction": on_transaction_starting,
    "TransactionEvent": on_transaction_starting,
    "NotifyChargingLimit": on_notify_charging_limit,
    "ClearedChargingLimit": on_cleared_charging_limit,
    "ReportChargingProfiles": on_report_charging_profiles,
}
ANSWERED_CALLS: dict[str, Callable[[Event], Awaitable[dict[str, Any]]]] = {
    "NotifyEVChargingNeeds": on_ev_charging_needs,
    "NotifyEVChargingSchedule": on_ev_charging_schedule,
}


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
        envelope = delivery.envelope
        if not await self._relevant(delivery):
            return
        answer: dict[str, Any] | None = None
        async with transaction(self._factory) as session:
            event = Event(session, self._settings, delivery, data=envelope.data)
            if await session.get(ProcessedEvent, envelope.id) is None:
                answer = await self._apply(event)
                session.add(ProcessedEvent(event_id=envelope.id))
            elif _owned(delivery):  # a replay: the same answer again (its effects are idempotent)
                answer = await ANSWERED_CALLS[envelope.data["action"]](event)
            site_id = event.site_id or await site_of_station(session, envelope.station_id)
        if answer is not None:
            await self._answer(delivery, answer)
        if site_id is not None and event.connected is not None:
            self._allocator.station_connected(envelope.station_id, event.connected, site_id)
        elif site_id is not None and event.dirty is not None:
            if event.site_id is not None:  # the site's own figures changed
                self._allocator.topology_changed(site_id)
            self._allocator.mark_dirty(site_id, event.dirty)

    async def _relevant(self, delivery: Delivery) -> bool:
        """Calls we handle always; session and connection events only of stations on a site."""
        envelope = delivery.envelope
        if delivery.topic == SITE_LOAD:
            return envelope.type == SITE_LOAD_MEASURED
        if delivery.topic == OCPP_INBOUND:
            action, payload = envelope.data.get("action"), envelope.data.get("payload") or {}
            if action == "TransactionEvent" and payload.get("eventType") != "Started":
                return False  # the many Updated/Ended ones come as sessions events
            return _owned(delivery) or action in CALL_HANDLERS
        if envelope.type not in SESSION_HANDLERS:
            return False
        async with self._factory() as session:
            return await site_of_station(session, envelope.station_id) is not None

    async def _apply(self, event: Event) -> dict[str, Any] | None:
        envelope = event.delivery.envelope
        if event.delivery.topic == SITE_LOAD:
            await on_site_load(event)
            return None
        if event.delivery.topic != OCPP_INBOUND:
            handler = SESSION_HANDLERS.get(envelope.type)
            if handler is not None:
                await handler(event)
            return None
        action = envelope.data.get("action", "")
        if _owned(event.delivery):
            return await ANSWERED_CALLS[action](event)
        if (call_handler := CALL_HANDLERS.get(action)) is not None:
            await call_handler(event)
        return None

    async def _answer(self, delivery: Delivery, payload: dict[str, Any]) -> None:
        data, envelope = delivery.envelope.data, delivery.envelope
        version = OcppVersion.from_number(envelope.ocpp_version or "2.0.1")
        violation = schemas.validate(version, data["action"], payload, response=True)
        if violation is not None:  # our bug: the gateway would refuse it anyway
            logger.error("own %s answer breaks its schema: %s", data["action"], violation)
            return
        answer = CallAnswer(
            station_id=envelope.station_id,
            connection_id=data["connection_id"],
            message_id=data["message_id"],
            payload=payload,
        )
        await self._commands.answer(answer, data["gateway_id"])


def _owned(delivery: Delivery) -> bool:
    data = delivery.envelope.data
    return (
        delivery.topic == OCPP_INBOUND
        and delivery.envelope.type == "ocpp.call"
        and data.get("owner") == Owner.SMARTCHARGING
        and data.get("action") in ANSWERED_CALLS
    )


async def _evse_phases(session: AsyncSession, charging: ChargingSession) -> int:
    rating = await session.get(EvseRating, (charging.station_id, charging.evse_id))
    return rating.phases if rating is not None else 3


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _time(value: Any) -> Any:
    return parse_time(value) if isinstance(value, str) else utc_now()
