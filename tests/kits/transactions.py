"""Test helpers of transactions and metering: send as a station, read what a user sees.

On top of ``tests.kits.sessions`` (the real service on the embedded bus).
"""

import json
from typing import Any

from sqlmodel import col, select

from csms_core.envelope import Envelope
from csms_core.topics import METER_VALUES, SESSIONS
from csms_ocpp import OcppVersion, schemas
from csms_sessions.context import PARTY
from csms_sessions.metering.models import MeterSample
from csms_sessions.tokens.models import IdToken, TokenStatus
from csms_sessions.transactions.models import ChargingSession, SessionMessage
from tests.kits.sessions import Harness

STATION = "CP-1"


async def send(
    sessions: Harness,
    action: str,
    payload: dict[str, Any],
    version: OcppVersion,
    station_id: str = STATION,
) -> dict[str, Any] | None:
    """Send a station CALL; sessions' answer (schema-checked), None if the gateway answers."""
    invalid = schemas.validate(version, action, payload)
    assert invalid is None, invalid.description
    event = await sessions.call(station_id, action, payload, version=version)
    answer = None
    if event.data.owner == PARTY:
        reply = await sessions.answer()
        assert reply.error_code is None, reply.error_description
        assert reply.payload is not None
        violation = schemas.validate(version, action, reply.payload, response=True)
        assert violation is None, violation.description
        answer = reply.payload
    await sessions.processed(event)
    return answer


async def add_token(
    sessions: Harness, id_token: str, kind: str = "ISO14443", *, group_id: str | None = None
) -> None:
    async with sessions.service.factory() as session, session.begin():
        token = IdToken(
            id_token=id_token, type=kind, status=TokenStatus.ACCEPTED, group_id=group_id
        )
        session.add(token)


def published(
    sessions: Harness, topic: str = SESSIONS, event_type: str | None = None
) -> list[Envelope]:
    events = [delivery.envelope for delivery in sessions.bus.records(topic)]
    return [e for e in events if event_type is None or e.type == event_type]


def meter_events(sessions: Harness) -> list[Envelope]:
    return published(sessions, METER_VALUES, "meter.values")


async def charging_sessions(sessions: Harness, station_id: str = STATION) -> list[ChargingSession]:
    async with sessions.service.factory() as session:
        query = select(ChargingSession).where(col(ChargingSession.station_id) == station_id)
        return list((await session.exec(query.order_by(col(ChargingSession.started_at)))).all())


async def only_session(sessions: Harness, station_id: str = STATION) -> ChargingSession:
    [charging] = await charging_sessions(sessions, station_id)
    return charging


async def stored_samples(sessions: Harness, station_id: str = STATION) -> list[MeterSample]:
    async with sessions.service.factory() as session:
        query = select(MeterSample).where(col(MeterSample.station_id) == station_id)
        order = (col(MeterSample.timestamp), col(MeterSample.id))
        return list((await session.exec(query.order_by(*order))).all())


def sampled_v16(
    timestamp: str, value: str, measurand: str | None = None, **extra: str
) -> dict[str, Any]:
    """A 1.6 MeterValue with one sampledValue."""
    sampled: dict[str, Any] = {"value": value, **extra}
    if measurand is not None:
        sampled["measurand"] = measurand
    return {"timestamp": timestamp, "sampledValue": [sampled]}


def register_v2(
    timestamp: str, value: float, context: str = "Sample.Periodic", **extra: Any
) -> dict[str, Any]:
    """A 2.x MeterValue with the energy import register."""
    sampled = {
        "value": value,
        "measurand": "Energy.Active.Import.Register",
        "context": context,
        **extra,
    }
    return {"timestamp": timestamp, "sampledValue": [sampled]}


def transaction_event(
    event_type: str,
    seq_no: int,
    timestamp: str,
    transaction_id: str = "tx-1",
    *,
    trigger: str = "MeterValuePeriodic",
    meter: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A 2.x TransactionEventRequest."""
    info = {"transactionId": transaction_id} | extra.pop("info", {})
    payload = {
        "eventType": event_type,
        "timestamp": timestamp,
        "triggerReason": trigger,
        "seqNo": seq_no,
        "transactionInfo": info,
        **extra,
    }
    if meter:
        payload["meterValue"] = meter
    return payload


async def replay(
    sessions: Harness, version: OcppVersion, frames: list[str], station_id: str = STATION
) -> list[dict[str, Any] | None]:
    """Send raw OCPP-J CALL frames (``[2, messageId, action, payload]``) in order, as the
    station sent them; the answers sessions gave (None where the gateway answers)."""
    answers = []
    for frame in frames:
        message_type, _, action, payload = json.loads(frame)
        assert message_type == 2, frame
        answers.append(await send(sessions, action, payload, version, station_id))
    return answers


async def session_messages(sessions: Harness, session_id: str) -> list[SessionMessage]:
    async with sessions.service.factory() as session:
        query = select(SessionMessage).where(col(SessionMessage.session_id) == session_id)
        return list((await session.exec(query.order_by(col(SessionMessage.id)))).all())


def flag_reasons(charging: ChargingSession) -> list[str]:
    return [flag["reason"] for flag in charging.flags]
