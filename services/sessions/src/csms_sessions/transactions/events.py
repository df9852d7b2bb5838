"""The version-neutral domain events of a session on ``csms.sessions`` (docs/asyncapi.yaml)."""

from typing import Any

from csms_core.topics import SESSIONS
from csms_sessions.context import EventContext
from csms_sessions.db import ocpp_time
from csms_sessions.transactions.models import ChargingSession, SessionMessage


def publish_started(ctx: EventContext, charging: ChargingSession) -> None:
    token = (
        {"id_token": charging.id_token, "type": charging.id_token_type}
        if charging.id_token is not None
        else None
    )
    data = _identity(charging) | {
        "station_id": charging.station_id,
        "connector_id": charging.connector_id,
        "id_token": token,
        "started_at": ocpp_time(charging.started_at),
        "meter_start_wh": charging.meter_start_wh,
    }
    ctx.publish("session.started", data, topic=SESSIONS)


def publish_updated(ctx: EventContext, charging: ChargingSession) -> None:
    data = _identity(charging) | {
        "energy_wh": charging.energy_wh,
        "power_w": charging.last_power_w,
        "updated_at": ocpp_time(charging.updated_at),
    }
    if charging.last_current_a is not None:
        data["current_a"] = charging.last_current_a
    if charging.soc_percent is not None:
        data["soc_percent"] = charging.soc_percent
    ctx.publish("session.updated", data, topic=SESSIONS)


def publish_ended(ctx: EventContext, charging: ChargingSession) -> None:
    """Once per session, when its end is established; final unless its start is missing."""
    ctx.publish("session.ended", _figures(charging), topic=SESSIONS)


def publish_finalized(ctx: EventContext, charging: ChargingSession) -> None:
    """The start of an ended session arrived after its end: the figures are final now."""
    ctx.publish("session.finalized", _figures(charging), topic=SESSIONS)


def publish_flagged(ctx: EventContext, charging: ChargingSession, flag: dict[str, Any]) -> None:
    data = _identity(charging) | {
        "reason": flag["reason"],
        "detail": flag["detail"],
        "flags": [f["reason"] for f in charging.flags],
    }
    ctx.publish("session.flagged", data, topic=SESSIONS)


def publish_late_data(
    ctx: EventContext, charging: ChargingSession, message: SessionMessage, samples: int
) -> None:
    """A message for the session after it had ended: stored as sent, never applied."""
    data = _identity(charging) | {
        "action": message.action,
        "event_type": message.event_type,
        "seq_no": message.seq_no,
        "disposition": message.disposition.value,
        "timestamp": ocpp_time(message.timestamp) if message.timestamp else None,
        "received_at": ocpp_time(message.received_at),
        "samples": samples,
        "late_messages": charging.late_messages,
    }
    ctx.publish("session.late_data", data, topic=SESSIONS)


def _figures(charging: ChargingSession) -> dict[str, Any]:
    ended_at = charging.ended_at or charging.updated_at
    return _identity(charging) | {
        "started_at": ocpp_time(charging.started_at),
        "ended_at": ocpp_time(ended_at),
        "stop_reason": charging.stop_reason,
        "ocpp_stop_reason": charging.ocpp_stop_reason,
        "energy_wh": charging.energy_wh,
        "duration_s": max(0.0, (ended_at - charging.started_at).total_seconds()),
        "meter_start_wh": charging.meter_start_wh,
        "meter_stop_wh": charging.meter_stop_wh,
        "final": charging.final,
        "flags": [flag["reason"] for flag in charging.flags],
    }


def _identity(charging: ChargingSession) -> dict[str, Any]:
    return {
        "session_id": charging.session_id,
        "transaction_id": charging.transaction_id,
        "evse_id": charging.evse_id,
    }
