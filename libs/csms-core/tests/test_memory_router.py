"""The embedded router: routes with a TTL, fenced by connection, and in-order mailboxes."""

import asyncio

from csms_core.router.base import (
    CallAnswer,
    CommandOutcome,
    CommandResult,
    Message,
    Route,
)
from csms_core.router.memory import InMemoryRouter

ROUTE = Route(station_id="CP-001", gateway_id="gw-1", connection_id="conn-a", ocpp_version="2.0.1")
NEWER = Route(station_id="CP-001", gateway_id="gw-2", connection_id="conn-b", ocpp_version="2.0.1")


def result(number: int) -> CommandResult:
    return CommandResult(
        command_id=f"cmd-{number}",
        station_id="CP-001",
        action="Reset",
        outcome=CommandOutcome.RESULT,
        payload={"status": "Accepted"},
    )


async def test_register_then_lookup() -> None:
    async with InMemoryRouter() as router:
        assert await router.lookup("CP-001") is None
        await router.register(ROUTE, ttl_s=30)
        assert await router.lookup("CP-001") == ROUTE
        assert ROUTE.address == "gateway:gw-1"


async def test_a_registration_returns_the_live_route_it_replaced() -> None:
    router = InMemoryRouter()
    assert await router.register_many([ROUTE], ttl_s=0.05) == [None]
    assert await router.register_many([NEWER], ttl_s=30) == [ROUTE]
    await router.register(ROUTE, ttl_s=0.05)
    await asyncio.sleep(0.1)
    assert await router.register_many([NEWER], ttl_s=30) == [None]  # expired: none held


async def test_a_route_expires_after_its_ttl() -> None:
    router = InMemoryRouter()
    await router.register(ROUTE, ttl_s=0.05)
    await asyncio.sleep(0.1)
    assert await router.lookup("CP-001") is None


async def test_the_newest_registration_wins() -> None:
    router = InMemoryRouter()
    await router.register(ROUTE, ttl_s=30)
    await router.register(NEWER, ttl_s=30)
    assert await router.lookup("CP-001") == NEWER


async def test_refresh_extends_and_recreates_our_route_only() -> None:
    router = InMemoryRouter()
    await router.refresh([ROUTE], ttl_s=0.05)  # vanished (never there): re-created
    assert await router.lookup("CP-001") == ROUTE
    await router.refresh([ROUTE], ttl_s=30)
    await asyncio.sleep(0.1)
    assert await router.lookup("CP-001") == ROUTE  # extended past the first TTL

    await router.register(NEWER, ttl_s=30)
    await router.refresh([ROUTE], ttl_s=30)  # the station reconnected elsewhere
    assert await router.lookup("CP-001") == NEWER


async def test_unregister_deletes_only_its_own_route() -> None:
    router = InMemoryRouter()
    await router.register(NEWER, ttl_s=30)
    await router.unregister(ROUTE)  # the old connection closes after the station moved
    assert await router.lookup("CP-001") == NEWER
    await router.unregister(NEWER)
    assert await router.lookup("CP-001") is None


async def test_batched_registration_and_removal_remove_only_their_own_routes() -> None:
    router = InMemoryRouter()
    ours = [
        Route(station_id=f"CP-{n}", gateway_id="gw-1", connection_id=f"c{n}", ocpp_version="2.0.1")
        for n in range(4)
    ]
    await router.register_many(ours, ttl_s=30)
    assert [await router.lookup(route.station_id) for route in ours] == ours
    taken_over = ours[1].model_copy(update={"gateway_id": "gw-2", "connection_id": "x"})
    await router.register(taken_over, ttl_s=30)
    await router.unregister_many(ours)
    assert [await router.lookup(route.station_id) for route in ours] == [
        None,
        taken_over,
        None,
        None,
    ]
    await router.unregister_many([])  # nothing to do


async def test_mailbox_delivers_in_order_including_messages_sent_before_reading() -> None:
    router = InMemoryRouter()
    mailbox = await router.open_mailbox("sessions:abc")
    await router.send("sessions:abc", result(0))
    answer = CallAnswer(
        station_id="CP-001", connection_id="conn-a", message_id="m1", payload={"status": "ok"}
    )
    await router.send("sessions:abc", answer)
    await router.send("sessions:other", result(99))

    assert await asyncio.wait_for(anext(mailbox), 1) == result(0)
    assert await asyncio.wait_for(anext(mailbox), 1) == answer

    async def receive() -> Message:
        return await anext(mailbox)

    reading = asyncio.create_task(receive())
    await asyncio.sleep(0.01)
    assert not reading.done()  # nothing else was sent to this address
    await router.send("sessions:abc", result(1))
    assert await asyncio.wait_for(reading, 1) == result(1)


async def test_send_many_appends_each_message_to_its_mailbox_in_order() -> None:
    router = InMemoryRouter()
    first = await router.open_mailbox("gateway:gw-1")
    second = await router.open_mailbox("gateway:gw-2")
    answers = [
        CallAnswer(station_id=f"CP-{n}", connection_id="c", message_id=str(n), payload={})
        for n in range(3)
    ]

    await router.send_many(
        [("gateway:gw-1", answers[0]), ("gateway:gw-2", answers[1]), ("gateway:gw-1", answers[2])]
    )

    assert [await anext(first), await anext(first)] == [answers[0], answers[2]]
    assert await anext(second) == answers[1]
