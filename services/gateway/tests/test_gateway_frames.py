"""Malformed frames get the CALLERROR the spec names (OCPP 2.0.1 Part 4 §4.3; 1.6 OCPP-J §4.2.3).

The connection survives every one of them: each case ends with a Heartbeat answered.
"""

from typing import Any

import pytest

from csms_core import topics
from csms_core.bus.memory import InMemoryBus
from csms_core.identity import IdentityStore
from csms_core.router.memory import InMemoryRouter
from csms_gateway.server import Gateway
from tests.kits.gateway import Station, connect_station, running_gateway, settings_for_tests

V16, V201, V21 = "ocpp1.6", "ocpp2.0.1", "ocpp2.1"
STATUS_201 = {
    "timestamp": "2025-01-01T00:00:00Z",
    "connectorStatus": "Available",
    "evseId": 1,
    "connectorId": 1,
}
STATUS_16 = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}


async def assert_still_works(station: Station) -> None:
    answer = await station.call("Heartbeat", {}, message_id="hb")
    assert answer[:2] == [3, "hb"]
    assert set(answer[2]) == {"currentTime"}


async def error_for(gateway: Gateway, subprotocol: str, frame: list[Any] | str) -> list[Any]:
    async with connect_station(gateway, subprotocols=(subprotocol,)) as station:
        await station.send(frame)
        error = await station.receive()
        await assert_still_works(station)
    return error


@pytest.mark.parametrize(
    ("subprotocol", "code"), [(V16, "FormationViolation"), (V201, "RpcFrameworkError")]
)
async def test_not_json(gateway: Gateway, subprotocol: str, code: str) -> None:
    error = await error_for(gateway, subprotocol, "[2, 'm1', ")
    assert error[:4] == [4, "-1", code, "Frame is not valid JSON"]


@pytest.mark.parametrize(
    ("subprotocol", "code"), [(V16, "FormationViolation"), (V201, "RpcFrameworkError")]
)
async def test_not_an_array(gateway: Gateway, subprotocol: str, code: str) -> None:
    error = await error_for(gateway, subprotocol, '{"messageTypeId": 2}')
    assert error == [4, "-1", code, "Frame is not a JSON array of at least 3 elements", {}]


@pytest.mark.parametrize("frame", [[2, 42, "Heartbeat", {}], [2, None, "Heartbeat", {}]])
async def test_unreadable_message_id_is_answered_with_minus_one(
    gateway: Gateway, frame: list[Any]
) -> None:
    error = await error_for(gateway, V201, frame)
    assert error == [
        4,
        "-1",
        "RpcFrameworkError",
        "messageId must be a string of 1 to 36 characters",
        {},
    ]


@pytest.mark.parametrize(
    ("subprotocol", "code"), [(V16, "FormationViolation"), (V201, "MessageTypeNotSupported")]
)
async def test_unknown_message_type(gateway: Gateway, subprotocol: str, code: str) -> None:
    error = await error_for(gateway, subprotocol, [7, "m1", "Heartbeat", {}])
    assert error[:3] == [4, "m1", code]


@pytest.mark.parametrize("subprotocol", [V16, V201, V21])
async def test_unknown_action_is_not_implemented(gateway: Gateway, subprotocol: str) -> None:
    error = await error_for(gateway, subprotocol, [2, "m1", "FooBar", {}])
    assert error == [4, "m1", "NotImplemented", "unknown action FooBar", {}]


@pytest.mark.parametrize("subprotocol", [V16, V201])
async def test_csms_only_action_from_station_is_not_supported(
    gateway: Gateway, bus: InMemoryBus, subprotocol: str
) -> None:
    error = await error_for(gateway, subprotocol, [2, "m1", "Reset", {"type": "Hard"}])
    assert error == [
        4,
        "m1",
        "NotSupported",
        "Reset is sent by the CSMS, not by a charging station",
        {},
    ]
    assert [r.envelope.data["action"] for r in bus.records(topics.OCPP_INBOUND)] == ["Heartbeat"]


@pytest.mark.parametrize(
    ("subprotocol", "code"),
    [(V16, "OccurenceConstraintViolation"), (V201, "OccurrenceConstraintViolation")],
)
async def test_missing_required_field(gateway: Gateway, subprotocol: str, code: str) -> None:
    error = await error_for(gateway, subprotocol, [2, "m1", "BootNotification", {}])
    assert error[:3] == [4, "m1", code]
    assert error[4]["keyword"] == "required"


@pytest.mark.parametrize(
    ("subprotocol", "payload"),
    [(V16, {**STATUS_16, "connectorId": "1"}), (V201, {**STATUS_201, "evseId": "1"})],
)
async def test_wrong_type(gateway: Gateway, subprotocol: str, payload: dict[str, Any]) -> None:
    error = await error_for(gateway, subprotocol, [2, "m1", "StatusNotification", payload])
    assert error[:3] == [4, "m1", "TypeConstraintViolation"]


@pytest.mark.parametrize(
    ("subprotocol", "payload"),
    [(V16, {**STATUS_16, "status": "Bogus"}), (V201, {**STATUS_201, "connectorStatus": "Bogus"})],
)
async def test_bad_enum_value(gateway: Gateway, subprotocol: str, payload: dict[str, Any]) -> None:
    error = await error_for(gateway, subprotocol, [2, "m1", "StatusNotification", payload])
    assert error[:3] == [4, "m1", "PropertyConstraintViolation"]


@pytest.mark.parametrize(
    ("subprotocol", "code"), [(V16, "FormationViolation"), (V201, "FormatViolation")]
)
async def test_unknown_property(gateway: Gateway, subprotocol: str, code: str) -> None:
    error = await error_for(gateway, subprotocol, [2, "m1", "Heartbeat", {"foo": 1}])
    assert error[:3] == [4, "m1", code]


async def test_lenient_station_may_send_unknown_properties(
    gateway: Gateway, identities: IdentityStore, bus: InMemoryBus
) -> None:
    await identities.save("CP-1", lenient=True)
    async with connect_station(gateway) as station:
        answer = await station.call("Heartbeat", {"foo": 1}, message_id="m1")
    assert answer[:2] == [3, "m1"]
    assert bus.records(topics.OCPP_INBOUND)[0].envelope.data["payload"] == {"foo": 1}


async def test_invalid_frames_are_not_published(gateway: Gateway, bus: InMemoryBus) -> None:
    await error_for(gateway, V201, [2, "m1", "Heartbeat", {"foo": 1}])
    assert [r.envelope.data["message_id"] for r in bus.records(topics.OCPP_INBOUND)] == ["hb"]


@pytest.mark.parametrize(
    ("subprotocol", "code"), [(V16, "FormationViolation"), (V201, "FormatViolation")]
)
async def test_too_large_frame_is_refused_and_connection_kept(
    bus: InMemoryBus,
    router: InMemoryRouter,
    identities: IdentityStore,
    subprotocol: str,
    code: str,
) -> None:
    settings = settings_for_tests(max_frame_bytes=1024)
    async with running_gateway(settings, bus, router, identities) as gateway:
        error = await error_for(
            gateway, subprotocol, [2, "big", "DataTransfer", {"vendorId": "v", "data": "x" * 2000}]
        )
    assert error == [4, "big", code, "frame exceeds 1024 bytes", {}]


async def test_frame_beyond_the_hard_limit_closes_with_1009(
    bus: InMemoryBus, router: InMemoryRouter, identities: IdentityStore
) -> None:
    settings = settings_for_tests(max_frame_bytes=1024)
    async with (
        running_gateway(settings, bus, router, identities) as gateway,
        connect_station(gateway) as station,
    ):
        await station.send([2, "huge", "DataTransfer", {"vendorId": "v", "data": "x" * 5000}])
        await station.websocket.wait_closed()
        assert station.websocket.close_code == 1009


async def test_binary_message_is_refused(gateway: Gateway) -> None:
    error = await error_for(gateway, V201, b'[2, "m1", "Heartbeat", {}]')  # type: ignore[arg-type]
    assert error == [4, "-1", "FormatViolation", "binary frame", {}]
