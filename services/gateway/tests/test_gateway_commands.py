"""CSMS-initiated calls via the gateway mailbox (ARCHITECTURE.md "Redis-routed reply channel")."""

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from csms_core import topics
from csms_core.bus.memory import InMemoryBus
from csms_core.router import (
    CommandClient,
    CommandOutcome,
    CommandResult,
    InvalidCommand,
    StationCommand,
    fixed,
)
from csms_core.router.base import gateway_address
from csms_core.router.memory import InMemoryRouter
from csms_gateway.server import Gateway
from csms_ocpp.secrets import redact
from tests.kits.gateway import connect_station, eventually

RESET = {"type": "Immediate"}


@pytest.fixture
async def client(router: InMemoryRouter) -> AsyncIterator[CommandClient]:
    async with CommandClient(router, "test") as command_client:
        yield command_client


def send_reset(client: CommandClient, timeout_s: float = 5.0) -> "asyncio.Task[CommandResult]":
    return asyncio.create_task(client.call("CP-1", fixed("Reset", RESET), timeout_s))


async def test_command_round_trip(
    gateway: Gateway, bus: InMemoryBus, client: CommandClient
) -> None:
    async with connect_station(gateway) as station:
        pending = send_reset(client)
        frame = await station.receive()
        assert frame[0] == 2
        assert frame[2:] == ["Reset", RESET]
        await station.send([3, frame[1], {"status": "Accepted"}])
        result = await pending
    assert result.outcome is CommandOutcome.RESULT
    assert result.payload == {"status": "Accepted"}
    assert result.station_id == "CP-1"
    await eventually(lambda: bool(bus.records(topics.OCPP_COMMAND_RESULTS)))
    event = bus.records(topics.OCPP_COMMAND_RESULTS)[0].envelope
    assert event.type == "ocpp.command.result"
    assert event.station_id == "CP-1"
    assert event.ocpp_version == "2.0.1"
    assert event.data["command_id"] == result.command_id == frame[1]
    assert event.data["outcome"] == "result"
    assert event.data["payload"] == {"status": "Accepted"}
    assert event.data["request"] == {"action": "Reset", "payload": RESET}
    assert event.data["gateway_id"] == "gw-test"
    opened = bus.records(topics.OCPP_CONNECTIONS)[0].envelope
    assert event.data["connection_id"] == opened.data["connection_id"]


async def test_tc_a_01_a_new_password_reaches_the_station_but_never_the_topic(
    gateway: Gateway, bus: InMemoryBus, client: CommandClient
) -> None:
    """2.0.1 A01: the station gets the new BasicAuthPassword; ocpp.command-results keeps
    the request with the value redacted (so does 1.6's AuthorizationKey, csms_ocpp.secrets)."""
    password = "n3w-password-of-20ch"
    request = {
        "setVariableData": [
            {
                "component": {"name": "SecurityCtrlr"},
                "variable": {"name": "BasicAuthPassword"},
                "attributeValue": password,
            },
            {
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
                "attributeValue": "60",
            },
        ]
    }
    async with connect_station(gateway) as station:
        pending = asyncio.create_task(client.call("CP-1", fixed("SetVariables", request), 5))
        frame = await station.receive()
        assert frame[3] == request  # the station gets the password itself
        answer = [
            {
                "attributeStatus": "Accepted",
                "component": item["component"],
                "variable": item["variable"],
            }
            for item in request["setVariableData"]
        ]
        await station.send([3, frame[1], {"setVariableResult": answer}])
        assert (await pending).outcome is CommandOutcome.RESULT
    await eventually(lambda: bool(bus.records(topics.OCPP_COMMAND_RESULTS)))
    record = bus.records(topics.OCPP_COMMAND_RESULTS)[0]
    assert password.encode() not in record.value
    sent = record.envelope.data["request"]["payload"]["setVariableData"]
    assert [item["attributeValue"] for item in sent] == ["***", "60"]


def test_a_16_authorization_key_is_redacted_and_other_keys_are_not() -> None:
    key = {"key": "AuthorizationKey", "value": "0123456789abcdef0123"}
    assert redact("ChangeConfiguration", key) == {"key": "AuthorizationKey", "value": "***"}
    interval = {"key": "HeartbeatInterval", "value": "60"}
    assert redact("ChangeConfiguration", interval) is interval
    assert redact("Reset", RESET) is RESET


async def test_one_outstanding_call_per_connection(gateway: Gateway, client: CommandClient) -> None:
    async with connect_station(gateway) as station:
        first, second = send_reset(client), send_reset(client)
        frame = await station.receive()
        # OCPP 2.0.1 Part 4 §4.1.1: the second CALL waits for the first one's answer.
        assert await station.silent_for(0.3)
        await station.send([3, frame[1], {"status": "Accepted"}])
        next_frame = await station.receive()
        assert next_frame[2] == "Reset"
        await station.send([3, next_frame[1], {"status": "Rejected"}])
        results = await asyncio.gather(first, second)
    assert sorted(result.payload["status"] for result in results if result.payload) == [
        "Accepted",
        "Rejected",
    ]


async def test_station_may_call_while_we_wait_for_its_answer(
    gateway: Gateway, client: CommandClient
) -> None:
    async with connect_station(gateway) as station:
        pending = send_reset(client)
        frame = await station.receive()
        heartbeat = await station.call("Heartbeat", {}, message_id="hb")
        assert heartbeat[:2] == [3, "hb"]
        await station.send([3, frame[1], {"status": "Accepted"}])
        assert (await pending).outcome is CommandOutcome.RESULT


async def test_command_for_a_stale_connection_is_offline_and_not_delivered(
    gateway: Gateway, router: InMemoryRouter, bus: InMemoryBus
) -> None:
    replies = await router.open_mailbox("test:replies")
    command = StationCommand(
        command_id="c1",
        station_id="CP-1",
        connection_id="a-superseded-connection",
        action="Reset",
        payload=RESET,
        reply_to="test:replies",
        deadline=time.time() + 5,
    )
    async with connect_station(gateway) as station:
        await router.send(gateway_address("gw-test"), command)
        result = await asyncio.wait_for(anext(aiter(replies)), 2)
        assert await station.silent_for(0.3)
    assert isinstance(result, CommandResult)
    assert result.outcome is CommandOutcome.OFFLINE
    await eventually(lambda: bool(bus.records(topics.OCPP_COMMAND_RESULTS)))
    assert bus.records(topics.OCPP_COMMAND_RESULTS)[0].envelope.data["outcome"] == "offline"


async def test_command_times_out_and_a_late_answer_is_dropped(
    gateway: Gateway, client: CommandClient
) -> None:
    async with connect_station(gateway) as station:
        pending = send_reset(client, timeout_s=0.3)
        frame = await station.receive()
        result = await pending
        await station.send([3, frame[1], {"status": "Accepted"}])
        assert result.outcome is CommandOutcome.TIMEOUT
        follow_up = send_reset(client)
        next_frame = await station.receive()
        await station.send([3, next_frame[1], {"status": "Accepted"}])
        assert (await follow_up).outcome is CommandOutcome.RESULT


async def test_station_callerror_is_error_outcome(gateway: Gateway, client: CommandClient) -> None:
    async with connect_station(gateway) as station:
        pending = send_reset(client)
        frame = await station.receive()
        await station.send([4, frame[1], "NotSupported", "no resets here", {}])
        result = await pending
    assert result.outcome is CommandOutcome.ERROR
    assert (result.error_code, result.error_description) == ("NotSupported", "no resets here")


async def test_answer_breaking_its_schema_is_invalid_response(
    gateway: Gateway, client: CommandClient
) -> None:
    async with connect_station(gateway) as station:
        pending = send_reset(client)
        frame = await station.receive()
        await station.send([3, frame[1], {"status": "Whatever"}])
        result = await pending
    assert result.outcome is CommandOutcome.INVALID_RESPONSE
    assert result.error_code == "PropertyConstraintViolation"


@pytest.mark.parametrize(
    ("action", "payload"),
    [("Reset", {"type": "Sometime"}), ("Heartbeat", {}), ("NoSuchAction", {})],
)
async def test_invalid_command_is_rejected_and_not_sent(
    gateway: Gateway, router: InMemoryRouter, action: str, payload: dict[str, str]
) -> None:
    """The gateway's own check, for a command that did not come through a CommandClient."""
    replies = await router.open_mailbox("test:replies")
    async with connect_station(gateway) as station:
        route = await router.lookup("CP-1")
        assert route is not None
        command = StationCommand(
            command_id="c-1",
            station_id="CP-1",
            connection_id=route.connection_id,
            action=action,
            payload=payload,
            reply_to="test:replies",
            deadline=time.time() + 5,
        )
        await router.send(gateway_address(route.gateway_id), command)
        result = await anext(replies)
        assert await station.silent_for(0.2)
    assert isinstance(result, CommandResult)
    assert result.outcome is CommandOutcome.REJECTED


@pytest.mark.parametrize(
    ("action", "payload"),
    [("Reset", {"type": "Sometime"}), ("Heartbeat", {}), ("NoSuchAction", {})],
)
async def test_invalid_command_is_refused_by_the_client_and_not_sent(
    gateway: Gateway, client: CommandClient, action: str, payload: dict[str, str]
) -> None:
    async with connect_station(gateway) as station:
        with pytest.raises(InvalidCommand) as refused:
            await client.call("CP-1", fixed(action, payload), 5)
        assert await station.silent_for(0.2)
    assert refused.value.action == action


async def test_data_transfer_may_go_both_ways(gateway: Gateway, client: CommandClient) -> None:
    async with connect_station(gateway, subprotocols=("ocpp1.6",)) as station:
        pending = asyncio.create_task(
            client.call("CP-1", fixed("DataTransfer", {"vendorId": "acme"}), 5)
        )
        frame = await station.receive()
        await station.send([3, frame[1], {"status": "Accepted"}])
        assert (await pending).outcome is CommandOutcome.RESULT


async def test_connection_closing_with_a_call_outstanding_is_offline(
    gateway: Gateway, client: CommandClient
) -> None:
    async with connect_station(gateway) as station:
        first, second = send_reset(client), send_reset(client)
        await station.receive()
    results = await asyncio.gather(first, second)
    assert [result.outcome for result in results] == [CommandOutcome.OFFLINE] * 2
