"""Handlers of a station's transaction messages: 1.6 Start/StopTransaction, 2.x TransactionEvent.

Stations queue these while offline and replay them later, possibly more than
once and out of order; each one is applied by content, so a re-sent message
(a new envelope, maybe the same messageId) changes nothing and exactly one
session results (OCPP 1.6 §4.8, 2.0.1 E04 / E13: offline transactions). What
a message may still change is the one rule of ``transactions.lifecycle``.
"""

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from prometheus_client import Counter

from csms_core.calls import has
from csms_ocpp.messages import (
    START_TRANSACTION_16,
    STOP_TRANSACTION_16,
    TRANSACTION_EVENT,
    StartTransactionRequest16,
    StartTransactionResponse16,
    StopTransactionRequest16,
    StopTransactionResponse16,
    TransactionEventRequest,
    TransactionEventResponse,
)
from csms_sessions.context import EventContext, calls
from csms_sessions.db import parse_ocpp_time
from csms_sessions.metering.normalize import Sample, samples_of
from csms_sessions.tokens.models import ID_TAG
from csms_sessions.tokens.service import authorize, id_tag_info, id_token_info
from csms_sessions.transactions import lifecycle, service
from csms_sessions.transactions.events import (
    publish_ended,
    publish_finalized,
    publish_started,
    publish_updated,
    token_after_start,
)
from csms_sessions.transactions.flags import FlagReason, raise_flag
from csms_sessions.transactions.models import ChargingSession, MessageDisposition, SessionState
from csms_sessions.transactions.resolution import still_running

logger = logging.getLogger(__name__)

resent_messages = Counter(
    "csms_sessions_resent_transaction_messages_total",
    "Transaction messages a station sent again (same content): answered, not applied again",
    ["action"],
)


@calls.decides(START_TRANSACTION_16)
async def on_start_transaction(
    ctx: EventContext, payload: StartTransactionRequest16
) -> StartTransactionResponse16:
    """OCPP 1.6: open a session under a new transactionId (the same one when re-sent)."""
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
        disposition = MessageDisposition.DUPLICATE
    else:
        transaction_id = await service.allocate_v16(ctx)
        charging = service.open_session(ctx, transaction_id, started_at, evse_id)
        _start_v16(charging, payload)
        await service.link_remote_start_v16(ctx, charging)
        await service.use_reservation(ctx, charging)
        await service.refresh(ctx.session, charging, [])
        await publish_started(ctx, charging)
        await lifecycle.supersede(ctx, charging)
        disposition = MessageDisposition.APPLIED
    lifecycle.log_message(ctx, charging, disposition, timestamp=started_at)
    return {"transactionId": int(charging.transaction_id), "idTagInfo": id_tag_info(decision)}


def _start_v16(charging: ChargingSession, payload: StartTransactionRequest16) -> None:
    # OCPP 1.6 connector N is EVSE N, connector 1 (as connector statuses are stored).
    charging.connector_id = 1
    charging.start_seen = True
    charging.id_token, charging.id_token_type = payload["idTag"], ID_TAG
    charging.meter_start_wh = float(payload["meterStart"])
    charging.reservation_id = payload.get("reservationId")


@calls.decides(STOP_TRANSACTION_16)
async def on_stop_transaction(
    ctx: EventContext, payload: StopTransactionRequest16
) -> StopTransactionResponse16:
    """OCPP 1.6: end the session (the first stop wins); idTagInfo when the stop names one."""
    transaction_id = str(payload["transactionId"])
    ended_at = parse_ocpp_time(payload["timestamp"])
    samples = samples_of(payload.get("transactionData", []), is_2x=False)
    charging = await service.find(ctx.session, ctx.station.station_id, transaction_id, ctx.known)
    if charging is None:
        earliest = min([ended_at, *(sample.timestamp for sample in samples)])
        charging = await service.open_unknown(
            ctx, "StopTransaction", transaction_id, earliest, None
        )
    if charging.state is SessionState.ENDED:
        await _stop_after_end(ctx, charging, samples, ended_at)
    else:
        new = await service.record_samples(ctx, samples, charging.evse_id, charging)
        charging.meter_stop_wh = float(payload["meterStop"])
        if charging.id_token is None and "idTag" in payload:
            charging.id_token, charging.id_token_type = payload["idTag"], ID_TAG
        await service.refresh(ctx.session, charging, new)
        lifecycle.end(ctx, charging, ended_at, payload.get("reason"))
        await lifecycle.settle(ctx, charging)
        lifecycle.log_message(ctx, charging, MessageDisposition.APPLIED, timestamp=ended_at)
        await publish_ended(ctx, charging)
    id_tag = payload.get("idTag")
    if id_tag is None:
        return {}
    decision = await authorize(ctx.session, id_tag, None, station_id=ctx.station.station_id)
    return {"idTagInfo": id_tag_info(decision)}


async def _stop_after_end(
    ctx: EventContext, charging: ChargingSession, samples: list[Sample], ended_at: datetime
) -> None:
    """A second StopTransaction: the same one again is a duplicate, another one (or one
    for a session the CSMS ended itself) late data."""
    first = await lifecycle.first_message(ctx, charging, "StopTransaction")
    if first is not None and first.payload == ctx.payload:
        resent_messages.labels("StopTransaction").inc()
        lifecycle.log_message(ctx, charging, MessageDisposition.DUPLICATE, timestamp=ended_at)
        return
    await lifecycle.receive_late(
        ctx, charging, samples, timestamp=ended_at, repeated=FlagReason.REPEATED_STOP
    )


# OCPP 2.0.1 E01-E07: only an idToken asks for a decision (idTokenInfo); the others get {}.
@calls.decides(TRANSACTION_EVENT, when=has("idToken"))
async def on_transaction_event(
    ctx: EventContext, payload: TransactionEventRequest
) -> TransactionEventResponse:
    """OCPP 2.x: apply every TransactionEvent; idTokenInfo when it names an idToken.

    Only events with an idToken wait for our answer (the gateway answers the
    others), but every one updates the session.
    """
    answer: TransactionEventResponse = {}
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


async def _apply_transaction_event(ctx: EventContext, payload: TransactionEventRequest) -> None:
    info, seq_no = payload["transactionInfo"], payload["seqNo"]
    at, event_type = parse_ocpp_time(payload["timestamp"]), payload["eventType"]
    evse_id = payload["evse"]["id"] if "evse" in payload else None
    charging = await service.find(
        ctx.session, ctx.station.station_id, info["transactionId"], ctx.known
    )
    if charging is not None and seq_no in charging.seen_seq_nos:
        await _seen_seq_no(ctx, charging, at, event_type, seq_no)
        return
    created, evse_before = charging is None, charging.evse_id if charging else None
    had_token = charging is not None and charging.id_token is not None
    if charging is None and event_type == "Started":
        charging = service.open_session(ctx, info["transactionId"], at, evse_id)
    elif charging is None:
        # Offline replay out of order: the Started may still come (or was lost).
        charging = await service.open_unknown(
            ctx, "TransactionEvent", info["transactionId"], at, evse_id
        )
    _record_seq_no(charging, seq_no)
    await service.link_remote_start(ctx, charging, info.get("remoteStartId"))
    samples = samples_of(payload.get("meterValue", []), is_2x=True)
    if charging.state is SessionState.ENDED:
        await _event_after_end(ctx, charging, payload, samples, at)
        return
    ended = await _apply_to_active(ctx, charging, payload, samples, at)
    lifecycle.log_message(
        ctx,
        charging,
        MessageDisposition.APPLIED,
        timestamp=at,
        event_type=event_type,
        seq_no=seq_no,
    )
    if created and event_type == "Started":
        await publish_started(ctx, charging)
    if ended:
        await publish_ended(ctx, charging)
        return
    if not (created and event_type == "Started"):
        # A token after the start (2.0.1 E03, cable plugged in first): billing re-prices.
        arrived = charging.id_token is not None and not had_token
        publish_updated(ctx, charging, await token_after_start(ctx, charging) if arrived else None)
    if created or charging.evse_id != evse_before:
        await lifecycle.supersede(ctx, charging)


async def _seen_seq_no(
    ctx: EventContext, charging: ChargingSession, at: datetime, event_type: str, seq_no: int
) -> None:
    """A seqNo seen before: a re-sent event, or (other content) a station reusing seqNos."""
    first = await lifecycle.first_message(ctx, charging, "TransactionEvent", seq_no)
    same = first is None or _without_offline(first.payload) == _without_offline(ctx.payload)
    disposition = MessageDisposition.DUPLICATE if same else MessageDisposition.CONFLICTING
    resent_messages.labels("TransactionEvent").inc()
    lifecycle.log_message(
        ctx, charging, disposition, timestamp=at, event_type=event_type, seq_no=seq_no
    )
    if not same:
        detail = f"seqNo {seq_no} received again with other content ({event_type})"
        raise_flag(ctx, charging, FlagReason.SEQ_NO_REUSED, detail)


def _without_offline(payload: Mapping[str, Any]) -> dict[str, Any]:
    # A replayed event is the same event whether or not the station marked it offline.
    return {key: value for key, value in payload.items() if key != "offline"}


async def _event_after_end(
    ctx: EventContext,
    charging: ChargingSession,
    payload: TransactionEventRequest,
    samples: list[Sample],
    at: datetime,
) -> None:
    """An event for an ended session: its missing start fills in, anything else is late."""
    event_type, seq_no = payload["eventType"], payload["seqNo"]
    if event_type == "Started" and not charging.start_seen:
        new = await service.record_samples(ctx, samples, charging.evse_id, charging)
        _establish_start(charging, payload, at, new)
        await service.use_reservation(ctx, charging)
        await lifecycle.settle(ctx, charging)
        lifecycle.log_message(
            ctx,
            charging,
            MessageDisposition.APPLIED,
            timestamp=at,
            event_type=event_type,
            seq_no=seq_no,
        )
        await publish_finalized(ctx, charging)
        return
    repeated = {"Started": FlagReason.REPEATED_START, "Ended": FlagReason.REPEATED_STOP}
    await lifecycle.receive_late(
        ctx,
        charging,
        samples,
        timestamp=at,
        event_type=event_type,
        seq_no=seq_no,
        repeated=repeated.get(event_type),
    )


async def _apply_to_active(
    ctx: EventContext,
    charging: ChargingSession,
    payload: TransactionEventRequest,
    samples: list[Sample],
    at: datetime,
) -> bool:
    """Apply an event to an active session; whether it ended the session."""
    info, event_type = payload["transactionInfo"], payload["eventType"]
    had_reservation = charging.reservation_id
    still_running(charging, at)
    new = await service.record_samples(ctx, samples, charging.evse_id, charging)
    if event_type == "Started":
        _started_again(ctx, charging, payload, at, new)
    elif not charging.start_seen and at < charging.started_at:
        charging.started_at = at  # the earliest event seen until the Started arrives
    _apply_event(charging, payload)
    if charging.reservation_id != had_reservation:
        await service.use_reservation(ctx, charging)
    if charging.meter_start_wh is None:
        charging.meter_start_wh = service.register_reading(samples, "Transaction.Begin")
    end = service.register_reading(samples, "Transaction.End")
    charging.meter_stop_wh = end if end is not None else charging.meter_stop_wh
    await service.refresh(ctx.session, charging, new)
    if event_type != "Ended":
        return False
    lifecycle.end(ctx, charging, at, info.get("stoppedReason"))
    await lifecycle.settle(ctx, charging)
    return True


def _started_again(
    ctx: EventContext,
    charging: ChargingSession,
    payload: TransactionEventRequest,
    at: datetime,
    new: list[Sample],
) -> None:
    """2.x: the Started of the lowest seqNo sets the start (a station may send two, the
    first without idToken or EVSE, e.g. after RequestStartTransaction)."""
    seq_no = payload["seqNo"]
    if not charging.start_seen or (charging.start_seq_no or 0) > seq_no:
        _establish_start(charging, payload, at, new)
    elif at != charging.started_at:
        detail = f"a Started of seqNo {seq_no} at {payload['timestamp']}: the start stays"
        raise_flag(ctx, charging, FlagReason.REPEATED_START, detail)
    token = payload.get("idToken")
    if token is not None and charging.id_token is None:
        charging.id_token, charging.id_token_type = token["idToken"], token["type"]


def _establish_start(
    charging: ChargingSession, payload: TransactionEventRequest, at: datetime, new: list[Sample]
) -> None:
    charging.started_at, charging.start_seen = at, True
    charging.start_seq_no = payload["seqNo"]
    if (token := payload.get("idToken")) is not None:
        charging.id_token, charging.id_token_type = token["idToken"], token["type"]
    if (evse := payload.get("evse")) is not None and charging.evse_id is None:
        charging.evse_id = evse["id"]
        charging.connector_id = evse.get("connectorId", charging.connector_id)
    begin = service.register_reading(new, "Transaction.Begin")
    charging.meter_start_wh = begin if begin is not None else charging.meter_start_wh
    charging.reservation_id = payload.get("reservationId", charging.reservation_id)


def _apply_event(charging: ChargingSession, payload: TransactionEventRequest) -> None:
    info = payload["transactionInfo"]
    if (evse := payload.get("evse")) is not None:
        charging.evse_id = evse["id"]
        charging.connector_id = evse.get("connectorId", charging.connector_id)
    if (token := payload.get("idToken")) is not None and charging.id_token is None:
        charging.id_token, charging.id_token_type = token["idToken"], token["type"]
    charging.offline = charging.offline or payload.get("offline", False)
    if charging.last_seq_no is None or payload["seqNo"] >= charging.last_seq_no:
        # Only the newest event says what the transaction is doing now.
        charging.trigger_reason = payload["triggerReason"]
        charging.charging_state = info.get("chargingState", charging.charging_state)
    charging.reservation_id = payload.get("reservationId", charging.reservation_id)


def _record_seq_no(charging: ChargingSession, seq_no: int) -> None:
    # A new list: SQLAlchemy does not see a JSON list changed in place.
    seen = sorted({*charging.seen_seq_nos, seq_no})
    charging.seen_seq_nos = seen
    charging.last_seq_no = seen[-1]
    # 2.0.1 E01: seqNo increments by one per event; a missing number is a lost event.
    charging.seq_gap = len(seen) != seen[-1] - seen[0] + 1
