"""The session model: finding, opening and refreshing sessions, whatever the OCPP version."""

import logging
from collections.abc import Sequence
from datetime import datetime

from prometheus_client import Counter
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.events import MeterValues, MeterValuesData
from csms_sessions.context import EventContext
from csms_sessions.db import utc_now
from csms_sessions.metering import service as metering
from csms_sessions.metering.energy import is_session_register, session_energy
from csms_sessions.metering.normalize import Sample
from csms_sessions.remote import service as remote
from csms_sessions.reservations.service import mark_reservation_used
from csms_sessions.transactions.events import publish_started
from csms_sessions.transactions.known import KnownSessions
from csms_sessions.transactions.models import ChargingSession, SessionState, TransactionId

logger = logging.getLogger(__name__)

unknown_transactions = Counter(
    "csms_sessions_unknown_transactions_total",
    "Sessions first heard of from a message other than their start",
    ["action"],
)


async def find(
    session: AsyncSession,
    station_id: str,
    transaction_id: str,
    known: KnownSessions | None = None,
) -> ChargingSession | None:
    """The session of a transaction, locked until the event's transaction ends (PostgreSQL):
    the resolution of idle EVSEs (transactions.resolution) may be ending it meanwhile.
    ``known``: a batch's sessions, read (and locked) for all its messages at once."""
    if known is not None and known.knows((station_id, transaction_id)):
        return known.get((station_id, transaction_id))
    query = select(ChargingSession).where(
        col(ChargingSession.station_id) == station_id,
        col(ChargingSession.transaction_id) == transaction_id,
    )
    return (await session.exec(query.with_for_update())).first()


async def find_started_v16(
    session: AsyncSession,
    station_id: str,
    evse_id: int,
    started_at: datetime,
    id_tag: str,
    meter_start: float,
) -> ChargingSession | None:
    """The session a 1.6 StartTransaction opened already (the station re-sent it)."""
    query = select(ChargingSession).where(
        col(ChargingSession.station_id) == station_id,
        col(ChargingSession.evse_id) == evse_id,
        col(ChargingSession.started_at) == started_at,
        col(ChargingSession.id_token) == id_tag,
        col(ChargingSession.meter_start_wh) == meter_start,
        col(ChargingSession.start_seen).is_(True),
    )
    return (await session.exec(query)).first()


async def allocate_v16(ctx: EventContext) -> str:
    """A new 1.6 transactionId, unique across replicas, not used by this station already.

    A station may have made one up (a Stop or MeterValues for an id we never
    gave out is recorded under it): such an id is skipped.
    """
    for attempt in range(1_000):
        # The event id (made unique per attempt) keeps the allocation traceable to its cause.
        event_id = ctx.envelope.id if attempt == 0 else f"{ctx.envelope.id[:56]}.{attempt}"
        allocation = TransactionId(station_id=ctx.station.station_id, event_id=event_id)
        ctx.session.add(allocation)
        await ctx.session.flush()  # the database assigns the id
        transaction_id = str(allocation.transaction_id)
        if await find(ctx.session, ctx.station.station_id, transaction_id, ctx.known) is None:
            return transaction_id
        logger.warning("skipping transactionId %s: the station used it already", transaction_id)
    raise RuntimeError("no free transactionId after 1000 attempts")


def open_session(
    ctx: EventContext, transaction_id: str, at: datetime, evse_id: int | None
) -> ChargingSession:
    """A new active session, known so far only from a message that is not its start."""
    charging = ChargingSession(
        station_id=ctx.station.station_id,
        evse_id=evse_id,
        transaction_id=transaction_id,
        ocpp_version=ctx.version.number,
        state=SessionState.ACTIVE,
        started_at=at,
    )
    ctx.session.add(charging)
    return charging


async def open_unknown(
    ctx: EventContext, action: str, transaction_id: str, at: datetime, evse_id: int | None
) -> ChargingSession:
    """Record (and announce) a session first heard of from a message other than its start."""
    unknown_transactions.labels(action).inc()
    logger.warning(
        "%s for unknown transaction %s of %s: recorded",
        action,
        transaction_id,
        ctx.station.station_id,
    )
    charging = open_session(ctx, transaction_id, at, evse_id)
    await publish_started(ctx, charging)
    return charging


async def use_reservation(ctx: EventContext, charging: ChargingSession) -> None:
    """The session started with a reservation (1.6 reservationId, 2.x reservationId): used."""
    if charging.reservation_id is None:
        return
    used = await mark_reservation_used(ctx.session, charging.station_id, charging.reservation_id)
    if used is None:
        logger.info(
            "reservation %s of %s: not active", charging.reservation_id, charging.station_id
        )


async def link_remote_start(
    ctx: EventContext, charging: ChargingSession, remote_start_id: int | None
) -> None:
    """2.x: whichever event carries the remoteStartId links the session to our request
    (OCPP 2.0.1 F01.FR.04); a session without a token yet takes the request's."""
    if remote_start_id is None or charging.remote_start_id is not None:
        return
    charging.remote_start_id = remote_start_id
    request = await remote.link_session(
        ctx.session, charging.station_id, remote_start_id, charging.session_id
    )
    if request is not None and charging.id_token is None:
        charging.id_token, charging.id_token_type = request.id_token, request.token_type


async def link_remote_start_v16(ctx: EventContext, charging: ChargingSession) -> None:
    """1.6: a StartTransaction that follows our RemoteStartTransaction (same idTag, EVSE)."""
    if charging.id_token is None or charging.evse_id is None:
        return
    request = await remote.link_session_v16(
        ctx.session,
        charging.station_id,
        charging.id_token,
        charging.evse_id,
        ctx.received_at,
        charging.session_id,
    )
    if request is not None:
        charging.remote_start_id = request.remote_start_id


async def record_samples(
    ctx: EventContext,
    samples: Sequence[Sample],
    evse_id: int | None,
    charging: ChargingSession | None,
    *,
    late: bool = False,
) -> list[Sample]:
    """Store the samples not stored yet, publish them as ``meter.values``; the new ones.

    ``late``: sent once the session had ended, so never counted in its figures."""
    owner = metering.Owner(
        station_id=ctx.station_id,
        evse_id=charging.evse_id if charging is not None else evse_id,
        session_id=charging.session_id if charging is not None else None,
        transaction_id=charging.transaction_id if charging is not None else None,
    )
    if ctx.samples is not None and charging is None:
        new = await ctx.samples.store(ctx.session, owner, samples)  # written with the batch's
    else:
        if ctx.samples is not None:
            await ctx.samples.around(ctx.session, owner.station_id)
        new = await metering.store(ctx.session, owner, samples, late=late)
    if new:
        ctx.publish(
            MeterValues,
            MeterValuesData(
                evse_id=owner.evse_id,
                samples=[sample.wire() for sample in new],
                session_id=charging.session_id if charging is not None else None,
                transaction_id=charging.transaction_id if charging is not None else None,
                late=late,
            ),
        )
    return new


async def refresh(session: AsyncSession, charging: ChargingSession, new: Sequence[Sample]) -> None:
    """An active session's energy from its register readings so far (from its start, once
    known); power, current and SoC from the newest. Ended sessions are settled instead."""
    gauges = metering.gauges(new)
    if gauges.measured_at is not None and (
        charging.measured_at is None or gauges.measured_at >= charging.measured_at
    ):
        charging.measured_at = gauges.measured_at
        charging.last_power_w = _newer(gauges.power_w, charging.last_power_w)
        charging.last_current_a = _newer(gauges.current_a, charging.last_current_a)
        charging.soc_percent = _newer(gauges.soc_percent, charging.soc_percent)
    await session.flush()
    readings = await metering.register_readings(session, charging.session_id)
    energy = session_energy(
        readings,
        meter_start=charging.meter_start_wh,
        meter_stop=None,
        started_at=charging.started_at if charging.start_seen else None,
        ended_at=None,
    )
    charging.energy_wh = energy.wh
    charging.updated_at = utc_now()


def _newer(value: float | None, stored: float | None) -> float | None:
    return stored if value is None else value


def register_reading(samples: Sequence[Sample], context: str) -> float | None:
    """The outlet register reading of the given context (Transaction.Begin/End), if sent."""
    return next((s.value for s in samples if is_session_register(s) and s.context == context), None)
