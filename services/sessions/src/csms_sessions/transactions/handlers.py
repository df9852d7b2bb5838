"""Handlers of a station's transaction messages: 1.6 Start/StopTransaction, 2.x TransactionEvent.

Stations queue these while offline and replay them later, possibly more than
once and out of order; each one is applied by content, so a re-sent message
(a new envelope, maybe the same messageId) changes nothing and exactly one
session results (OCPP 1.6 §4.8, 2.0.1 E04 / E13: offline transactions).
"""

import logging
from datetime import datetime
from typing import Any

from prometheus_client import Counter

from csms_sessions.context import EventContext
from csms_sessions.db import parse_ocpp_time
from csms_sessions.metering.normalize import Sample, samples_of
from csms_sessions.tokens.models import ID_TAG
from csms_sessions.tokens.service import authorize, id_tag_info, id_token_info
from csms_sessions.transactions import service
from csms_sessions.transactions.events import publish_ended, publish_started, publish_updated
from csms_sessions.transactions.models import ChargingSession, SessionState
from csms_sessions.transactions.reasons import neutral_stop_reason

logger = logging.getLogger(__name__)

resent_messages = Counter(
    "csms_sessions_resent_transaction_messages_total",
    "Transaction messages a station sent again (same content): answered, not applied again",
    ["action"],
)


async def on_start_transaction(ctx: EventContext) -> dict[str, Any]:
    """OCPP 1.6: open a session under a new transactionId (the same one when re-sent)."""
    payload = ctx.payload
    started_at, evse_id = parse_ocpp_time(payload["timestamp"]), payload["connectorId"]
    decision = await authorize(
        ctx.session, payload["idTag"], None, station_id=ctx.station.station_id, evse_id=evse_id
    )
    charging = await service.find_started_v16(
        ctx.session,
        ctx.station.station_id,
        evse_id,
        started_at,
        payload["idTag"],
        float(payload["meterStart"]),
    )
    if charging is not None:
        resent_messages.labels("StartTransaction").inc()
    else:
        transaction_id = await service.allocate_v16(ctx)
        charging = service.open_session(ctx, transaction_id, started_at, evse_id)
        _start_v16(charging, payload)
        await service.use_reservation(ctx, charging)
        await service.refresh(ctx.session, charging, [])
        publish_started(ctx, charging)
    return {"transactionId": int(charging.transaction_id), "idTagInfo": id_tag_info(decision)}


def _start_v16(charging: ChargingSession, payload: dict[str, Any]) -> None:
    # OCPP 1.6 connector N is EVSE N, connector 1 (as connector statuses are stored).
    charging.connector_id = 1
    charging.start_seen = True
    charging.id_token, charging.id_token_type = payload["idTag"], ID_TAG
    charging.meter_start_wh = float(payload["meterStart"])
    charging.reservation_id = payload.get("reservationId")


async def on_stop_transaction(ctx: EventContext) -> dict[str, Any]:
    """OCPP 1.6: end the session; idTagInfo only when the stop names an idTag."""
    payload = ctx.payload
    transaction_id = str(payload["transactionId"])
    ended_at = parse_ocpp_time(payload["timestamp"])
    samples = samples_of(payload.get("transactionData", []), is_2x=False)
    charging = await service.find(ctx.session, ctx.station.station_id, transaction_id)
    if charging is None:
        earliest = min([ended_at, *(sample.timestamp for sample in samples)])
        charging = service.open_unknown(ctx, "StopTransaction", transaction_id, earliest, None)
    if charging.state is SessionState.ENDED:
        resent_messages.labels("StopTransaction").inc()
    else:
        new = await service.record_samples(ctx, samples, charging.evse_id, charging)
        _stop(charging, ended_at, payload.get("reason"))
        charging.meter_stop_wh = float(payload["meterStop"])
        if charging.id_token is None and "idTag" in payload:
            charging.id_token, charging.id_token_type = payload["idTag"], ID_TAG
        await service.refresh(ctx.session, charging, new)
        publish_ended(ctx, charging)
    id_tag = payload.get("idTag")
    if id_tag is None:
        return {}
    decision = await authorize(ctx.session, id_tag, None, station_id=ctx.station.station_id)
    return {"idTagInfo": id_tag_info(decision)}


def _stop(charging: ChargingSession, ended_at: datetime, ocpp_reason: str | None) -> None:
    charging.state = SessionState.ENDED
    charging.ended_at = ended_at
    charging.ocpp_stop_reason = ocpp_reason
    charging.stop_reason = neutral_stop_reason(ocpp_reason).value


async def on_transaction_event(ctx: EventContext) -> dict[str, Any]:
    """OCPP 2.x: apply every TransactionEvent; idTokenInfo when it names an idToken.

    Only events with an idToken wait for our answer (the gateway answers the
    others), but every one updates the session.
    """
    payload = ctx.payload
    answer: dict[str, Any] = {}
    if (token := payload.get("idToken")) is not None:
        evse_id = payload["evse"]["id"] if "evse" in payload else None
        decision = await authorize(
            ctx.session,
            token["idToken"],
            token["type"],
            station_id=ctx.station.station_id,
            evse_id=evse_id,
        )
        answer["idTokenInfo"] = id_token_info(decision)
    await _apply_transaction_event(ctx, payload)
    return answer


async def _apply_transaction_event(ctx: EventContext, payload: dict[str, Any]) -> None:
    info, seq_no = payload["transactionInfo"], payload["seqNo"]
    at, event_type = parse_ocpp_time(payload["timestamp"]), payload["eventType"]
    evse_id = payload["evse"]["id"] if "evse" in payload else None
    charging = await service.find(ctx.session, ctx.station.station_id, info["transactionId"])
    if charging is not None and seq_no in charging.seen_seq_nos:
        resent_messages.labels("TransactionEvent").inc()
        return
    created = charging is None
    if charging is None and event_type == "Started":
        charging = service.open_session(ctx, info["transactionId"], at, evse_id)
    elif charging is None:
        # Offline replay out of order: the Started may still come (or was lost).
        charging = service.open_unknown(ctx, "TransactionEvent", info["transactionId"], at, evse_id)
    was_ended, had_reservation = charging.state is SessionState.ENDED, charging.reservation_id
    _apply_event(charging, payload, at)
    if charging.reservation_id != had_reservation:
        await service.use_reservation(ctx, charging)
    _record_seq_no(charging, seq_no)
    samples = samples_of(payload.get("meterValue", []), is_2x=True)
    new = await service.record_samples(ctx, samples, charging.evse_id, charging)
    _meter_readings(charging, event_type, samples)
    await service.refresh(ctx.session, charging, new)
    if created and event_type == "Started":
        publish_started(ctx, charging)
    if charging.state is SessionState.ENDED and not was_ended:
        publish_ended(ctx, charging)
    elif not (created and event_type == "Started"):
        publish_updated(ctx, charging)


def _apply_event(charging: ChargingSession, payload: dict[str, Any], at: datetime) -> None:
    info, event_type = payload["transactionInfo"], payload["eventType"]
    if (evse := payload.get("evse")) is not None:
        charging.evse_id = evse["id"]
        charging.connector_id = evse.get("connectorId", charging.connector_id)
    if (token := payload.get("idToken")) is not None and (
        charging.id_token is None or event_type == "Started"
    ):
        charging.id_token, charging.id_token_type = token["idToken"], token["type"]
    if event_type == "Started":
        charging.started_at, charging.start_seen = at, True
    elif not charging.start_seen and at < charging.started_at:
        charging.started_at = at  # the earliest event seen until the Started arrives
    charging.offline = charging.offline or payload.get("offline", False)
    if charging.last_seq_no is None or payload["seqNo"] > charging.last_seq_no:
        # Only the newest event says what the transaction is doing now.
        charging.trigger_reason = payload["triggerReason"]
        charging.charging_state = info.get("chargingState", charging.charging_state)
    charging.reservation_id = payload.get("reservationId", charging.reservation_id)
    charging.remote_start_id = info.get("remoteStartId", charging.remote_start_id)
    if event_type == "Ended":
        _stop(charging, at, info.get("stoppedReason"))


def _record_seq_no(charging: ChargingSession, seq_no: int) -> None:
    # A new list: SQLAlchemy does not see a JSON list changed in place.
    seen = sorted({*charging.seen_seq_nos, seq_no})
    charging.seen_seq_nos = seen
    charging.last_seq_no = seen[-1]
    # 2.0.1 E01: seqNo increments by one per event; a missing number is a lost event.
    charging.seq_gap = len(seen) != seen[-1] - seen[0] + 1


def _meter_readings(charging: ChargingSession, event_type: str, samples: list[Sample]) -> None:
    if event_type == "Started" or charging.meter_start_wh is None:
        begin = service.register_reading(samples, "Transaction.Begin")
        charging.meter_start_wh = begin if begin is not None else charging.meter_start_wh
    end = service.register_reading(samples, "Transaction.End")
    charging.meter_stop_wh = end if end is not None else charging.meter_stop_wh
