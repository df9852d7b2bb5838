"""The five cases of real, non-conformant stations (issue 15), replayed from raw frames in
the order they were seen, per version; the rule they follow is docs/sessions.md.

OCTT: 1.6 Core transactions (TC_004_1 regular session, TC_011_1 remote start first),
2.0.1 E block (TC_E_03 local start, TC_E_14 EVDisconnected stop), F (TC_F_02 remote start).
"""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from csms_core.bus.memory import InMemoryBus
from csms_core.router.memory import InMemoryRouter
from csms_ocpp import OcppVersion
from csms_sessions.remote.models import RemoteStart
from csms_sessions.transactions.models import SessionMessage
from tests.kits.sessions import Harness, assert_problem, running_sessions, settings_for_tests
from tests.kits.transactions import (
    add_token,
    charging_sessions,
    flag_reasons,
    meter_events,
    only_session,
    published,
    replay,
    session_messages,
    stored_samples,
)

V16 = OcppVersion.V16
V2 = pytest.mark.parametrize("version", [OcppVersion.V201, OcppVersion.V21])


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[Harness]:
    """Sessions with no idle grace; the tests run the resolution passes themselves."""
    settings = settings_for_tests(
        tmp_path, session_idle_grace_s=0, session_resolution_interval_s=3600
    )
    async with running_sessions(settings, InMemoryBus(), InMemoryRouter()) as harness:
        yield harness


async def remote_start(api: httpx.AsyncClient, sessions: Harness, body: dict[str, Any]) -> int:
    """POST remote-start, answered Accepted by the station; the remoteStartId (2.x) sent."""
    response = asyncio.create_task(
        api.post("/api/v1/stations/CP-1/commands/remote-start", json=body)
    )
    command = await sessions.command()
    await sessions.reply(command, {"status": "Accepted"})
    assert (await response).status_code == 200
    remote_start_id: int = command.payload.get("remoteStartId", 0)
    return remote_start_id


def active(sessions_now: list[Any]) -> list[str]:
    return [c.transaction_id for c in sessions_now if c.state == "active"]


# Case 1: a phantom session. -------------------------------------------------------------


def start_v16(message_id: str, at: str, meter_start: int = 0) -> str:
    return (
        f'[2,"{message_id}","StartTransaction",{{"connectorId":1,"idTag":"DRIVER-42",'
        f'"meterStart":{meter_start},"timestamp":"{at}"}}]'
    )


async def test_tc_011_1_second_start_on_a_busy_connector_is_no_phantom_v16(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    """Remote start, StartTransaction A, 2 s later B on the same connector (never stopped):
    A is superseded; B is resolved once the connector stays Available; a later C is
    the one active session, also after the station went offline."""
    await sessions.connect("CP-1", "conn-1", V16)
    await remote_start(api, sessions, {"id_token": "DRIVER-42", "evse_id": 1})

    answers = await replay(
        sessions,
        V16,
        [start_v16("1", "2025-01-01T10:00:00Z"), start_v16("2", "2025-01-01T10:00:02Z", 5)],
    )
    a, b = await charging_sessions(sessions)
    assert [a.transaction_id, b.transaction_id] == [
        str(answer["transactionId"]) for answer in answers if answer
    ]
    assert (a.state, a.stop_reason, a.ended_at, flag_reasons(a)) == (
        "ended",
        "superseded",
        b.started_at,
        ["superseded"],
    )
    assert a.remote_start_id is not None
    assert (b.state, b.remote_start_id) == ("active", None)

    await replay(
        sessions,
        V16,
        [
            '[2,"3","StatusNotification",{"connectorId":1,"errorCode":"NoError",'
            '"status":"Available","timestamp":"2025-01-01T10:01:00Z"}]'
        ],
    )
    assert await sessions.service.resolution.run_once() == [b.session_id]
    assert await sessions.service.resolution.run_once() == []  # resolved once

    await replay(sessions, V16, [start_v16("4", "2025-01-01T10:30:00Z", 9)])
    await sessions.disconnect("CP-1", "conn-1")
    await asyncio.sleep(0)
    a, b, c = await charging_sessions(sessions)
    assert (b.state, b.stop_reason, flag_reasons(b)) == ("ended", "evse_idle", ["resolved_idle"])
    assert b.ended_at is not None
    assert b.ended_at.isoformat() == "2025-01-01T10:01:00+00:00"
    assert active([a, b, c]) == [c.transaction_id]
    ended = published(sessions, event_type="session.ended")
    assert [(e.data["session_id"], e.data["stop_reason"]) for e in ended] == [
        (a.session_id, "superseded"),
        (b.session_id, "evse_idle"),
    ]
    # A's own stop, arriving now, is late data: it does not move the end.
    await replay(
        sessions,
        V16,
        [
            f'[2,"5","StopTransaction",{{"transactionId":{a.transaction_id},"meterStop":30,'
            '"timestamp":"2025-01-01T10:20:00Z"}]'
        ],
    )
    a = (await charging_sessions(sessions))[0]
    assert (a.ended_at, a.late_messages) == (b.started_at, 1)


async def test_tc_003_a_later_start_supersedes_a_phantom_v16(sessions: Harness) -> None:
    await replay(
        sessions,
        V16,
        [start_v16("1", "2025-01-01T10:00:00Z"), start_v16("2", "2025-01-01T11:00:00Z")],
    )

    older, newer = await charging_sessions(sessions)
    assert (older.stop_reason, newer.state) == ("superseded", "active")
    assert older.ended_at == newer.started_at


def started_v2(message_id: str, tx: str, at: str) -> str:
    return (
        f'[2,"{message_id}","TransactionEvent",{{"eventType":"Started","timestamp":"{at}",'
        f'"triggerReason":"CablePluggedIn","seqNo":0,"transactionInfo":{{"transactionId":"{tx}"}},'
        '"evse":{"id":1,"connectorId":1}}]'
    )


AVAILABLE_V2 = (
    '[2,"9","StatusNotification",{"timestamp":"2025-01-01T10:05:00Z",'
    '"connectorStatus":"Available","evseId":1,"connectorId":1}]'
)


@V2
@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ({"ongoingIndicator": False, "messagesInQueue": False}, "ended"),
        ({"ongoingIndicator": False, "messagesInQueue": True}, "waits"),
        ({"ongoingIndicator": True, "messagesInQueue": False}, "kept"),
    ],
)
async def test_tc_e_30_tc_e_31_phantom_resolved_after_asking_the_station(
    sessions: Harness, version: OcppVersion, status: dict[str, bool], outcome: str
) -> None:
    """Two Started on EVSE 1 (the second 2 s later): the first is superseded; the EVSE
    reported Available: the CSMS asks GetTransactionStatus before resolving the other."""
    await sessions.connect("CP-1", "conn-1", version)
    await replay(
        sessions,
        version,
        [
            started_v2("1", "tx-a", "2025-01-01T10:00:00Z"),
            started_v2("2", "tx-b", "2025-01-01T10:00:02Z"),
            AVAILABLE_V2,
        ],
    )
    first = (await charging_sessions(sessions))[0]
    assert (first.transaction_id, first.stop_reason) == ("tx-a", "superseded")

    resolving = asyncio.create_task(sessions.service.resolution.run_once())
    command = await sessions.command()
    assert (command.action, command.payload) == ("GetTransactionStatus", {"transactionId": "tx-b"})
    await sessions.reply(command, status)
    ended_ids = await resolving

    _, second = await charging_sessions(sessions)
    if outcome == "ended":
        assert ended_ids == [second.session_id]
        assert (second.state, second.stop_reason, flag_reasons(second)) == (
            "ended",
            "not_ongoing",
            ["resolved_not_ongoing"],
        )
        assert second.ended_at is not None
        assert second.ended_at.isoformat() == "2025-01-01T10:05:00+00:00"
        return
    assert (ended_ids, second.state) == ([], "active")
    assert (second.idle_since is None) == (outcome == "kept")
    if outcome == "waits":
        # The queued Ended arrives: it has its say (the station's own end).
        ended = (
            '[2,"10","TransactionEvent",{"eventType":"Ended","timestamp":"2025-01-01T10:04:00Z",'
            '"triggerReason":"EVCommunicationLost","seqNo":1,"offline":true,'
            '"transactionInfo":{"transactionId":"tx-b","stoppedReason":"EVDisconnected"}}]'
        )
        await replay(sessions, version, [ended])
        _, second = await charging_sessions(sessions)
        assert (second.state, second.stop_reason) == ("ended", "ev_disconnected")


@V2
async def test_tc_e_29_an_offline_station_is_not_guessed_about(
    sessions: Harness, version: OcppVersion
) -> None:
    await replay(sessions, version, [started_v2("1", "tx-a", "2025-01-01T10:00:00Z"), AVAILABLE_V2])

    assert await sessions.service.resolution.run_once() == []  # no route: nothing asked

    [charging] = await charging_sessions(sessions)
    assert (charging.state, charging.idle_since is not None) == ("active", True)


@V2
async def test_a_message_after_available_clears_the_idle_mark(
    sessions: Harness, version: OcppVersion
) -> None:
    updated = (
        '[2,"3","TransactionEvent",{"eventType":"Updated","timestamp":"2025-01-01T10:06:00Z",'
        '"triggerReason":"MeterValuePeriodic","seqNo":1,"transactionInfo":{"transactionId":"tx-a"}}]'
    )
    await replay(
        sessions, version, [started_v2("1", "tx-a", "2025-01-01T10:00:00Z"), AVAILABLE_V2, updated]
    )

    [charging] = await charging_sessions(sessions)
    assert (charging.state, charging.idle_since) == ("active", None)
    assert await sessions.service.resolution.run_once() == []


def dispositions(messages: list[SessionMessage]) -> list[str]:
    return [message.disposition.value for message in messages]


# Case 2: duplicate stops. -------------------------------------------------------------


async def test_tc_004_1_repeated_stop_transaction_is_late_data_v16(sessions: Harness) -> None:
    """The first StopTransaction ends the session; the same one again is a duplicate and
    a different one (later time, other reading) is late data that moves nothing."""
    await add_token(sessions, "TAG-1")
    [started] = await replay(
        sessions,
        V16,
        [
            '[2,"1","StartTransaction",{"connectorId":1,"idTag":"TAG-1","meterStart":1000,'
            '"timestamp":"2025-01-01T10:00:00Z"}]'
        ],
    )
    assert started is not None
    tx = started["transactionId"]
    stop = (
        f'[2,"2","StopTransaction",{{"transactionId":{tx},"meterStop":1500,'
        '"timestamp":"2025-01-01T10:30:00Z","reason":"Local"}]'
    )
    other_stop = (
        f'[2,"3","StopTransaction",{{"transactionId":{tx},"meterStop":1900,'
        '"timestamp":"2025-01-01T10:31:25Z","reason":"EVDisconnected"}]'
    )

    assert await replay(sessions, V16, [stop, stop, other_stop]) == [{}, {}, {}]

    charging = await only_session(sessions)
    assert (charging.ended_at.isoformat() if charging.ended_at else None) == (
        "2025-01-01T10:30:00+00:00"
    )
    assert (charging.meter_stop_wh, charging.energy_wh, charging.stop_reason) == (
        1500.0,
        500.0,
        "local",
    )
    assert (charging.final, charging.late_messages) == (True, 1)
    assert flag_reasons(charging) == ["late_data", "repeated_stop"]
    assert dispositions(await session_messages(sessions, charging.session_id)) == [
        "applied",
        "applied",
        "duplicate",
        "late",
    ]
    [ended] = published(sessions, event_type="session.ended")
    assert (ended.data["energy_wh"], ended.data["final"]) == (500.0, True)
    [late] = published(sessions, event_type="session.late_data")
    assert late.data | {"received_at": None} == {
        "session_id": charging.session_id,
        "transaction_id": str(tx),
        "evse_id": 1,
        "action": "StopTransaction",
        "event_type": None,
        "seq_no": None,
        "disposition": "late",
        "timestamp": "2025-01-01T10:31:25.000Z",
        "received_at": None,
        "samples": 0,
        "late_messages": 1,
    }


ENDED_TWICE_THEN_UPDATED = [
    '[2,"1","TransactionEvent",{"eventType":"Started","timestamp":"2025-01-01T10:00:00Z",'
    '"triggerReason":"CablePluggedIn","seqNo":0,"transactionInfo":{"transactionId":"tx-9"},'
    '"evse":{"id":1,"connectorId":1},"meterValue":[{"timestamp":"2025-01-01T10:00:00Z",'
    '"sampledValue":[{"value":0,"context":"Transaction.Begin"}]}]}]',
    '[2,"2","TransactionEvent",{"eventType":"Ended","timestamp":"2025-01-01T10:00:30Z",'
    '"triggerReason":"EVCommunicationLost","seqNo":1,"transactionInfo":{"transactionId":"tx-9",'
    '"stoppedReason":"EVDisconnected"},"meterValue":[{"timestamp":"2025-01-01T10:00:30Z",'
    '"sampledValue":[{"value":0,"context":"Transaction.End"}]}]}]',
    '[2,"3","TransactionEvent",{"eventType":"Ended","timestamp":"2025-01-01T10:01:55Z",'
    '"triggerReason":"EVCommunicationLost","seqNo":2,"transactionInfo":{"transactionId":"tx-9",'
    '"stoppedReason":"EVDisconnected"},"meterValue":[{"timestamp":"2025-01-01T10:01:55Z",'
    '"sampledValue":[{"value":21.69,"context":"Transaction.End"}]}]}]',
    '[2,"4","TransactionEvent",{"eventType":"Updated","timestamp":"2025-01-01T10:01:56Z",'
    '"triggerReason":"MeterValuePeriodic","seqNo":3,"transactionInfo":{"transactionId":"tx-9"},'
    '"meterValue":[{"timestamp":"2025-01-01T10:01:56Z","sampledValue":[{"value":21.69}]}]}]',
]


@V2
async def test_tc_e_14_repeated_ended_and_updated_after_ended_are_late_data(
    sessions: Harness, version: OcppVersion
) -> None:
    """The first Ended wins; a second Ended 85 s later and an Updated after it move
    neither the end (10:00:30) nor the energy (0 Wh)."""
    await replay(sessions, version, ENDED_TWICE_THEN_UPDATED)

    charging = await only_session(sessions)
    assert charging.ended_at is not None
    assert charging.ended_at.isoformat() == "2025-01-01T10:00:30+00:00"
    assert (charging.energy_wh, charging.meter_stop_wh, charging.final) == (0.0, 0.0, True)
    assert charging.late_messages == 2
    assert flag_reasons(charging) == ["late_data", "repeated_stop"]
    assert dispositions(await session_messages(sessions, charging.session_id)) == [
        "applied",
        "applied",
        "late",
        "late",
    ]
    assert [e.type for e in published(sessions)] == [
        "session.started",
        "session.ended",
        "session.flagged",
        "session.flagged",
        "session.late_data",
        "session.late_data",
    ]
    # The late readings are stored and published as late, never counted.
    assert [(s.value, s.late) for s in await stored_samples(sessions)] == [
        (0.0, False),
        (0.0, False),
        (21.69, True),
        (21.69, True),
    ]
    assert [e.data["late"] for e in meter_events(sessions)] == [False, False, True, True]


# Case 3: history rewritten after the end. -----------------------------------------------


@pytest.mark.parametrize(
    ("inside_wh", "meter_stop", "late_wh", "energy", "flags"),
    [
        ("120", 230, "257.44", 230.0, ["late_data"]),
        # The station's stop reading (0) is below a sample inside the session (100): the
        # stop reading counts, and the disagreement is flagged, not silently resolved.
        ("100", 0, "240.63", 0.0, ["meter_readings_disagree", "late_data"]),
    ],
)
async def test_tc_004_1_meter_values_after_stop_are_late_data_v16(
    sessions: Harness,
    inside_wh: str,
    meter_stop: int,
    late_wh: str,
    energy: float,
    flags: list[str],
) -> None:
    [started] = await replay(
        sessions,
        V16,
        [
            '[2,"1","StartTransaction",{"connectorId":1,"idTag":"TAG-1","meterStart":0,'
            '"timestamp":"2025-01-01T10:00:00Z"}]'
        ],
    )
    assert started is not None
    tx = started["transactionId"]

    await replay(
        sessions,
        V16,
        [
            f'[2,"2","MeterValues",{{"connectorId":1,"transactionId":{tx},"meterValue":['
            f'{{"timestamp":"2025-01-01T10:10:00Z","sampledValue":[{{"value":"{inside_wh}"}}]}}]}}]',
            f'[2,"3","StopTransaction",{{"transactionId":{tx},"meterStop":{meter_stop},'
            '"timestamp":"2025-01-01T10:20:00Z"}]',
            f'[2,"4","MeterValues",{{"connectorId":1,"transactionId":{tx},"meterValue":['
            f'{{"timestamp":"2025-01-01T10:20:05Z","sampledValue":[{{"value":"{late_wh}"}}]}}]}}]',
        ],
    )

    charging = await only_session(sessions)
    assert (charging.energy_wh, charging.meter_stop_wh) == (energy, float(meter_stop))
    assert charging.energy_wh == float(meter_stop) - (charging.meter_start_wh or 0)
    assert (charging.final, charging.late_messages, flag_reasons(charging)) == (True, 1, flags)
    [ended] = published(sessions, event_type="session.ended")
    assert ended.data["energy_wh"] == energy
    assert [e.type for e in published(sessions)][-1] == "session.late_data"


@V2
async def test_tc_e_03_updated_after_ended_keeps_the_energy(
    sessions: Harness, version: OcppVersion
) -> None:
    """59.71 Wh at the end; an Updated after the Ended (96.99 Wh) changes nothing."""
    frames = [
        '[2,"1","TransactionEvent",{"eventType":"Started","timestamp":"2025-01-01T10:00:00Z",'
        '"triggerReason":"CablePluggedIn","seqNo":0,"transactionInfo":{"transactionId":"t"},'
        '"evse":{"id":1},"meterValue":[{"timestamp":"2025-01-01T10:00:00Z",'
        '"sampledValue":[{"value":1000,"context":"Transaction.Begin"}]}]}]',
        '[2,"2","TransactionEvent",{"eventType":"Updated","timestamp":"2025-01-01T10:05:00Z",'
        '"triggerReason":"MeterValuePeriodic","seqNo":1,"transactionInfo":{"transactionId":"t"},'
        '"meterValue":[{"timestamp":"2025-01-01T10:05:00Z","sampledValue":[{"value":1030}]}]}]',
        '[2,"3","TransactionEvent",{"eventType":"Ended","timestamp":"2025-01-01T10:10:00Z",'
        '"triggerReason":"StopAuthorized","seqNo":2,"transactionInfo":{"transactionId":"t",'
        '"stoppedReason":"Local"},"meterValue":[{"timestamp":"2025-01-01T10:10:00Z",'
        '"sampledValue":[{"value":1059.71,"context":"Transaction.End"}]}]}]',
        '[2,"4","TransactionEvent",{"eventType":"Updated","timestamp":"2025-01-01T10:10:40Z",'
        '"triggerReason":"MeterValuePeriodic","seqNo":3,"transactionInfo":{"transactionId":"t"},'
        '"meterValue":[{"timestamp":"2025-01-01T10:10:40Z","sampledValue":[{"value":1096.99}]}]}]',
    ]

    await replay(sessions, version, frames)

    charging = await only_session(sessions)
    assert charging.energy_wh == pytest.approx(59.71)
    assert (charging.final, charging.late_messages, flag_reasons(charging)) == (
        True,
        1,
        ["late_data"],
    )
    [ended] = published(sessions, event_type="session.ended")
    assert ended.data["energy_wh"] == pytest.approx(59.71)


# Case 5: remote start's start time. ---------------------------------------------------


@V2
@pytest.mark.parametrize("remote_start_on_seq_no", [0, 1])
async def test_tc_f_02_tc_e_03_start_time_from_the_first_started(
    api: httpx.AsyncClient, sessions: Harness, version: OcppVersion, remote_start_on_seq_no: int
) -> None:
    """After RequestStartTransaction the station sends two Started (seqNo 0 without idToken
    or EVSE, seqNo 1 with them, 6 s later): the start is seqNo 0's, and the remote start
    is linked whichever event carries its id."""
    await sessions.connect("CP-1", "conn-1", version)
    body = {"id_token": "DRIVER-42", "token_type": "ISO14443", "evse_id": 1}
    response = asyncio.create_task(
        api.post("/api/v1/stations/CP-1/commands/remote-start", json=body)
    )
    command = await sessions.command()
    await sessions.reply(command, {"status": "Accepted"})
    assert (await response).status_code == 200
    remote_start_id = command.payload["remoteStartId"]
    link = f',"remoteStartId":{remote_start_id}'
    frames = [
        '[2,"1","TransactionEvent",{"eventType":"Started","timestamp":"2025-01-01T10:00:00Z",'
        '"triggerReason":"RemoteStart","seqNo":0,"transactionInfo":{"transactionId":"tx-r"'
        f"{link if remote_start_on_seq_no == 0 else ''}}}}}]",
        '[2,"2","TransactionEvent",{"eventType":"Started","timestamp":"2025-01-01T10:00:06Z",'
        '"triggerReason":"Authorized","seqNo":1,"transactionInfo":{"transactionId":"tx-r"'
        f"{link if remote_start_on_seq_no == 1 else ''}}},"
        '"idToken":{"idToken":"DRIVER-42","type":"ISO14443"},"evse":{"id":1,"connectorId":1}}]',
    ]

    await replay(sessions, version, frames)

    charging = await only_session(sessions)
    assert charging.started_at.isoformat() == "2025-01-01T10:00:00+00:00"
    assert (charging.start_seq_no, charging.remote_start_id) == (0, remote_start_id)
    assert (charging.id_token, charging.evse_id, charging.connector_id) == ("DRIVER-42", 1, 1)
    assert flag_reasons(charging) == ["repeated_start"]
    [started] = published(sessions, event_type="session.started")
    assert started.data["started_at"] == "2025-01-01T10:00:00.000Z"
    async with sessions.service.factory() as session:
        request = await session.get(RemoteStart, remote_start_id)
    assert request is not None
    assert request.session_id == charging.session_id
    assert len(await charging_sessions(sessions)) == 1


async def test_tc_011_1_remote_start_links_its_start_transaction_v16(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await sessions.connect("CP-1", "conn-1", V16)
    response = asyncio.create_task(
        api.post("/api/v1/stations/CP-1/commands/remote-start", json={"id_token": "T-1"})
    )
    command = await sessions.command()
    await sessions.reply(command, {"status": "Accepted"})
    assert (await response).status_code == 200

    await replay(
        sessions,
        V16,
        [
            '[2,"1","StartTransaction",{"connectorId":1,"idTag":"T-1","meterStart":0,'
            '"timestamp":"2025-01-01T10:00:00Z"}]'
        ],
    )

    charging = await only_session(sessions)
    async with sessions.service.factory() as session:
        request = await session.get(RemoteStart, charging.remote_start_id or 0)
    assert request is not None
    assert (request.session_id, request.id_token) == (charging.session_id, "T-1")


# Case 4: a device-model report with parts missing. ------------------------------------

REPORTS = "/api/v1/stations/CP-1/configuration/reports"


def notify_report(request_id: int, seq_no: int, *, tbc: bool) -> str:
    return (
        f'[2,"n{seq_no}","NotifyReport",{{"requestId":{request_id},"seqNo":{seq_no},'
        f'"generatedAt":"2025-01-01T10:00:00Z","tbc":{str(tbc).lower()},"reportData":[{{'
        f'"component":{{"name":"Part{seq_no}"}},"variable":{{"name":"V"}},'
        '"variableAttribute":[{"type":"Actual","value":"1"}]}]}]'
    )


async def get_base_report(api: httpx.AsyncClient, sessions: Harness, path: str) -> int:
    """POST ``path`` (refresh or repeat), the station answers Accepted; the requestId sent."""
    response = asyncio.create_task(api.post(path, json={"report_base": "FullInventory"}))
    command = await sessions.command()
    assert (command.action, command.payload["reportBase"]) == ("GetBaseReport", "FullInventory")
    await sessions.reply(command, {"status": "Accepted"})
    answer = await response
    assert answer.status_code == 200, answer.text
    request_id: int = command.payload["requestId"]
    assert answer.json()["request_id"] == request_id
    return request_id


@V2
async def test_tc_b_12_report_with_parts_missing_is_incomplete_and_can_be_repeated(
    api: httpx.AsyncClient, sessions: Harness, version: OcppVersion
) -> None:
    """GetBaseReport answered, then only part 2 (marked last): incomplete, missing 0 and 1;
    the request is repeated over REST and the repeat completes."""
    await sessions.processed(await sessions.connect("CP-1", "conn-1", version))
    first = await get_base_report(api, sessions, "/api/v1/stations/CP-1/configuration/refresh")

    await replay(sessions, version, [notify_report(first, 2, tbc=False)])

    report = (await api.get(f"{REPORTS}/{first}")).json()
    assert (report["state"], report["missing_seq_nos"], report["completed_at"]) == (
        "incomplete",
        [0, 1],
        None,
    )
    assert (report["seq_nos"], report["last_seq_no"]) == ([2], 2)
    [reported] = sessions.published("station.device-model.reported")
    assert (reported.data["report_state"], reported.data["missing_seq_nos"]) == (
        "incomplete",
        [0, 1],
    )

    repeat = await get_base_report(api, sessions, f"{REPORTS}/{first}/repeat")
    assert repeat != first
    await replay(
        sessions,
        version,
        [
            notify_report(repeat, 1, tbc=True),
            notify_report(repeat, 0, tbc=True),
            notify_report(repeat, 2, tbc=False),
        ],
    )

    listed = (await api.get(REPORTS)).json()
    assert [(r["request_id"], r["state"], r["repeat_of"]) for r in listed["items"]] == [
        (repeat, "complete", first),
        (first, "incomplete", None),
    ]
    assert listed["items"][0]["missing_seq_nos"] == []


async def test_unknown_report_is_404_and_a_bad_request_id_422(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await sessions.processed(await sessions.connect("CP-1", "conn-1", V16))
    assert_problem(await api.get(f"{REPORTS}/99"), 404)
    assert_problem(await api.post(f"{REPORTS}/99/repeat"), 404)
    assert_problem(await api.get(f"{REPORTS}/0"), 422)
