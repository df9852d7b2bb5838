"""The one rule for late and contradictory transaction messages (docs/sessions.md).

A session's start and end are set by the first message that establishes them
(by seqNo in 2.x, by arrival in 1.6). Once ended, nothing moves its end, stop
reading or energy: what comes later is stored and published as late data. The
energy of an ended session is computed within its own start and end; where the
station's own readings disagree, the session is flagged instead of a sample
being silently preferred. A transaction starting on an EVSE that still has an
active session ends the older one (``superseded``).
"""

import logging
from collections.abc import Sequence
from datetime import datetime

from prometheus_client import Counter
from sqlmodel import col, select

from csms_sessions.context import EventContext
from csms_sessions.db import ocpp_time, utc_now
from csms_sessions.metering import service as metering
from csms_sessions.metering.energy import session_energy
from csms_sessions.metering.normalize import Sample
from csms_sessions.transactions import service
from csms_sessions.transactions.events import publish_ended, publish_late_data
from csms_sessions.transactions.flags import FlagReason, raise_flag
from csms_sessions.transactions.models import (
    ChargingSession,
    MessageDisposition,
    SessionMessage,
    SessionState,
)
from csms_sessions.transactions.reasons import StopReason, neutral_stop_reason

logger = logging.getLogger(__name__)

late_messages = Counter(
    "csms_sessions_late_messages_total",
    "Transaction messages for a session that had ended: stored as late data, not applied",
    ["action"],
)
ended_by_csms = Counter(
    "csms_sessions_ended_by_csms_total",
    "Sessions the CSMS ended because the station could no longer have them",
    ["reason"],
)


def log_message(
    ctx: EventContext,
    charging: ChargingSession,
    disposition: MessageDisposition,
    *,
    timestamp: datetime | None,
    event_type: str | None = None,
    seq_no: int | None = None,
) -> SessionMessage:
    """Keep the message as sent with what it did (nothing of a session is ever deleted)."""
    message = SessionMessage(
        session_id=charging.session_id,
        event_id=ctx.envelope.id,
        action=ctx.call.action if ctx.call is not None else ctx.envelope.type,
        event_type=event_type,
        seq_no=seq_no,
        timestamp=timestamp,
        received_at=ctx.received_at,
        disposition=disposition,
        payload=ctx.payload,
    )
    ctx.session.add(message)
    return message


async def first_message(
    ctx: EventContext, charging: ChargingSession, action: str, seq_no: int | None = None
) -> SessionMessage | None:
    """The first message of ``action`` (and ``seq_no``) the session received, if logged."""
    query = select(SessionMessage).where(
        col(SessionMessage.session_id) == charging.session_id,
        col(SessionMessage.action) == action,
    )
    if seq_no is not None:
        query = query.where(col(SessionMessage.seq_no) == seq_no)
    return (await ctx.session.exec(query.order_by(col(SessionMessage.id)).limit(1))).first()


def end(
    ctx: EventContext,
    charging: ChargingSession,
    ended_at: datetime,
    ocpp_reason: str | None,
    *,
    reason: StopReason | None = None,
) -> None:
    """Establish the end (the first message that does wins); the caller then settles."""
    charging.state = SessionState.ENDED
    charging.ended_at = ended_at
    charging.ocpp_stop_reason = ocpp_reason
    charging.stop_reason = (reason or neutral_stop_reason(ocpp_reason)).value
    charging.idle_since = charging.idle_noticed_at = None


async def settle(ctx: EventContext, charging: ChargingSession) -> None:
    """The figures of an ended session: energy within its own start and end, and flags
    where the station's readings disagree; final once its start is known."""
    await ctx.session.flush()
    readings = await metering.register_readings(ctx.session, charging.session_id)
    energy = session_energy(
        readings,
        meter_start=charging.meter_start_wh,
        meter_stop=charging.meter_stop_wh,
        started_at=charging.started_at if charging.start_seen else None,
        ended_at=charging.ended_at,
    )
    charging.energy_wh = energy.wh
    for reason, detail in energy.disagreements:
        raise_flag(ctx, charging, FlagReason(reason), detail)
    charging.final = charging.start_seen
    charging.updated_at = utc_now()


async def end_by_csms(
    ctx: EventContext,
    charging: ChargingSession,
    ended_at: datetime,
    reason: StopReason,
    flag: FlagReason,
    detail: str,
) -> None:
    """End a session the station can no longer have: no stop reading, flagged, announced."""
    ended_by_csms.labels(reason.value).inc()
    logger.info("ending session %s of %s: %s", charging.session_id, charging.station_id, detail)
    end(ctx, charging, max(ended_at, charging.started_at), None, reason=reason)
    raise_flag(ctx, charging, flag, detail)
    await settle(ctx, charging)
    await publish_ended(ctx, charging)


async def receive_late(
    ctx: EventContext,
    charging: ChargingSession,
    samples: Sequence[Sample],
    *,
    timestamp: datetime | None,
    event_type: str | None = None,
    seq_no: int | None = None,
    repeated: FlagReason | None = None,
) -> None:
    """A message for an ended session: its samples stored as late, the message kept and
    announced as late data; the session's figures do not move."""
    action = ctx.call.action if ctx.call is not None else ""
    new = await service.record_samples(ctx, samples, charging.evse_id, charging, late=True)
    # 1.6 MeterValues whose every sample is stored already: a replay (2.x: its seqNo says).
    duplicate = seq_no is None and bool(samples) and not new
    message = log_message(
        ctx,
        charging,
        MessageDisposition.DUPLICATE if duplicate else MessageDisposition.LATE,
        timestamp=timestamp,
        event_type=event_type,
        seq_no=seq_no,
    )
    if duplicate:
        return
    late_messages.labels(action).inc()
    charging.late_messages += 1
    received = ocpp_time(ctx.received_at)
    raise_flag(
        ctx, charging, FlagReason.LATE_DATA, f"{action} received at {received} after the end"
    )
    if repeated is not None:
        detail = f"another {event_type or action} at {ocpp_time(timestamp or ctx.received_at)}"
        raise_flag(ctx, charging, repeated, detail)
    publish_late_data(ctx, charging, message, len(new))


async def supersede(ctx: EventContext, charging: ChargingSession) -> None:
    """One transaction per EVSE at a time: of two active sessions on an EVSE, the one that
    started earlier ended when the other started (OCPP 1.6 §4.8, 2.0.1 E: one transaction
    per EVSE). Read through the ORM session, so sessions of this batch count too."""
    if charging.evse_id is None or charging.state is not SessionState.ACTIVE:
        return
    query = select(ChargingSession).where(
        col(ChargingSession.station_id) == charging.station_id,
        col(ChargingSession.evse_id) == charging.evse_id,
        col(ChargingSession.state) == SessionState.ACTIVE,
        col(ChargingSession.session_id) != charging.session_id,
    )
    for other in (await ctx.session.exec(query.with_for_update())).all():
        older, newer = (
            (other, charging)
            if other.started_at <= charging.started_at
            else (
                charging,
                other,
            )
        )
        detail = (
            f"transaction {newer.transaction_id} started on EVSE {charging.evse_id} "
            f"at {ocpp_time(newer.started_at)} (session {newer.session_id})"
        )
        await end_by_csms(
            ctx, older, newer.started_at, StopReason.SUPERSEDED, FlagReason.SUPERSEDED, detail
        )
        if older is charging:
            return
