"""DataTransfer both ways: a station's transfer dispatched to vendor extensions (TC_064,
TC_P_02), and the CSMS's own over REST (TC_P_01)."""

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from csms_ocpp import OcppVersion, schemas
from csms_sessions.datatransfer import REGISTRY
from csms_sessions.datatransfer.registry import DataTransferReply
from csms_sessions.stations.models import Station
from tests.kits.sessions import Harness, assert_problem

VERSIONS = [OcppVersion.V16, OcppVersion.V201, OcppVersion.V21]


async def transfer(sessions: Harness, version: OcppVersion, payload: dict[str, Any]) -> Any:
    """The CALLRESULT payload sessions answers a station's DataTransfer with (schema-checked)."""
    assert schemas.validate(version, "DataTransfer", payload) is None
    await sessions.call("CP-1", "DataTransfer", payload, version=version)
    answer = await sessions.answer()
    assert answer.error_code is None, answer.error_description
    assert schemas.validate(version, "DataTransfer", answer.payload or {}, response=True) is None
    return answer.payload


@pytest.fixture
def vendor() -> Iterator[list[tuple[str, Any]]]:
    """A test extension ``com.example``: Greet accepted, Fail raises, Refuse rejects."""
    seen: list[tuple[str, Any]] = []

    async def greet(station: Station, data: Any) -> DataTransferReply:
        seen.append((station.station_id, data))
        return "Accepted", {"hello": station.station_id}

    async def refuse(station: Station, data: Any) -> DataTransferReply:
        return "Rejected", None

    async def fail(station: Station, data: Any) -> DataTransferReply:
        raise RuntimeError("the extension has a bug")

    for message_id, handler in (("Greet", greet), ("Refuse", refuse), ("Fail", fail)):
        REGISTRY.register("com.example", message_id, handler)
    yield seen
    for message_id in ("Greet", "Refuse", "Fail"):
        REGISTRY.unregister("com.example", message_id)


@pytest.mark.parametrize("version", VERSIONS)
async def test_tc_064_tc_p_02_echo_extension(sessions: Harness, version: OcppVersion) -> None:
    data = "ping" if version is OcppVersion.V16 else {"ping": [1, 2]}

    answer = await transfer(
        sessions, version, {"vendorId": "org.csms.echo", "messageId": "echo", "data": data}
    )

    assert answer == {"status": "Accepted", "data": data}


@pytest.mark.parametrize("version", VERSIONS)
async def test_tc_p_02_unknown_vendor_and_message(sessions: Harness, version: OcppVersion) -> None:
    unknown_vendor = await transfer(sessions, version, {"vendorId": "com.nobody", "data": "x"})
    unknown_message = await transfer(
        sessions, version, {"vendorId": "org.csms.echo", "messageId": "shout"}
    )
    no_message = await transfer(sessions, version, {"vendorId": "org.csms.echo"})

    assert unknown_vendor == {"status": "UnknownVendorId"}
    assert unknown_message == {"status": "UnknownMessageId"}
    assert no_message == {"status": "UnknownMessageId"}


@pytest.mark.parametrize("version", VERSIONS)
async def test_registered_extension_gets_station_and_data(
    sessions: Harness, version: OcppVersion, vendor: list[tuple[str, Any]]
) -> None:
    greet = await transfer(
        sessions, version, {"vendorId": "com.example", "messageId": "Greet", "data": "hi"}
    )
    refused = await transfer(sessions, version, {"vendorId": "com.example", "messageId": "Refuse"})

    assert vendor == [("CP-1", "hi")]
    # OCPP 1.6 data is a string: a structured answer goes as its JSON text.
    expected = '{"hello":"CP-1"}' if version is OcppVersion.V16 else {"hello": "CP-1"}
    assert greet == {"status": "Accepted", "data": expected}
    assert refused == {"status": "Rejected"}


async def test_failing_extension_is_rejected_and_consumer_goes_on(
    sessions: Harness, vendor: list[tuple[str, Any]]
) -> None:
    failed = await transfer(
        sessions, OcppVersion.V201, {"vendorId": "com.example", "messageId": "Fail"}
    )
    after = await transfer(
        sessions, OcppVersion.V201, {"vendorId": "org.csms.echo", "messageId": "echo"}
    )

    assert failed == {"status": "Rejected"}
    assert after == {"status": "Accepted"}


async def test_vendor_catch_all_handler(sessions: Harness) -> None:
    async def anything(station: Station, data: Any) -> DataTransferReply:
        return "Accepted", None

    REGISTRY.register("com.catchall", None, anything)
    try:
        answer = await transfer(
            sessions, OcppVersion.V16, {"vendorId": "com.catchall", "messageId": "Whatever"}
        )
    finally:
        REGISTRY.unregister("com.catchall", None)

    assert answer == {"status": "Accepted"}


@pytest.mark.parametrize(
    ("version", "body", "expected"),
    [
        (
            OcppVersion.V16,
            {"vendor_id": "com.example", "message_id": "Hello", "data": "world"},
            {"vendorId": "com.example", "messageId": "Hello", "data": "world"},
        ),
        (
            OcppVersion.V201,
            {"vendor_id": "com.example", "data": {"a": [1, 2]}},
            {"vendorId": "com.example", "data": {"a": [1, 2]}},
        ),
    ],
)
async def test_tc_p_01_data_transfer_to_station(
    api: httpx.AsyncClient,
    sessions: Harness,
    version: OcppVersion,
    body: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    await sessions.connect("CP-1", "conn-1", version)
    reply = {"status": "Accepted", "data": "ok"}

    sending = asyncio.create_task(
        api.post("/api/v1/stations/CP-1/commands/data-transfer", json=body)
    )
    command = await sessions.command()
    assert schemas.validate(version, "DataTransfer", reply, response=True) is None
    await sessions.reply(command, reply)
    response = await sending

    assert (command.action, command.payload) == ("DataTransfer", expected)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "command_id": command.command_id,
        "action": "DataTransfer",
        "outcome": "result",
        "status": "Accepted",
        "response": reply,
    }


async def test_data_transfer_structured_data_to_v16_is_422(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await sessions.connect("CP-1", "conn-1", OcppVersion.V16)

    response = await api.post(
        "/api/v1/stations/CP-1/commands/data-transfer",
        json={"vendor_id": "com.example", "data": {"a": 1}},
    )

    body = assert_problem(response, 422)
    assert body["type"] == "urn:csms:problem:invalid-ocpp-payload"
    assert body["code"] == "TypeConstraintViolation"


@pytest.mark.parametrize(
    "body",
    [{}, {"vendor_id": ""}, {"vendor_id": "v", "message_id": "m" * 51}, {"vendor_id": "v", "x": 1}],
)
async def test_data_transfer_malformed_bodies_are_422(
    api: httpx.AsyncClient, sessions: Harness, body: dict[str, Any]
) -> None:
    await sessions.connect("CP-1", "conn-1", OcppVersion.V201)

    response = await api.post("/api/v1/stations/CP-1/commands/data-transfer", json=body)

    assert assert_problem(response, 422)["type"] == "urn:csms:problem:invalid-request"


async def test_data_transfer_unknown_404_offline_409(api: httpx.AsyncClient) -> None:
    path = "/api/v1/stations/CP-1/commands/data-transfer"
    unknown = await api.post(path, json={"vendor_id": "v"})
    await api.put("/api/v1/stations/CP-1", json={})
    offline = await api.post(path, json={"vendor_id": "v"})

    assert assert_problem(unknown, 404)["type"] == "urn:csms:problem:unknown-station"
    assert assert_problem(offline, 409)["type"] == "urn:csms:problem:station-offline"
