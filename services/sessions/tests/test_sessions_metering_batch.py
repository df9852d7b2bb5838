"""2.x MeterValues of a batch, stored in bulk (csms_sessions.metering.bulk): each sample once,
as one message after another would store them, also beside a transaction's samples of the
same EVSE and second; a replayed batch stores and publishes nothing."""

from typing import Any
from uuid import uuid4

from csms_core.events import OcppCall
from csms_core.topics import OCPP_INBOUND
from csms_ocpp import OcppVersion
from tests.kits.sessions import Harness
from tests.kits.transactions import meter_events, register_v2, stored_samples, transaction_event

V201 = OcppVersion.V201


def meter_values(evse_id: int, *meter_value: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "MeterValues", {"evseId": evse_id, "meterValue": list(meter_value)}


def power(timestamp: str, watts: float) -> dict[str, Any]:
    sampled = {"value": watts, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W"}}
    return {"timestamp": timestamp, "sampledValue": [sampled]}


T0, T1 = "2025-01-01T10:00:00Z", "2025-01-01T10:00:10Z"
MESSAGES = [
    meter_values(1, register_v2(T0, 10)),
    meter_values(1, register_v2(T0, 10), power(T1, 7000)),  # the first again, and a new one
    meter_values(1, power(T1, 7000), register_v2(T1, 12)),  # the new one again, and another
    meter_values(2, register_v2(T0, 10)),  # another EVSE: not the same sample
    # A transaction on EVSE 1 whose reading is one of the EVSE's already (and one new).
    (
        "TransactionEvent",
        transaction_event(
            "Started",
            0,
            T1,
            trigger="CablePluggedIn",
            evse={"id": 1, "connectorId": 1},
            meter=[register_v2(T1, 12, "Transaction.Begin"), register_v2(T1, 13)],
        ),
    ),
    meter_values(1, register_v2(T1, 13)),  # the transaction's reading, sent again per EVSE
    ("Heartbeat", {}),
]


async def stored(sessions: Harness, station_id: str) -> list[tuple[Any, ...]]:
    rows = await stored_samples(sessions, station_id)
    return sorted(
        (r.evse_id, r.session_id is not None, r.timestamp, r.measurand, r.context, r.value)
        for r in rows
    )


def published(sessions: Harness, station_id: str) -> list[tuple[Any, ...]]:
    return [
        (e.data["evse_id"], [(s["measurand"], s["value"]) for s in e.data["samples"]])
        for e in meter_events(sessions)
        if e.station_id == station_id
    ]


async def test_a_batch_of_meter_values_stores_as_one_by_one_and_replays_to_nothing(
    sessions: Harness,
) -> None:
    one_by_one, batched = f"S-{uuid4().hex[:8]}", f"B-{uuid4().hex[:8]}"
    for action, payload in MESSAGES:
        await sessions.processed(await sessions.call(one_by_one, action, payload, version=V201))
    # Published before the consumer looks: applied together.
    sent = [await sessions.call(batched, a, p, version=V201) for a, p in MESSAGES]
    for event in sent:
        await sessions.processed(event)

    expected = await stored(sessions, one_by_one)
    assert len(expected) == 6  # 10 Wh on EVSE 1 and 2, 7000 W, 12 Wh, 12 and 13 Wh in the session
    assert await stored(sessions, batched) == expected
    assert published(sessions, batched) == published(sessions, one_by_one)

    # The batch again, all at once (a replay after a crash), then a marker of another
    # station: once that is applied, so is the replay (one lane on SQLite). Nothing changed.
    for event in sent:
        await sessions.publish(OCPP_INBOUND, event)
    marker = await sessions.call(f"M-{uuid4().hex[:8]}", "Heartbeat", {}, version=V201)
    await sessions.processed(marker)
    assert await stored(sessions, batched) == expected
    assert published(sessions, batched) == published(sessions, one_by_one)


async def test_a_sample_sent_again_in_a_new_message_of_a_later_batch_is_not_stored_again(
    sessions: Harness,
) -> None:
    first = await sessions.call("CP-1", *meter_values(1, power(T0, 5000)), version=V201)
    await sessions.processed(first)
    again = first.model_copy(update={"id": uuid4().hex})  # re-sent after a reconnect
    assert isinstance(again, OcppCall)
    await sessions.publish(OCPP_INBOUND, again)
    await sessions.processed(again)

    assert [row[-1] for row in await stored(sessions, "CP-1")] == [5000.0]
    assert len(published(sessions, "CP-1")) == 1
