"""OCPP 1.6 transactions: StartTransaction, MeterValues, StopTransaction → one session.

OCTT: TC_003/TC_004_1 (regular session), TC_039 (offline transaction, replayed).
"""

import random
from typing import Any

from csms_ocpp import OcppVersion
from tests.kits.sessions import Harness
from tests.kits.transactions import (
    add_token,
    charging_sessions,
    meter_events,
    only_session,
    published,
    sampled_v16,
    send,
    stored_samples,
)

V16 = OcppVersion.V16
START = {
    "connectorId": 1,
    "idTag": "TAG-1",
    "meterStart": 1000,
    "timestamp": "2025-01-01T10:00:00Z",
}


async def start(sessions: Harness, payload: dict[str, Any] = START) -> int:
    answer = await send(sessions, "StartTransaction", payload, V16)
    assert answer is not None
    transaction_id: int = answer["transactionId"]
    return transaction_id


def meter_values(transaction_id: int | None, *values: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {"connectorId": 1, "meterValue": list(values)}
    if transaction_id is not None:
        payload["transactionId"] = transaction_id
    return payload


def stop(transaction_id: int, meter_stop: int, **extra: Any) -> dict[str, Any]:
    return {
        "transactionId": transaction_id,
        "meterStop": meter_stop,
        "timestamp": "2025-01-01T11:00:00Z",
        **extra,
    }


async def test_session_events_carry_the_tokens_group_v16(sessions: Harness) -> None:
    """The token's group as the CSMS holds it (its parentIdTag) goes with the session's
    start and end: billing prices drivers' tariffs by it."""
    await add_token(sessions, "TAG-1", "idTag", group_id="FLEET-A")
    transaction_id = await start(sessions)
    assert await send(sessions, "StopTransaction", stop(transaction_id, 8500), V16) == {}
    [started] = published(sessions, event_type="session.started")
    [ended] = published(sessions, event_type="session.ended")
    token = {"id_token": "TAG-1", "type": "idTag", "group_id": "FLEET-A"}
    assert (started.data["id_token"], ended.data["id_token"]) == (token, token)


async def test_tc_004_1_regular_charging_session_v16(sessions: Harness) -> None:
    await add_token(sessions, "TAG-1")
    authorized = await send(sessions, "Authorize", {"idTag": "TAG-1"}, V16)
    assert authorized == {"idTagInfo": {"status": "Accepted"}}

    answer = await send(sessions, "StartTransaction", START, V16)
    assert answer is not None
    transaction_id = answer["transactionId"]
    assert answer == {"transactionId": transaction_id, "idTagInfo": {"status": "Accepted"}}
    sample = {
        "timestamp": "2025-01-01T10:30:00Z",
        "sampledValue": [
            {"value": "4.5", "unit": "kWh", "context": "Sample.Periodic"},
            {"value": "11", "unit": "kW", "measurand": "Power.Active.Import"},
            {"value": "16.0", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
            {"value": "15.5", "measurand": "Current.Import", "phase": "L2", "unit": "A"},
        ],
    }
    assert await send(sessions, "MeterValues", meter_values(transaction_id, sample), V16) is None
    end = sampled_v16("2025-01-01T11:00:00Z", "8500", context="Transaction.End")
    stopped = stop(transaction_id, 8500, reason="EVDisconnected", transactionData=[end])
    assert await send(sessions, "StopTransaction", stopped, V16) == {}

    charging = await only_session(sessions)
    assert charging.transaction_id == str(transaction_id)
    assert (charging.state, charging.stop_reason, charging.ocpp_stop_reason) == (
        "ended",
        "ev_disconnected",
        "EVDisconnected",
    )
    assert (charging.meter_start_wh, charging.meter_stop_wh, charging.energy_wh) == (
        1000.0,
        8500.0,
        7500.0,
    )
    assert (charging.last_power_w, charging.last_current_a) == (11000.0, 16.0)
    assert (charging.evse_id, charging.connector_id, charging.id_token) == (1, 1, "TAG-1")
    [started] = published(sessions, event_type="session.started")
    assert started.data == {
        "session_id": charging.session_id,
        "transaction_id": str(transaction_id),
        "evse_id": 1,
        "station_id": "CP-1",
        "connector_id": 1,
        "id_token": {"id_token": "TAG-1", "type": "idTag"},
        "started_at": "2025-01-01T10:00:00.000Z",
        "meter_start_wh": 1000.0,
    }
    [updated] = published(sessions, event_type="session.updated")
    assert updated.data | {"updated_at": None} == {
        "session_id": charging.session_id,
        "transaction_id": str(transaction_id),
        "evse_id": 1,
        "energy_wh": 3500.0,
        "power_w": 11000.0,
        "current_a": 16.0,
        "updated_at": None,
    }
    [ended] = published(sessions, event_type="session.ended")
    assert ended.data == {
        "session_id": charging.session_id,
        "transaction_id": str(transaction_id),
        "evse_id": 1,
        "ended_at": "2025-01-01T11:00:00.000Z",
        "stop_reason": "ev_disconnected",
        "ocpp_stop_reason": "EVDisconnected",
        "energy_wh": 7500.0,
        "duration_s": 3600.0,
        "meter_stop_wh": 8500.0,
        "started_at": "2025-01-01T10:00:00.000Z",
        "meter_start_wh": 1000.0,
        "final": True,
        "flags": [],
        "id_token": {"id_token": "TAG-1", "type": "idTag"},
    }
    first, second = meter_events(sessions)
    assert first.data["samples"][0] == {
        "timestamp": "2025-01-01T10:30:00+00:00",
        "measurand": "Energy.Active.Import.Register",
        "context": "Sample.Periodic",
        "value": 4500.0,
        "unit": "Wh",
    }
    assert first.data["session_id"] == charging.session_id
    assert [s["unit"] for s in first.data["samples"]] == ["Wh", "W", "A", "A"]
    assert second.data["samples"][0]["context"] == "Transaction.End"


async def test_resent_start_transaction_gets_the_same_transaction_id(sessions: Harness) -> None:
    first = await start(sessions)
    again = await start(sessions)
    other = await start(sessions, START | {"timestamp": "2025-01-01T12:00:00Z"})

    assert again == first
    assert other != first
    assert len(await charging_sessions(sessions)) == 2
    assert len(published(sessions, event_type="session.started")) == 2


async def test_tc_039_offline_transaction_replayed_twice_and_shuffled_v16(
    sessions: Harness,
) -> None:
    """The station queued everything while offline and re-sends it all, twice, in any order."""
    transaction_id = await start(sessions)
    assert await start(sessions) == transaction_id  # the queued Start re-sent
    queued = [
        ("MeterValues", meter_values(transaction_id, sampled_v16(f"2025-01-01T10:{m}:00Z", wh)))
        for m, wh in (("10", "2000"), ("20", "3000"), ("30", "4000"), ("40", "5500"))
    ]
    queued.append(("StopTransaction", stop(transaction_id, 6000, reason="Local")))
    replay = queued * 2
    random.Random(7).shuffle(replay)

    for action, payload in replay:
        await send(sessions, action, payload, V16)

    charging = await only_session(sessions)
    assert (charging.state, charging.energy_wh, charging.stop_reason) == ("ended", 5000.0, "local")
    assert len(await stored_samples(sessions)) == 4
    assert len(published(sessions, event_type="session.started")) == 1
    assert len(published(sessions, event_type="session.ended")) == 1
    assert len(meter_events(sessions)) == 4


async def test_stop_transaction_for_unknown_transaction_is_recorded(sessions: Harness) -> None:
    payload = stop(4242, 900, idTag="NOBODY", reason="PowerLoss")

    answer = await send(sessions, "StopTransaction", payload, V16)

    assert answer == {"idTagInfo": {"status": "Invalid"}}
    charging = await only_session(sessions)
    assert (charging.transaction_id, charging.state, charging.start_seen) == (
        "4242",
        "ended",
        False,
    )
    assert (charging.stop_reason, charging.meter_stop_wh) == ("power_loss", 900.0)
    assert [e.type for e in published(sessions)] == ["session.started", "session.ended"]


async def test_start_skips_a_transaction_id_a_station_made_up(sessions: Harness) -> None:
    await send(sessions, "StopTransaction", stop(1, 900), V16)  # an id we never allocated

    transaction_id = await start(sessions)

    assert transaction_id != 1
    assert len(await charging_sessions(sessions)) == 2


async def test_meter_values_for_unknown_transaction_are_recorded(sessions: Harness) -> None:
    payload = meter_values(77, sampled_v16("2025-01-01T10:10:00Z", "1500"))

    assert await send(sessions, "MeterValues", payload, V16) is None

    charging = await only_session(sessions)
    assert (charging.transaction_id, charging.state, charging.start_seen) == ("77", "active", False)
    [sample] = await stored_samples(sessions)
    assert (sample.session_id, sample.value) == (charging.session_id, 1500.0)


async def test_meter_values_without_transaction_belong_to_no_session(sessions: Harness) -> None:
    clock = sampled_v16("2025-01-01T10:00:00Z", "123.4", context="Sample.Clock", unit="kWh")
    payload = meter_values(None, clock) | {"connectorId": 0}

    assert await send(sessions, "MeterValues", payload, V16) is None

    assert await charging_sessions(sessions) == []
    [sample] = await stored_samples(sessions)
    assert (sample.session_id, sample.evse_id, sample.value, sample.unit) == (
        None,
        0,
        123400.0,
        "Wh",
    )
    [event] = meter_events(sessions)
    assert event.data == {
        "evse_id": 0,
        "samples": [
            {
                "timestamp": "2025-01-01T10:00:00+00:00",
                "measurand": "Energy.Active.Import.Register",
                "context": "Sample.Clock",
                "value": 123400.0,
                "unit": "Wh",
            }
        ],
        "late": False,
    }


async def test_meter_reset_mid_session_adds_the_segments(sessions: Harness) -> None:
    transaction_id = await start(sessions)
    readings = (("10", "2000"), ("20", "3000"), ("30", "100"), ("40", "600"))
    for minute, wh in readings:
        sample = sampled_v16(f"2025-01-01T10:{minute}:00Z", wh)
        await send(sessions, "MeterValues", meter_values(transaction_id, sample), V16)
    await send(sessions, "StopTransaction", stop(transaction_id, 600), V16)

    charging = await only_session(sessions)
    # 1000 → 3000 before the reset, 100 → 600 after it.
    assert charging.energy_wh == 2500.0


async def test_negative_register_reading_is_kept_but_not_counted(sessions: Harness) -> None:
    transaction_id = await start(sessions)
    for minute, wh in (("10", "2000"), ("20", "-50"), ("30", "3000")):
        sample = sampled_v16(f"2025-01-01T10:{minute}:00Z", wh)
        assert (
            await send(sessions, "MeterValues", meter_values(transaction_id, sample), V16) is None
        )

    charging = await only_session(sessions)
    assert charging.energy_wh == 2000.0
    assert [s.value for s in await stored_samples(sessions)] == [2000.0, -50.0, 3000.0]


async def test_signed_and_unreadable_values_are_kept(sessions: Harness) -> None:
    transaction_id = await start(sessions)
    signed = sampled_v16("2025-01-01T10:10:00Z", "AbCdEf==", format="SignedData")
    broken = sampled_v16("2025-01-01T10:20:00Z", "twelve", "Voltage")
    payload = meter_values(transaction_id, signed, broken)

    assert await send(sessions, "MeterValues", payload, V16) is None

    first, second = await stored_samples(sessions)
    assert (first.value, first.signed) == (None, {"format": "SignedData", "value": "AbCdEf=="})
    assert (second.value, second.raw_value, second.unit) == (None, "twelve", "V")
    assert (await only_session(sessions)).energy_wh == 0.0
