"""Remote control over REST: remote start/stop, unlock, transaction status, per OCPP version.

The test plays the gateway: it reads the command from the gateway mailbox,
checks it against the official request schema, and answers it as the station.
"""

import asyncio
from typing import Any

import httpx
import pytest
from sqlmodel import select

from csms_core.router import CommandOutcome, StationCommand
from csms_ocpp import OcppVersion, schemas
from csms_sessions.remote.models import RemoteStart
from csms_sessions.remote.service import CHARGING_SESSION
from tests.kits.sessions import Harness, assert_problem


async def round_trip(
    api: httpx.AsyncClient,
    sessions: Harness,
    version: OcppVersion,
    path: str,
    body: dict[str, Any],
    reply: dict[str, Any] | None = None,
    **result: Any,
) -> tuple[StationCommand, httpx.Response]:
    """POST the command, answer it as the station; the command sent and the REST response."""
    response = asyncio.create_task(api.post(f"/api/v1/stations/CP-1/commands/{path}", json=body))
    command = await sessions.command()
    assert schemas.validate(version, command.action, command.payload) is None
    if reply is not None:
        assert schemas.validate(version, command.action, reply, response=True) is None
    await sessions.reply(command, reply, **result)
    return command, await response


def command_response(command: StationCommand, reply: dict[str, Any]) -> dict[str, Any]:
    return {
        "command_id": command.command_id,
        "action": command.action,
        "outcome": "result",
        "status": reply["status"],
        "response": reply,
    }


async def test_tc_011_1_remote_start_v16(api: httpx.AsyncClient, sessions: Harness) -> None:
    await sessions.connect("CP-1", "conn-1", OcppVersion.V16)

    command, response = await round_trip(
        api,
        sessions,
        OcppVersion.V16,
        "remote-start",
        {"id_token": "DRIVER-42", "evse_id": 1},
        {"status": "Accepted"},
    )

    assert (command.action, command.payload) == (
        "RemoteStartTransaction",
        {"idTag": "DRIVER-42", "connectorId": 1},
    )
    assert response.status_code == 200, response.text
    assert response.json() == command_response(command, {"status": "Accepted"})


async def test_tc_026_remote_start_rejected_v16(api: httpx.AsyncClient, sessions: Harness) -> None:
    await sessions.connect("CP-1", "conn-1", OcppVersion.V16)

    command, response = await round_trip(
        api, sessions, OcppVersion.V16, "remote-start", {"id_token": "T"}, {"status": "Rejected"}
    )

    assert command.payload == {"idTag": "T"}
    assert response.json()["status"] == "Rejected"


async def test_tc_059_remote_start_with_charging_profile_v16(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await sessions.connect("CP-1", "conn-1", OcppVersion.V16)
    profile = {
        "chargingProfileId": 1,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
        },
    }

    command, _ = await round_trip(
        api,
        sessions,
        OcppVersion.V16,
        "remote-start",
        {"id_token": "T", "evse_id": 2, "charging_profile": profile},
        {"status": "Accepted"},
    )

    assert command.payload == {"idTag": "T", "connectorId": 2, "chargingProfile": profile}


@pytest.mark.parametrize("version", [OcppVersion.V201, OcppVersion.V21])
async def test_tc_f_01_f_02_request_start_allocates_remote_start_ids(
    api: httpx.AsyncClient, sessions: Harness, version: OcppVersion
) -> None:
    await sessions.connect("CP-1", "conn-1", version)
    body = {"id_token": "DRIVER-42", "token_type": "ISO14443", "evse_id": 1}
    reply = {"status": "Accepted"}

    first, response = await round_trip(api, sessions, version, "remote-start", body, reply)
    second, _ = await round_trip(api, sessions, version, "remote-start", {"id_token": "X"}, reply)

    assert first.action == "RequestStartTransaction"
    remote_start_id = first.payload["remoteStartId"]
    assert first.payload == {
        "idToken": {"idToken": "DRIVER-42", "type": "ISO14443"},
        "remoteStartId": remote_start_id,
        "evseId": 1,
    }
    assert second.payload == {
        "idToken": {"idToken": "X", "type": "Central"},
        "remoteStartId": second.payload["remoteStartId"],
    }
    assert second.payload["remoteStartId"] != remote_start_id
    assert response.json() == command_response(first, reply)
    async with sessions.service.factory() as session:
        stored = await session.get(RemoteStart, remote_start_id)
    assert stored is not None
    assert (stored.station_id, stored.id_token, stored.token_type, stored.evse_id) == (
        "CP-1",
        "DRIVER-42",
        "ISO14443",
        1,
    )
    assert stored.status == "Accepted"


async def test_tc_012_remote_stop_v16(api: httpx.AsyncClient, sessions: Harness) -> None:
    await sessions.connect("CP-1", "conn-1", OcppVersion.V16)

    command, response = await round_trip(
        api,
        sessions,
        OcppVersion.V16,
        "remote-stop",
        {"transaction_id": 17},
        {"status": "Accepted"},
    )

    assert (command.action, command.payload) == ("RemoteStopTransaction", {"transactionId": 17})
    assert response.json()["status"] == "Accepted"


async def test_tc_028_remote_stop_rejected_v16(api: httpx.AsyncClient, sessions: Harness) -> None:
    await sessions.connect("CP-1", "conn-1", OcppVersion.V16)

    _, response = await round_trip(
        api,
        sessions,
        OcppVersion.V16,
        "remote-stop",
        {"transaction_id": "3"},
        {"status": "Rejected"},
    )

    assert response.json()["status"] == "Rejected"


async def test_tc_e_21_request_stop_v201(api: httpx.AsyncClient, sessions: Harness) -> None:
    await sessions.connect("CP-1", "conn-1", OcppVersion.V201)

    command, response = await round_trip(
        api,
        sessions,
        OcppVersion.V201,
        "remote-stop",
        {"transaction_id": "tx-abc"},
        {"status": "Accepted"},
    )

    assert (command.action, command.payload) == (
        "RequestStopTransaction",
        {"transactionId": "tx-abc"},
    )
    assert response.json() == command_response(command, {"status": "Accepted"})


async def test_remote_stop_by_session_id_v16(api: httpx.AsyncClient, sessions: Harness) -> None:
    """A session started on the wire is stopped by our session id: the 1.6 id is resolved."""
    await sessions.connect("CP-1", "conn-1", OcppVersion.V16)
    start = await sessions.call(
        "CP-1",
        "StartTransaction",
        {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "2026-11-25T10:00:00Z"},
    )
    transaction_id = (await sessions.answer()).payload["transactionId"]  # type: ignore[index]
    await sessions.processed(start)
    async with sessions.service.factory() as session:
        query = select(CHARGING_SESSION.c.session_id).where(CHARGING_SESSION.c.station_id == "CP-1")
        session_id = (await session.exec(query)).one()

    command, response = await round_trip(
        api,
        sessions,
        OcppVersion.V16,
        "remote-stop",
        {"session_id": session_id},
        {"status": "Accepted"},
    )

    assert command.payload == {"transactionId": transaction_id}
    assert response.status_code == 200


async def test_remote_stop_unknown_session_is_404(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await sessions.connect("CP-1", "conn-1", OcppVersion.V201)

    response = await api.post(
        "/api/v1/stations/CP-1/commands/remote-stop", json={"session_id": "nope"}
    )

    assert assert_problem(response, 404)["type"] == "urn:csms:problem:unknown-session"


@pytest.mark.parametrize(
    ("version", "body", "expected"),
    [
        (OcppVersion.V16, {"evse_id": 1}, {"connectorId": 1}),
        (OcppVersion.V16, {"evse_id": 2, "connector_id": 1}, {"connectorId": 2}),
        (OcppVersion.V201, {"evse_id": 1}, {"evseId": 1, "connectorId": 1}),
        (OcppVersion.V21, {"evse_id": 2, "connector_id": 2}, {"evseId": 2, "connectorId": 2}),
    ],
)
async def test_tc_017_tc_f_06_unlock_connector(
    api: httpx.AsyncClient,
    sessions: Harness,
    version: OcppVersion,
    body: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    await sessions.connect("CP-1", "conn-1", version)
    reply = {"status": "Unlocked"}

    command, response = await round_trip(api, sessions, version, "unlock-connector", body, reply)

    assert (command.action, command.payload) == ("UnlockConnector", expected)
    assert response.json() == command_response(command, reply)


@pytest.mark.parametrize(
    ("version", "status"),
    [
        (OcppVersion.V16, "UnlockFailed"),
        (OcppVersion.V16, "NotSupported"),
        (OcppVersion.V201, "UnknownConnector"),
        (OcppVersion.V201, "OngoingAuthorizedTransaction"),
    ],
)
async def test_tc_030_tc_031_unlock_failures_are_reported(
    api: httpx.AsyncClient, sessions: Harness, version: OcppVersion, status: str
) -> None:
    await sessions.connect("CP-1", "conn-1", version)

    _, response = await round_trip(
        api, sessions, version, "unlock-connector", {"evse_id": 9}, {"status": status}
    )

    assert response.status_code == 200
    assert response.json()["status"] == status


@pytest.mark.parametrize(
    ("body", "expected", "reply"),
    [
        (
            {"transaction_id": "tx-1"},
            {"transactionId": "tx-1"},
            {"ongoingIndicator": True, "messagesInQueue": False},
        ),
        ({}, {}, {"messagesInQueue": True}),
    ],
)
async def test_tc_e_29_tc_e_33_get_transaction_status(
    api: httpx.AsyncClient,
    sessions: Harness,
    body: dict[str, Any],
    expected: dict[str, Any],
    reply: dict[str, Any],
) -> None:
    await sessions.connect("CP-1", "conn-1", OcppVersion.V201)

    command, response = await round_trip(
        api, sessions, OcppVersion.V201, "get-transaction-status", body, reply
    )

    assert (command.action, command.payload) == ("GetTransactionStatus", expected)
    assert response.json()["response"] == reply
    assert response.json()["status"] is None


async def test_get_transaction_status_is_not_in_v16(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await sessions.connect("CP-1", "conn-1", OcppVersion.V16)

    response = await api.post(
        "/api/v1/stations/CP-1/commands/get-transaction-status", json={"transaction_id": "1"}
    )

    body = assert_problem(response, 422)
    assert body["type"] == "urn:csms:problem:not-in-this-ocpp-version"
    assert "not in OCPP 1.6" in body["detail"]


@pytest.mark.parametrize(
    ("version", "path", "body"),
    [
        (OcppVersion.V16, "remote-start", {"id_token": "T", "token_type": "ISO14443"}),
        (OcppVersion.V16, "remote-start", {"id_token": "T", "evse_id": 1, "connector_id": 2}),
        (OcppVersion.V201, "remote-start", {"id_token": "T", "evse_id": 1, "connector_id": 2}),
        (OcppVersion.V16, "remote-stop", {"transaction_id": "tx-abc"}),
        (OcppVersion.V16, "unlock-connector", {"evse_id": 1, "connector_id": 2}),
    ],
)
async def test_commands_not_expressible_in_the_version_are_422(
    api: httpx.AsyncClient,
    sessions: Harness,
    version: OcppVersion,
    path: str,
    body: dict[str, Any],
) -> None:
    await sessions.connect("CP-1", "conn-1", version)

    response = await api.post(f"/api/v1/stations/CP-1/commands/{path}", json=body)

    assert assert_problem(response, 422)["type"] == "urn:csms:problem:not-in-this-ocpp-version"
    async with sessions.service.factory() as session:
        assert await session.get(RemoteStart, 1) is None  # no id allocated for it


async def test_invalid_charging_profile_is_422_and_nothing_sent(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await sessions.connect("CP-1", "conn-1", OcppVersion.V201)

    response = await api.post(
        "/api/v1/stations/CP-1/commands/remote-start",
        json={"id_token": "T", "charging_profile": {"id": 1}},
    )

    body = assert_problem(response, 422)
    assert body["type"] == "urn:csms:problem:invalid-ocpp-payload"
    assert body["code"] == "OccurrenceConstraintViolation"
    async with sessions.service.factory() as session:
        assert await session.get(RemoteStart, 1) is None


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("remote-start", {}),
        ("remote-start", {"id_token": ""}),
        ("remote-start", {"id_token": "T", "evse_id": 0}),
        ("remote-start", {"id_token": "T", "colour": "red"}),
        ("remote-stop", {}),
        ("remote-stop", {"transaction_id": "1", "session_id": "s"}),
        ("unlock-connector", {}),
        ("unlock-connector", {"evse_id": "one"}),
        ("get-transaction-status", {"transaction_id": ""}),
    ],
)
async def test_malformed_bodies_are_422(
    api: httpx.AsyncClient, sessions: Harness, path: str, body: dict[str, Any]
) -> None:
    await sessions.connect("CP-1", "conn-1", OcppVersion.V201)

    response = await api.post(f"/api/v1/stations/CP-1/commands/{path}", json=body)

    assert assert_problem(response, 422)["type"] == "urn:csms:problem:invalid-request"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("remote-start", {"id_token": "T"}),
        ("remote-stop", {"transaction_id": "1"}),
        ("unlock-connector", {"evse_id": 1}),
        ("get-transaction-status", {}),
    ],
)
async def test_unknown_station_404_and_offline_409(
    api: httpx.AsyncClient, sessions: Harness, path: str, body: dict[str, Any]
) -> None:
    unknown = await api.post(f"/api/v1/stations/CP-1/commands/{path}", json=body)
    await api.put("/api/v1/stations/CP-1", json={})
    offline = await api.post(f"/api/v1/stations/CP-1/commands/{path}", json=body)

    assert assert_problem(unknown, 404)["type"] == "urn:csms:problem:unknown-station"
    assert assert_problem(offline, 409)["type"] == "urn:csms:problem:station-offline"


@pytest.mark.parametrize(
    ("outcome", "error_code", "status"),
    [
        (CommandOutcome.TIMEOUT, None, 504),
        (CommandOutcome.ERROR, "NotImplemented", 502),
        (CommandOutcome.OFFLINE, None, 409),
    ],
)
async def test_tc_011_2_remote_start_failures_are_problems(
    api: httpx.AsyncClient,
    sessions: Harness,
    outcome: CommandOutcome,
    error_code: str | None,
    status: int,
) -> None:
    await sessions.connect("CP-1", "conn-1", OcppVersion.V16)

    _, response = await round_trip(
        api,
        sessions,
        OcppVersion.V16,
        "remote-start",
        {"id_token": "T"},
        outcome=outcome,
        error_code=error_code,
    )

    assert_problem(response, status)
