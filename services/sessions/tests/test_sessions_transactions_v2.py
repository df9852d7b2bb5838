"""OCPP 2.0.1 and 2.1 TransactionEvent Started/Updated/Ended → one session.

OCTT: TC_E_03/TC_E_04 (local start), TC_E_14 (EVDisconnected stop), TC_E_53
(seqNo 0 at the start of a transaction), TC_J_02/TC_J_09 (meter values in
TransactionEvent), offline replays (E04/E13: offline=true, any order, re-sent).
"""

import random
from typing import Any

import pytest

from csms_ocpp import OcppVersion
from tests.kits.sessions import Harness
from tests.kits.transactions import (
    add_token,
    charging_sessions,
    meter_events,
    only_session,
    published,
    register_v2,
    send,
    stored_samples,
    transaction_event,
)

pytestmark = pytest.mark.parametrize("version", [OcppVersion.V201, OcppVersion.V21])

TOKEN = {"idToken": "TOKEN-1", "type": "ISO14443"}
EVSE = {"id": 1, "connectorId": 1}


def full_session() -> list[dict[str, Any]]:
    """Started (1000 Wh), two Updated, Ended (8500 Wh): 7500 Wh delivered."""
    begin = register_v2("2025-01-01T10:00:00Z", 1000, "Transaction.Begin")
    power = {
        "timestamp": "2025-01-01T10:30:00Z",
        "sampledValue": [
            {
                "value": 4.5,
                "measurand": "Energy.Active.Import.Register",
                "unitOfMeasure": {"unit": "kWh"},
            },
            {
                "value": 110,
                "measurand": "Power.Active.Import",
                "unitOfMeasure": {"unit": "W", "multiplier": 2},
            },
            {
                "value": 54,
                "measurand": "SoC",
                "location": "EV",
                "unitOfMeasure": {"unit": "Percent"},
            },
        ],
    }
    end = register_v2("2025-01-01T11:00:00Z", 8.5, "Transaction.End", unitOfMeasure={"unit": "kWh"})
    return [
        transaction_event(
            "Started",
            0,
            "2025-01-01T10:00:00Z",
            trigger="Authorized",
            idToken=TOKEN,
            evse=EVSE,
            meter=[begin],
            info={"chargingState": "EVConnected"},
        ),
        transaction_event(
            "Updated",
            1,
            "2025-01-01T10:05:00Z",
            trigger="ChargingStateChanged",
            info={"chargingState": "Charging"},
        ),
        transaction_event("Updated", 2, "2025-01-01T10:30:00Z", meter=[power]),
        transaction_event(
            "Ended",
            3,
            "2025-01-01T11:00:00Z",
            trigger="EVCommunicationLost",
            meter=[end],
            info={"stoppedReason": "EVDisconnected", "chargingState": "Idle"},
        ),
    ]


async def test_tc_e_03_full_charging_session(sessions: Harness, version: OcppVersion) -> None:
    await add_token(sessions, "TOKEN-1")
    boot = {"chargingStation": {"vendorName": "ACME", "model": "W22"}, "reason": "PowerUp"}
    await send(sessions, "BootNotification", boot, version)
    assert await send(sessions, "Authorize", {"idToken": TOKEN}, version) == {
        "idTokenInfo": {"status": "Accepted"}
    }

    answers = [await send(sessions, "TransactionEvent", e, version) for e in full_session()]

    # Only the Started names an idToken: sessions answers it, the gateway answers the rest.
    assert answers == [{"idTokenInfo": {"status": "Accepted"}}, None, None, None]
    charging = await only_session(sessions)
    assert (charging.state, charging.energy_wh, charging.stop_reason) == (
        "ended",
        7500.0,
        "ev_disconnected",
    )
    assert (charging.meter_start_wh, charging.meter_stop_wh) == (1000.0, 8500.0)
    assert (charging.last_power_w, charging.soc_percent) == (11000.0, 54.0)
    assert (charging.charging_state, charging.trigger_reason) == ("Idle", "EVCommunicationLost")
    assert (charging.last_seq_no, charging.seq_gap, charging.offline) == (3, False, False)
    assert [e.type for e in published(sessions)] == [
        "session.started",
        "session.updated",
        "session.updated",
        "session.ended",
    ]
    started = published(sessions, event_type="session.started")[0]
    assert started.data == {
        "session_id": charging.session_id,
        "transaction_id": "tx-1",
        "evse_id": 1,
        "station_id": "CP-1",
        "connector_id": 1,
        "id_token": {"id_token": "TOKEN-1", "type": "ISO14443"},
        "started_at": "2025-01-01T10:00:00.000Z",
        "meter_start_wh": 1000.0,
    }
    updated = published(sessions, event_type="session.updated")[1]
    assert updated.data | {"updated_at": None} == {
        "session_id": charging.session_id,
        "transaction_id": "tx-1",
        "evse_id": 1,
        "energy_wh": 3500.0,
        "power_w": 11000.0,
        "soc_percent": 54.0,
        "updated_at": None,
    }
    [ended] = published(sessions, event_type="session.ended")
    assert ended.data == {
        "session_id": charging.session_id,
        "transaction_id": "tx-1",
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
        "id_token": {"id_token": "TOKEN-1", "type": "ISO14443"},
    }
    assert all(e.ocpp_version == version.number for e in published(sessions))
    assert [len(e.data["samples"]) for e in meter_events(sessions)] == [1, 3, 1]


async def test_session_events_carry_the_tokens_group(
    sessions: Harness, version: OcppVersion
) -> None:
    """The token's group as the CSMS holds it (its groupIdToken) goes with the session's
    start and end: billing prices drivers' tariffs by it."""
    await add_token(sessions, "TOKEN-1", group_id="FLEET-A")
    for event in full_session():
        await send(sessions, "TransactionEvent", event, version)
    [started] = published(sessions, event_type="session.started")
    [ended] = published(sessions, event_type="session.ended")
    token = {"id_token": "TOKEN-1", "type": "ISO14443", "group_id": "FLEET-A"}
    assert (started.data["id_token"], ended.data["id_token"]) == (token, token)


async def test_tc_e_03_cable_first_the_token_after_the_start_goes_with_the_update(
    sessions: Harness, version: OcppVersion
) -> None:
    """Cable plugged in first: the Started names no idToken, an Updated does. That update's
    session.updated names the driver with the token's group, once (billing re-prices the
    session with the driver's tariff); the other updates name nobody."""
    await add_token(sessions, "TOKEN-1", group_id="FLEET-A")
    start, updated, metered, end = full_session()
    start = {key: value for key, value in start.items() if key != "idToken"}
    start["triggerReason"] = "CablePluggedIn"
    named = updated | {"idToken": TOKEN, "triggerReason": "Authorized"}
    answers = [
        await send(sessions, "TransactionEvent", event, version)
        for event in (start, named, metered, end)
    ]
    group = {"idToken": "FLEET-A", "type": "Central"}
    assert answers == [
        None,
        {"idTokenInfo": {"status": "Accepted", "groupIdToken": group}},
        None,
        None,
    ]
    token = {"id_token": "TOKEN-1", "type": "ISO14443", "group_id": "FLEET-A"}
    [started] = published(sessions, event_type="session.started")
    assert started.data["id_token"] is None
    updates = published(sessions, event_type="session.updated")
    assert [u.data.get("id_token") for u in updates] == [token, None]
    [ended] = published(sessions, event_type="session.ended")
    assert ended.data["id_token"] == token


async def test_offline_replay_twice_and_shuffled_gives_one_session(
    sessions: Harness, version: OcppVersion
) -> None:
    await add_token(sessions, "TOKEN-1")
    replay = [event | {"offline": True} for event in full_session()] * 2
    random.Random(3).shuffle(replay)

    for event in replay:
        await send(sessions, "TransactionEvent", event, version)

    charging = await only_session(sessions)
    assert (charging.state, charging.energy_wh, charging.offline) == ("ended", 7500.0, True)
    assert (charging.started_at.isoformat(), charging.start_seen) == (
        "2025-01-01T10:00:00+00:00",
        True,
    )
    assert (charging.id_token, charging.evse_id, charging.seq_gap) == ("TOKEN-1", 1, False)
    assert charging.seen_seq_nos == [0, 1, 2, 3]
    assert len(await stored_samples(sessions)) == 5
    assert len(published(sessions, event_type="session.started")) == 1
    assert len(published(sessions, event_type="session.ended")) == 1


async def test_transaction_without_started(sessions: Harness, version: OcppVersion) -> None:
    """The Started was lost and the Ended came first: the Ended opens and ends the session;
    the Updated that follows is late data (stored, announced, never applied)."""
    *_, updated, ended = full_session()
    ended_first = [ended, updated | {"evse": EVSE}]

    for event in ended_first:
        assert await send(sessions, "TransactionEvent", event, version) is None

    charging = await only_session(sessions)
    assert (charging.start_seen, charging.started_at.isoformat()) == (
        False,
        "2025-01-01T11:00:00+00:00",
    )
    assert (charging.state, charging.final, charging.energy_wh) == ("ended", False, 0.0)
    assert (charging.late_messages, [f["reason"] for f in charging.flags]) == (1, ["late_data"])
    assert [e.type for e in published(sessions)] == [
        "session.started",
        "session.ended",
        "session.flagged",
        "session.late_data",
    ]
    assert [(s.value, s.late) for s in await stored_samples(sessions)] == [
        (4500.0, True),
        (11000.0, True),
        (54.0, True),
        (8500.0, False),
    ]


async def test_seq_no_gap_is_recorded(sessions: Harness, version: OcppVersion) -> None:
    started, _, updated, ended = full_session()

    for event in (started, updated, ended):
        await send(sessions, "TransactionEvent", event, version)

    charging = await only_session(sessions)
    assert (charging.seq_gap, charging.last_seq_no) == (True, 3)
    assert (charging.state, charging.energy_wh) == ("ended", 7500.0)


async def test_tc_e_53_seq_no_restarts_at_zero_per_transaction(
    sessions: Harness, version: OcppVersion
) -> None:
    for transaction_id, at in (("tx-1", "2025-01-01T10:00:00Z"), ("tx-2", "2025-01-01T11:00:00Z")):
        event = transaction_event(
            "Started", 0, at, transaction_id, trigger="CablePluggedIn", evse=EVSE
        )
        await send(sessions, "TransactionEvent", event, version)

    first, second = await charging_sessions(sessions)
    assert [first.transaction_id, second.transaction_id] == ["tx-1", "tx-2"]
    # One transaction per EVSE: the first one, never ended by the station, is superseded.
    assert (first.state, first.stop_reason, second.state) == ("ended", "superseded", "active")


async def test_meter_reset_and_negative_reading(sessions: Harness, version: OcppVersion) -> None:
    readings = [(0, 1000.0), (1, 3000.0), (2, -20.0), (3, 50.0), (4, 550.0)]
    for seq_no, wh in readings:
        event_type = "Started" if seq_no == 0 else "Updated"
        event = transaction_event(
            event_type,
            seq_no,
            f"2025-01-01T10:0{seq_no}:00Z",
            evse=EVSE,
            meter=[register_v2(f"2025-01-01T10:0{seq_no}:00Z", wh)],
        )
        assert await send(sessions, "TransactionEvent", event, version) is None

    charging = await only_session(sessions)
    assert charging.energy_wh == 2500.0  # 1000 → 3000, reset, 50 → 550; -20 ignored
    assert [s.value for s in await stored_samples(sessions)] == [1000, 3000, -20, 50, 550]


async def test_unknown_token_in_transaction_event_is_answered_unknown(
    sessions: Harness, version: OcppVersion
) -> None:
    started = full_session()[0] | {"idToken": {"idToken": "NOBODY", "type": "ISO14443"}}

    answer = await send(sessions, "TransactionEvent", started, version)

    assert answer == {"idTokenInfo": {"status": "Unknown"}}
    assert (await only_session(sessions)).id_token == "NOBODY"


async def test_tc_e_03_readings_of_the_same_second_are_all_counted(
    sessions: Harness, version: OcppVersion
) -> None:
    """Started, Updated and Ended within one second (1000 → 3500 → 6000 Wh): 5000 Wh.

    Each is a message of its own (its own seqNo); only a re-sent one is a duplicate.
    """
    at = "2025-01-01T10:00:00Z"
    events = [
        transaction_event(event_type, seq_no, at, evse=EVSE, meter=[register_v2(at, wh)])
        for seq_no, (event_type, wh) in enumerate(
            [("Started", 1000), ("Updated", 3500), ("Ended", 6000)]
        )
    ]

    for event in [*events, events[1]]:  # the Updated re-sent: not counted twice
        await send(sessions, "TransactionEvent", event, version)

    charging = await only_session(sessions)
    assert (charging.state, charging.energy_wh) == ("ended", 5000.0)
    assert [s.value for s in await stored_samples(sessions)] == [1000, 3500, 6000]
