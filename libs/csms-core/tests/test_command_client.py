"""CommandClient over the embedded router, with the test playing the gateway ``gw-1``."""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from csms_core.router import (
    CallAnswer,
    CommandClient,
    CommandOutcome,
    CommandResult,
    InvalidCommand,
    Reconnected,
    Route,
    StationCommand,
    StationOffline,
    fixed,
    planned,
)
from csms_core.router.base import Message, Router
from csms_core.router.memory import InMemoryRouter
from csms_ocpp import OcppVersion

ROUTE = Route(station_id="CP-001", gateway_id="gw-1", connection_id="conn-a", ocpp_version="2.0.1")


@pytest.fixture
async def router() -> InMemoryRouter:
    return InMemoryRouter()


async def next_message(mailbox: AsyncIterator[Message]) -> Message:
    return await asyncio.wait_for(anext(mailbox), 2)


async def play_gateway(router: Router, mailbox: AsyncIterator[Message]) -> StationCommand:
    """Take one command from the gateway mailbox and answer it as the station did."""
    command = await next_message(mailbox)
    assert isinstance(command, StationCommand)
    await router.send(
        command.reply_to,
        CommandResult(
            command_id=command.command_id,
            station_id=command.station_id,
            action=command.action,
            outcome=CommandOutcome.RESULT,
            payload={"status": "Accepted"},
            duration_ms=12.5,
        ),
    )
    return command


async def test_call_goes_to_the_holding_gateway_and_resolves_on_its_result(
    router: InMemoryRouter,
) -> None:
    await router.register(ROUTE, ttl_s=30)
    gateway = await router.open_mailbox("gateway:gw-1")

    async with CommandClient(router, "sessions") as client:
        before = time.time()
        result, command = await asyncio.gather(
            client.call("CP-001", fixed("Reset", {"type": "Immediate"}), timeout_s=5),
            play_gateway(router, gateway),
        )

    assert command.model_dump(exclude={"command_id", "deadline"}) == {
        "kind": "command",
        "station_id": "CP-001",
        "connection_id": "conn-a",
        "action": "Reset",
        "payload": {"type": "Immediate"},
        "reply_to": client.address,
        "traceparent": None,
    }
    assert client.address.startswith("sessions:")
    assert before + 5 <= command.deadline <= time.time() + 5
    assert result == CommandResult(
        command_id=command.command_id,
        station_id="CP-001",
        action="Reset",
        outcome=CommandOutcome.RESULT,
        payload={"status": "Accepted"},
        duration_ms=12.5,
        ocpp_version="2.0.1",
    )


def transfer(n: int) -> dict[str, Any]:
    return {"vendorId": "v", "data": str(n)}


async def test_concurrent_calls_each_get_their_own_result(router: InMemoryRouter) -> None:
    await router.register(ROUTE, ttl_s=30)
    gateway = await router.open_mailbox("gateway:gw-1")

    async def gateway_answering_in_reverse() -> None:
        commands = [await next_message(gateway) for _ in range(3)]
        for command in reversed(commands):
            assert isinstance(command, StationCommand)
            await router.send(
                command.reply_to,
                CommandResult(
                    command_id=command.command_id,
                    station_id="CP-001",
                    action=command.action,
                    outcome=CommandOutcome.RESULT,
                    payload={"status": "Accepted", "data": command.payload["data"]},
                ),
            )

    async with CommandClient(router, "sessions") as client:
        calls = asyncio.gather(
            *(
                client.call("CP-001", fixed("DataTransfer", {"vendorId": "v", "data": str(n)}), 5)
                for n in range(3)
            )
        )
        results, _ = await asyncio.gather(calls, gateway_answering_in_reverse())

    assert [result.payload for result in results] == [
        {"status": "Accepted", "data": str(n)} for n in range(3)
    ]


async def test_station_without_route_is_offline(router: InMemoryRouter) -> None:
    async with CommandClient(router, "sessions") as client:
        with pytest.raises(StationOffline, match="CP-404"):
            await client.call("CP-404", fixed("Reset", {"type": "Immediate"}), timeout_s=5)


async def test_nobody_answering_gives_a_timeout_result(router: InMemoryRouter) -> None:
    await router.register(ROUTE, ttl_s=30)
    gateway = await router.open_mailbox("gateway:gw-1")

    async with CommandClient(router, "sessions") as client:
        # The client waits timeout_s plus 2 s of grace for the gateway's own timeout result.
        result = await client.call("CP-001", fixed("Reset", {"type": "Immediate"}), timeout_s=0.01)

    command = await next_message(gateway)
    assert isinstance(command, StationCommand)
    assert result.duration_ms == pytest.approx(2010.0)
    assert result == CommandResult(
        command_id=command.command_id,
        station_id="CP-001",
        action="Reset",
        outcome=CommandOutcome.TIMEOUT,
        error_description="no result from the gateway in time",
        duration_ms=result.duration_ms,
        ocpp_version="2.0.1",
    )


async def test_a_late_or_unknown_result_is_ignored(router: InMemoryRouter) -> None:
    await router.register(ROUTE, ttl_s=30)
    gateway = await router.open_mailbox("gateway:gw-1")

    async with CommandClient(router, "sessions") as client:
        stray = CommandResult(
            command_id="not-ours",
            station_id="CP-001",
            action="Reset",
            outcome=CommandOutcome.RESULT,
        )
        await router.send(client.address, stray)
        result, _ = await asyncio.gather(
            client.call("CP-001", fixed("Reset", {"type": "Immediate"}), timeout_s=5),
            play_gateway(router, gateway),
        )

    assert result.outcome is CommandOutcome.RESULT
    assert result.command_id != "not-ours"


async def test_answer_goes_to_the_gateway_that_received_the_call(router: InMemoryRouter) -> None:
    gateway = await router.open_mailbox("gateway:gw-2")
    answer = CallAnswer(
        station_id="CP-001",
        connection_id="conn-b",
        message_id="m-17",
        payload={"idTokenInfo": {"status": "Accepted"}},
    )

    async with CommandClient(router, "sessions") as client:
        await client.answer(answer, "gw-2")

    assert await next_message(gateway) == answer


class CountingRouter(InMemoryRouter):
    """The embedded router, counting route lookups."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    async def lookup(self, station_id: str) -> Route | None:
        self.lookups += 1
        return await super().lookup(station_id)


async def test_a_command_is_built_for_its_routes_version_with_one_lookup() -> None:
    router = CountingRouter()
    await router.register(ROUTE, ttl_s=30)
    gateway = await router.open_mailbox("gateway:gw-1")
    seen: list[OcppVersion] = []

    def build(version: OcppVersion) -> tuple[str, dict[str, Any]]:
        seen.append(version)
        reset_type = "Hard" if version is OcppVersion.V16 else "Immediate"
        return "Reset", {"type": reset_type}

    async with CommandClient(router, "sessions") as client:
        result, command = await asyncio.gather(
            client.call("CP-001", build, 5), play_gateway(router, gateway)
        )
    assert (router.lookups, seen) == (1, [OcppVersion.V201])
    assert (command.connection_id, command.payload) == ("conn-a", {"type": "Immediate"})
    assert (result.outcome, result.ocpp_version) == (CommandOutcome.RESULT, "2.0.1")


async def test_an_invalid_command_is_refused_before_it_is_sent(router: InMemoryRouter) -> None:
    await router.register(ROUTE, ttl_s=30)
    gateway = await router.open_mailbox("gateway:gw-1")
    async with CommandClient(router, "sessions") as client:
        with pytest.raises(InvalidCommand) as refused:
            await client.call("CP-001", fixed("Reset", {"type": "Sometime"}), 5)
        with pytest.raises(InvalidCommand, match="no message of this version"):
            await client.call("CP-001", fixed("GetConfiguration", {}), 5)  # 1.6 only
    assert (refused.value.action, refused.value.version) == ("Reset", OcppVersion.V201)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(gateway), 0.1)  # nothing reached the gateway


async def test_a_planned_call_is_not_sent_on_a_connection_of_another_version(
    router: InMemoryRouter,
) -> None:
    await router.register(ROUTE, ttl_s=30)  # the station speaks 2.0.1 now
    async with CommandClient(router, "sessions") as client:
        with pytest.raises(Reconnected):
            await client.call("CP-001", planned(OcppVersion.V16, "Reset", {"type": "Hard"}), 5)


async def test_a_call_planned_for_the_version_a_station_came_back_in_is_sent(
    router: InMemoryRouter,
) -> None:
    """The client guesses the version of the station's last command; a build that refuses
    the guess (planned for the version the station speaks now) is not refused for it."""
    old = ROUTE.model_copy(update={"ocpp_version": "1.6"})
    await router.register(old, ttl_s=30)
    gateway = await router.open_mailbox("gateway:gw-1")
    async with CommandClient(router, "sessions") as client:
        await asyncio.gather(
            client.call("CP-001", fixed("Reset", {"type": "Hard"}), 5),
            play_gateway(router, gateway),
        )
        await router.register(ROUTE.model_copy(update={"connection_id": "conn-b"}), ttl_s=30)
        result, command = await asyncio.gather(
            client.call("CP-001", planned(OcppVersion.V201, "Reset", {"type": "Immediate"}), 5),
            play_gateway(router, gateway),
        )
        with pytest.raises(Reconnected):  # and the other way round: refused for good
            await client.call("CP-001", planned(OcppVersion.V16, "Reset", {"type": "Hard"}), 5)
    assert (command.connection_id, result.ocpp_version) == ("conn-b", "2.0.1")
