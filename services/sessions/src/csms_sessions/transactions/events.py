"""The version-neutral domain events of a session on ``csms.sessions`` (models in
``csms_core.events.sessions``)."""

from typing import Any

from csms_core.events import (
    IdTokenRef,
    SessionEnded,
    SessionEndedData,
    SessionFinalized,
    SessionFlagged,
    SessionFlaggedData,
    SessionLateData,
    SessionLateDataData,
    SessionStarted,
    SessionStartedData,
    SessionUpdated,
    SessionUpdatedData,
)
from csms_sessions.context import EventContext
from csms_sessions.tokens.models import ID_TAG
from csms_sessions.tokens.service import find_token
from csms_sessions.transactions.models import ChargingSession, SessionMessage


async def _token(ctx: EventContext, charging: ChargingSession) -> IdTokenRef | None:
    """Who charged, with the group the CSMS holds the token in (billing prices drivers'
    tariffs by it)."""
    if charging.id_token is None:
        return None
    kind = charging.id_token_type
    stored = await find_token(ctx.session, charging.id_token, None if kind == ID_TAG else kind)
    return IdTokenRef(
        id_token=charging.id_token,
        type=kind or "",
        group_id=stored.group_id if stored is not None else None,
    )


async def publish_started(ctx: EventContext, charging: ChargingSession) -> None:
    token = await _token(ctx, charging)
    data = SessionStartedData(
        session_id=charging.session_id,
        transaction_id=charging.transaction_id,
        evse_id=charging.evse_id,
        station_id=charging.station_id,
        connector_id=charging.connector_id,
        id_token=token,
        started_at=charging.started_at,
        meter_start_wh=charging.meter_start_wh,
    )
    ctx.publish(SessionStarted, data)


def publish_updated(
    ctx: EventContext, charging: ChargingSession, token: IdTokenRef | None = None
) -> None:
    """``token``: who charges, when this update is the first to name them (after the start)."""
    data = SessionUpdatedData(
        session_id=charging.session_id,
        transaction_id=charging.transaction_id,
        evse_id=charging.evse_id,
        energy_wh=charging.energy_wh,
        power_w=charging.last_power_w,
        updated_at=charging.updated_at,
        current_a=charging.last_current_a,
        soc_percent=charging.soc_percent,
        id_token=token,
    )
    ctx.publish(SessionUpdated, data)


async def token_after_start(ctx: EventContext, charging: ChargingSession) -> IdTokenRef | None:
    """The token of a session that had none before this event (its group looked up)."""
    return await _token(ctx, charging)


async def publish_ended(ctx: EventContext, charging: ChargingSession) -> None:
    """Once per session, when its end is established; final unless its start is missing."""
    ctx.publish(SessionEnded, _figures(charging, await _token(ctx, charging)))


async def publish_finalized(ctx: EventContext, charging: ChargingSession) -> None:
    """The start of an ended session arrived after its end: the figures are final now."""
    ctx.publish(SessionFinalized, _figures(charging, await _token(ctx, charging)))


def publish_flagged(ctx: EventContext, charging: ChargingSession, flag: dict[str, Any]) -> None:
    data = SessionFlaggedData(
        session_id=charging.session_id,
        transaction_id=charging.transaction_id,
        evse_id=charging.evse_id,
        reason=flag["reason"],
        detail=flag["detail"],
        flags=[f["reason"] for f in charging.flags],
    )
    ctx.publish(SessionFlagged, data)


def publish_late_data(
    ctx: EventContext, charging: ChargingSession, message: SessionMessage, samples: int
) -> None:
    """A message for the session after it had ended: stored as sent, never applied."""
    data = SessionLateDataData(
        session_id=charging.session_id,
        transaction_id=charging.transaction_id,
        evse_id=charging.evse_id,
        action=message.action,
        event_type=message.event_type,
        seq_no=message.seq_no,
        disposition=message.disposition.value,
        timestamp=message.timestamp,
        received_at=message.received_at,
        samples=samples,
        late_messages=charging.late_messages,
    )
    ctx.publish(SessionLateData, data)


def _figures(charging: ChargingSession, token: IdTokenRef | None) -> SessionEndedData:
    ended_at = charging.ended_at or charging.updated_at
    return SessionEndedData(
        session_id=charging.session_id,
        transaction_id=charging.transaction_id,
        evse_id=charging.evse_id,
        started_at=charging.started_at,
        ended_at=ended_at,
        stop_reason=charging.stop_reason or "local",  # always set by then; 2.x: omitted = local
        ocpp_stop_reason=charging.ocpp_stop_reason,
        energy_wh=charging.energy_wh,
        duration_s=max(0.0, (ended_at - charging.started_at).total_seconds()),
        meter_start_wh=charging.meter_start_wh,
        meter_stop_wh=charging.meter_stop_wh,
        final=charging.final,
        flags=[flag["reason"] for flag in charging.flags],
        id_token=token,
    )
