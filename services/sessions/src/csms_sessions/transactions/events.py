"""The version-neutral domain events of a session on ``csms.sessions`` (docs/asyncapi.yaml)."""

from typing import Any

from csms_core.topics import SESSIONS
from csms_sessions.context import EventContext
from csms_sessions.db import ocpp_time
from csms_sessions.transactions.models import ChargingSession


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
    ended_at = charging.ended_at or charging.updated_at
    data = _identity(charging) | {
        "ended_at": ocpp_time(ended_at),
        "stop_reason": charging.stop_reason,
        "ocpp_stop_reason": charging.ocpp_stop_reason,
        "energy_wh": charging.energy_wh,
        "duration_s": max(0.0, (ended_at - charging.started_at).total_seconds()),
        "meter_stop_wh": charging.meter_stop_wh,
    }
    ctx.publish("session.ended", data, topic=SESSIONS)


def _identity(charging: ChargingSession) -> dict[str, Any]:
    return {
        "session_id": charging.session_id,
        "transaction_id": charging.transaction_id,
        "evse_id": charging.evse_id,
    }
