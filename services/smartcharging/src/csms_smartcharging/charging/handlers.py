"""The events that tell smart charging a session's demand: sessions starting, drawing and
ending (``csms.sessions``, ``csms.meter-values``, a transaction seen starting on
``ocpp.inbound``), an EV's own needs (NotifyEVChargingNeeds/Schedule, decided here) and a
station reconnecting."""

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.db import parse_ocpp_time, utc_now
from csms_core.events import (
    ConnectionOpened,
    MeterValues,
    SessionEnded,
    SessionStarted,
    SessionUpdated,
)
from csms_ocpp.messages import (
    NOTIFY_EV_CHARGING_NEEDS,
    NOTIFY_EV_CHARGING_SCHEDULE,
    START_TRANSACTION_16,
    TRANSACTION_EVENT,
    GenericStatusResponse,
    NotifyEVChargingNeedsRequest,
    NotifyEVChargingNeedsResponse,
    NotifyEVChargingScheduleRequest,
    StartTransactionRequest16,
    TransactionEventRequest,
)
from csms_smartcharging.charging.models import ChargingSession, EvseLimit
from csms_smartcharging.context import ChargingContext, calls, events, number
from csms_smartcharging.topology.models import EvseRating, StationAssignment


def provisional_id(station_id: str, evse_id: int) -> str:
    return f"p:{station_id}:{evse_id}"


@events.on(SessionStarted)
async def on_session_started(event: SessionStarted, ctx: ChargingContext) -> None:
    data = event.data
    evse_id = int(data.evse_id or 1)
    provisional = await ctx.session.get(ChargingSession, provisional_id(event.station_id, evse_id))
    if provisional is not None:  # the transaction we saw starting: the session replaces it
        await ctx.session.delete(provisional)
    if await ctx.session.get(ChargingSession, data.session_id) is not None:
        return
    ctx.session.add(
        ChargingSession(
            session_id=data.session_id,
            station_id=event.station_id,
            evse_id=evse_id,
            transaction_id=data.transaction_id,
            ocpp_version=event.ocpp_version,
            started_at=data.started_at,
        )
    )
    ctx.dirty = "session_started"


@events.on(SessionUpdated)
async def on_session_updated(event: SessionUpdated, ctx: ChargingContext) -> None:
    data = event.data
    charging = await ctx.session.get(ChargingSession, data.session_id)
    if charging is None:
        return
    charging.updated_at = data.updated_at
    charging.energy_wh = float(data.energy_wh or charging.energy_wh)
    charging.power_w = data.power_w
    current = data.current_a
    if current is None and charging.power_w is not None:
        phases = await _evse_phases(ctx.session, charging)
        current = charging.power_w / (ctx.settings.voltage_v * phases)
    await _measured(ctx, charging, current)


@events.on(SessionEnded)
async def on_session_ended(event: SessionEnded, ctx: ChargingContext) -> None:
    charging = await ctx.session.get(ChargingSession, event.data.session_id)
    if charging is None:
        return
    await ctx.session.delete(charging)
    # A TxProfile ends with its transaction (1.6 §3.13.4, K01.FR.29).
    await ctx.session.exec(
        delete(EvseLimit).where(
            col(EvseLimit.station_id) == charging.station_id,
            col(EvseLimit.evse_id) == charging.evse_id,
        )
    )
    ctx.dirty = "session_ended"


@events.on(MeterValues)
async def on_meter_values(event: MeterValues, ctx: ChargingContext) -> None:
    data = event.data
    query = select(ChargingSession).where(ChargingSession.station_id == event.station_id)
    if data.session_id:
        query = query.where(ChargingSession.session_id == data.session_id)
    elif data.evse_id is not None:
        query = query.where(ChargingSession.evse_id == data.evse_id)
    charging = (await ctx.session.exec(query)).first()
    if charging is None:
        return
    currents = [s.value for s in data.samples if s.measurand == "Current.Import"]
    powers = [s.value for s in data.samples if s.measurand == "Power.Active.Import"]
    current = max((c for c in currents if c is not None), default=None)
    if current is None and powers and powers[-1] is not None:
        charging.power_w = powers[-1]
        current = powers[-1] / (ctx.settings.voltage_v * await _evse_phases(ctx.session, charging))
    await _measured(ctx, charging, current)


async def _measured(ctx: ChargingContext, charging: ChargingSession, current: float | None) -> None:
    """Track underuse: drawing clearly less than the limit the station accepted."""
    if current is None:
        return
    charging.current_a = current
    limit = await ctx.session.get(EvseLimit, (charging.station_id, charging.evse_id))
    if limit is None or not limit.accepted or limit.session_id != charging.session_id:
        return
    if current < limit.limit_a - ctx.settings.underuse_margin_a:
        charging.underuse_since = charging.underuse_since or utc_now()
    elif charging.underuse_since is not None:
        charging.underuse_since = None  # it ramps back: give it its share again
        ctx.dirty = "ramp_up"
    ctx.session.add(charging)


@calls.handles(START_TRANSACTION_16)
async def on_start_transaction(ctx: ChargingContext, request: StartTransactionRequest16) -> None:
    """1.6: the connector is the EVSE (see ``transaction_starting``)."""
    await transaction_starting(ctx, request["connectorId"])


@calls.handles(TRANSACTION_EVENT)
async def on_transaction_event(ctx: ChargingContext, request: TransactionEventRequest) -> None:
    """2.x: a Started on an EVSE (see ``transaction_starting``); the Updated and Ended ones
    come as the sessions service's events."""
    evse = request.get("evse")
    if request["eventType"] == "Started" and evse is not None:
        await transaction_starting(ctx, evse["id"])


async def transaction_starting(ctx: ChargingContext, evse_id: int) -> None:
    """A transaction starts on ``evse_id``, seen straight on ``ocpp.inbound``: the EV may
    draw its EVSE's maximum before the sessions service's ``session.started`` reaches us,
    so it counts at that maximum at once (the others make room for it)."""
    if await ctx.session.get(StationAssignment, ctx.station_id) is None:
        return  # on no site
    running = await ctx.session.exec(
        select(ChargingSession).where(
            ChargingSession.station_id == ctx.station_id, ChargingSession.evse_id == evse_id
        )
    )
    if running.first() is not None:  # its session (or an earlier sign of it) is here already
        return
    ctx.session.add(
        ChargingSession(
            session_id=provisional_id(ctx.station_id, evse_id),
            station_id=ctx.station_id,
            evse_id=evse_id,
            ocpp_version=ctx.event.ocpp_version,
            provisional=True,
        )
    )
    ctx.dirty = "session_starting"


@calls.decides(NOTIFY_EV_CHARGING_NEEDS)
async def on_ev_charging_needs(
    ctx: ChargingContext, payload: NotifyEVChargingNeedsRequest
) -> NotifyEVChargingNeedsResponse:
    """2.x NotifyEVChargingNeeds: the EV's current range, energy need and departure (K15-K17)."""
    charging = (
        await ctx.session.exec(
            select(ChargingSession).where(
                ChargingSession.station_id == ctx.station_id,
                ChargingSession.evse_id == payload["evseId"],
            )
        )
    ).first()
    if charging is None:
        return {"status": "Rejected"}  # no session of ours to schedule on that EVSE
    needs = payload["chargingNeeds"]
    ac = needs.get("acChargingParameters") or {}
    charging.ev_min_a = number(ac.get("evMinCurrent"))
    charging.ev_max_a = number(ac.get("evMaxCurrent"))
    charging.energy_needed_wh = number(ac.get("energyAmount"))
    dc = needs.get("dcChargingParameters") or {}
    if charging.energy_needed_wh is None:
        charging.energy_needed_wh = number(dc.get("energyAmount"))
    if needs.get("departureTime"):
        charging.departure_at = parse_ocpp_time(needs["departureTime"])
    ctx.session.add(charging)
    ctx.dirty = "ev_charging_needs"
    return {"status": "Accepted"}


@calls.decides(NOTIFY_EV_CHARGING_SCHEDULE)
async def on_ev_charging_schedule(
    ctx: ChargingContext, request: NotifyEVChargingScheduleRequest
) -> GenericStatusResponse:
    """2.x NotifyEVChargingSchedule: the EV's own plan within our limit; noted, accepted."""
    return {"status": "Accepted"}


@events.on(ConnectionOpened)
async def on_connection_opened(event: ConnectionOpened, ctx: ChargingContext) -> None:
    """A (re)connected station gets its failsafe and its sessions' profiles again."""
    limits = await ctx.session.exec(
        select(EvseLimit).where(EvseLimit.station_id == event.station_id)
    )
    for limit in limits:
        limit.accepted, limit.outcome = False, "reconnected"
        ctx.session.add(limit)
    ctx.connected = event.ocpp_version or "1.6"
    ctx.dirty = "reconnected"


async def _evse_phases(session: AsyncSession, charging: ChargingSession) -> int:
    rating = await session.get(EvseRating, (charging.station_id, charging.evse_id))
    return rating.phases if rating is not None else 3
