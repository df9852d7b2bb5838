"""REST commands: translated per OCPP version, sent through the router, answered by the station.

The test plays the gateway: it reads the command from the gateway mailbox and
answers it with a CommandResult to the command's ``reply_to``.
"""

import asyncio
import inspect
from typing import Any

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from csms_core.router import CommandOutcome, StationCommand
from csms_ocpp import OcppVersion
from csms_sessions.app import create_router
from csms_sessions.commands.api import router as commands_router
from tests.kits.sessions import Harness, assert_problem


async def send(
    api: httpx.AsyncClient, path: str, body: dict[str, Any], **params: Any
) -> "asyncio.Task[httpx.Response]":
    """Start the REST call; it completes once the 'gateway' replies."""
    return asyncio.create_task(
        api.post(f"/api/v1/stations/CP-1/commands/{path}", json=body, params=params)
    )


async def round_trip(
    api: httpx.AsyncClient,
    sessions: Harness,
    path: str,
    body: dict[str, Any],
    reply: dict[str, Any] | None = None,
    **result: Any,
) -> tuple[StationCommand, httpx.Response]:
    response = await send(api, path, body)
    command = await sessions.command()
    await sessions.reply(command, reply, **result)
    return command, await response


@pytest.mark.parametrize(
    ("version", "kind", "expected"),
    [
        (OcppVersion.V16, "hard", {"type": "Hard"}),
        (OcppVersion.V16, "soft", {"type": "Soft"}),
        (OcppVersion.V201, "hard", {"type": "Immediate"}),
        (OcppVersion.V21, "soft", {"type": "OnIdle"}),
    ],
)
async def test_tc_013_tc_014_tc_b_20_reset_round_trip(
    api: httpx.AsyncClient,
    sessions: Harness,
    version: OcppVersion,
    kind: str,
    expected: dict[str, Any],
) -> None:
    await sessions.connect("CP-1", "conn-1", version)

    command, response = await round_trip(
        api, sessions, "reset", {"type": kind}, {"status": "Accepted"}
    )

    assert (command.action, command.payload) == ("Reset", expected)
    assert command.station_id == "CP-1"
    assert command.connection_id == "conn-1"
    assert response.status_code == 200, response.text
    assert response.json() == {
        "command_id": command.command_id,
        "action": "Reset",
        "outcome": "result",
        "status": "Accepted",
        "response": {"status": "Accepted"},
    }


async def test_tc_b_25_reset_evse_v201(api: httpx.AsyncClient, sessions: Harness) -> None:
    await sessions.connect("CP-1", "conn-1", OcppVersion.V201)

    command, _ = await round_trip(
        api, sessions, "reset", {"type": "soft", "evse_id": 1}, {"status": "Scheduled"}
    )

    assert command.payload == {"type": "OnIdle", "evseId": 1}


async def test_reset_evse_is_not_possible_in_v16(api: httpx.AsyncClient, sessions: Harness) -> None:
    await sessions.connect("CP-1", "conn-1", OcppVersion.V16)

    response = await api.post(
        "/api/v1/stations/CP-1/commands/reset", json={"type": "soft", "evse_id": 1}
    )

    body = assert_problem(response, 422)
    assert body["type"] == "urn:csms:problem:not-in-this-ocpp-version"


@pytest.mark.parametrize(
    ("version", "body", "expected"),
    [
        (OcppVersion.V16, {"operative": False}, {"connectorId": 0, "type": "Inoperative"}),
        (
            OcppVersion.V16,
            {"operative": True, "evse_id": 2},
            {"connectorId": 2, "type": "Operative"},
        ),
        (OcppVersion.V201, {"operative": False}, {"operationalStatus": "Inoperative"}),
        (
            OcppVersion.V201,
            {"operative": True, "evse_id": 1, "connector_id": 2},
            {"operationalStatus": "Operative", "evse": {"id": 1, "connectorId": 2}},
        ),
    ],
)
async def test_tc_g_03_to_g_08_change_availability(
    api: httpx.AsyncClient,
    sessions: Harness,
    version: OcppVersion,
    body: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    await sessions.connect("CP-1", "conn-1", version)

    command, response = await round_trip(
        api, sessions, "change-availability", body, {"status": "Accepted"}
    )

    assert (command.action, command.payload) == ("ChangeAvailability", expected)
    assert response.json()["status"] == "Accepted"


@pytest.mark.parametrize(
    ("version", "body", "expected"),
    [
        (
            OcppVersion.V16,
            {"message": "StatusNotification", "evse_id": 1},
            {"requestedMessage": "StatusNotification", "connectorId": 1},
        ),
        (
            OcppVersion.V201,
            {"message": "MeterValues", "evse_id": 1},
            {"requestedMessage": "MeterValues", "evse": {"id": 1}},
        ),
        (OcppVersion.V201, {"message": "Heartbeat"}, {"requestedMessage": "Heartbeat"}),
    ],
)
async def test_tc_054_tc_f_11_tc_f_20_trigger_message(
    api: httpx.AsyncClient,
    sessions: Harness,
    version: OcppVersion,
    body: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    await sessions.connect("CP-1", "conn-1", version)

    command, response = await round_trip(
        api, sessions, "trigger-message", body, {"status": "Accepted"}
    )

    assert (command.action, command.payload) == ("TriggerMessage", expected)
    assert response.status_code == 200


async def test_trigger_message_unknown_in_version_is_422(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await sessions.connect("CP-1", "conn-1", OcppVersion.V16)

    response = await api.post(
        "/api/v1/stations/CP-1/commands/trigger-message", json={"message": "TransactionEvent"}
    )

    assert assert_problem(response, 422)["type"] == "urn:csms:problem:invalid-ocpp-payload"


async def test_raw_passes_the_payload_through(api: httpx.AsyncClient, sessions: Harness) -> None:
    await sessions.connect("CP-1", "conn-1", OcppVersion.V201)
    payload = {
        "getVariableData": [
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
        ]
    }
    reply = {
        "getVariableResult": [
            {
                "attributeStatus": "Accepted",
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
                "attributeValue": "300",
            }
        ]
    }

    command, response = await round_trip(
        api, sessions, "raw", {"action": "GetVariables", "payload": payload}, reply
    )

    assert (command.action, command.payload) == ("GetVariables", payload)
    assert response.json()["response"] == reply
    assert response.json()["status"] is None


async def test_raw_unknown_action_is_422(api: httpx.AsyncClient, sessions: Harness) -> None:
    await sessions.connect("CP-1", "conn-1", OcppVersion.V16)

    response = await api.post(
        "/api/v1/stations/CP-1/commands/raw", json={"action": "GetVariables", "payload": {}}
    )

    assert assert_problem(response, 422)["type"] == "urn:csms:problem:unknown-action"


async def test_command_to_unknown_station_is_404(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/stations/CP-1/commands/reset", json={"type": "hard"})

    assert assert_problem(response, 404)["type"] == "urn:csms:problem:unknown-station"


async def test_command_to_offline_station_is_409(api: httpx.AsyncClient) -> None:
    await api.put("/api/v1/stations/CP-1", json={})

    response = await api.post("/api/v1/stations/CP-1/commands/reset", json={"type": "hard"})

    assert assert_problem(response, 409)["type"] == "urn:csms:problem:station-offline"


@pytest.mark.parametrize(
    ("outcome", "error_code", "status"),
    [
        (CommandOutcome.OFFLINE, None, 409),
        (CommandOutcome.TIMEOUT, None, 504),
        (CommandOutcome.ERROR, "NotSupported", 502),
        (CommandOutcome.INVALID_RESPONSE, "FormatViolation", 502),
        (CommandOutcome.REJECTED, "FormatViolation", 422),
    ],
)
async def test_command_failures_are_problems(
    api: httpx.AsyncClient,
    sessions: Harness,
    outcome: CommandOutcome,
    error_code: str | None,
    status: int,
) -> None:
    await sessions.connect("CP-1", "conn-1", OcppVersion.V201)

    _, response = await round_trip(
        api, sessions, "reset", {"type": "hard"}, outcome=outcome, error_code=error_code
    )

    body = assert_problem(response, status)
    if error_code is not None:
        assert error_code in body["detail"]


async def test_no_result_in_time_is_504(api: httpx.AsyncClient, sessions: Harness) -> None:
    await sessions.connect("CP-1", "conn-1", OcppVersion.V16)

    response = await send(api, "reset", {"type": "hard"}, timeout_s=0.1)
    await sessions.command()  # the gateway got it, and then nothing comes back

    assert assert_problem(await response, 504)["type"] == "urn:csms:problem:timeout"


async def test_bad_command_bodies_are_422(api: httpx.AsyncClient, sessions: Harness) -> None:
    await sessions.connect("CP-1", "conn-1", OcppVersion.V201)
    for path, body in (
        ("reset", {"type": "warm"}),
        ("reset", {}),
        ("change-availability", {"operative": "maybe"}),
        ("change-availability", {"operative": True, "connector_id": 1}),
        ("trigger-message", {"message": ""}),
        ("raw", {"payload": {}}),
    ):
        response = await api.post(f"/api/v1/stations/CP-1/commands/{path}", json=body)
        assert_problem(response, 422)
    assert_problem(
        await api.post("/api/v1/stations/CP-1/commands/reset?timeout_s=0", json={"type": "hard"}),
        422,
    )


def _runs_in_a_thread(call: Any) -> bool:
    """Whether FastAPI runs this dependency in a worker thread (a plain ``def``)."""
    return not (
        inspect.iscoroutinefunction(call)
        or inspect.isasyncgenfunction(call)
        or inspect.iscoroutinefunction(getattr(call, "__call__", None))  # noqa: B004
    )


def _sync_dependencies(dependant: Dependant) -> list[str]:
    found: list[str] = []
    for sub in dependant.dependencies:
        if sub.call is not None and _runs_in_a_thread(sub.call):
            found.append(getattr(sub.call, "__qualname__", repr(sub.call)))
        found += _sync_dependencies(sub)
    return found


async def test_a_command_request_makes_no_worker_thread_hop(sessions: Harness) -> None:
    """Issue 10, commands in milliseconds: a plain ``def`` dependency runs in a worker
    thread, a hop and a wait for the GIL on every request of the command path."""
    routes = [route for route in commands_router.routes if isinstance(route, APIRoute)]
    assert len(routes) >= 4
    assert {route.path: _sync_dependencies(route.dependant) for route in routes} == {
        route.path: [] for route in routes
    }
    binding = create_router(sessions.service).dependencies  # the service the routes serve
    assert binding
    assert [d.dependency for d in binding if _runs_in_a_thread(d.dependency)] == []
