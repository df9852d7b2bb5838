"""The Redis router against a real Redis: fenced routes, lossless mailboxes, commands end to end."""

import asyncio
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from csms_core.router import (
    CallAnswer,
    CloseConnection,
    CommandClient,
    CommandOutcome,
    CommandResult,
    Route,
    StationCommand,
    StationOffline,
    fixed,
)
from csms_core.router.base import Message
from csms_core.router.redis import POOL_CONNECTIONS, RedisRouter, _mailbox_key
from tests.cluster import Infra

pytestmark = pytest.mark.integration


@pytest.fixture
async def router(infra: Infra) -> AsyncIterator[RedisRouter]:
    async with RedisRouter(infra.redis_url) as router:
        yield router


@pytest.fixture
async def redis(infra: Infra) -> AsyncIterator[Redis]:
    client = Redis.from_url(infra.redis_url)
    yield client
    await client.aclose()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid4().hex[:12]}"


def route_of(station_id: str, gateway_id: str, connection_id: str) -> Route:
    return Route(
        station_id=station_id,
        gateway_id=gateway_id,
        connection_id=connection_id,
        ocpp_version="2.0.1",
    )


def result(number: int) -> CommandResult:
    return CommandResult(
        command_id=f"cmd-{number}",
        station_id="CP-001",
        action="Reset",
        outcome=CommandOutcome.RESULT,
        payload={"n": number},
    )


async def receive(mailbox: AsyncIterator[Message], timeout_s: float = 3) -> Message:
    return await asyncio.wait_for(anext(mailbox), timeout_s)


async def test_register_lookup_and_expiry(router: RedisRouter, redis: Redis) -> None:
    station_id = unique("CP")
    route = route_of(station_id, "gw-1", "conn-a")
    assert await router.lookup(station_id) is None

    await router.register(route, ttl_s=0.3)

    assert await router.lookup(station_id) == route
    assert 0 < await redis.pttl(f"csms:route:{station_id}") <= 300
    await asyncio.sleep(0.4)
    assert await router.lookup(station_id) is None


async def test_the_newest_registration_wins(router: RedisRouter) -> None:
    station_id = unique("CP")
    await router.register(route_of(station_id, "gw-1", "conn-a"), ttl_s=30)
    newer = route_of(station_id, "gw-2", "conn-b")
    await router.register(newer, ttl_s=30)
    assert await router.lookup(station_id) == newer


async def test_refresh_extends_our_routes_and_recreates_vanished_ones(
    router: RedisRouter, redis: Redis
) -> None:
    kept, vanished = unique("CP"), unique("CP")
    routes = [route_of(kept, "gw-1", "conn-a"), route_of(vanished, "gw-1", "conn-b")]
    for route in routes:
        await router.register(route, ttl_s=1)
    await redis.delete(f"csms:route:{vanished}")  # e.g. Redis restarted without persistence

    await router.refresh(routes, ttl_s=30)

    assert [await router.lookup(station_id) for station_id in (kept, vanished)] == routes
    assert await redis.pttl(f"csms:route:{kept}") > 1000
    assert await redis.pttl(f"csms:route:{vanished}") > 1000


async def test_refresh_never_overwrites_another_connections_route(
    router: RedisRouter, redis: Redis
) -> None:
    station_id = unique("CP")
    old = route_of(station_id, "gw-1", "conn-a")
    newer = route_of(station_id, "gw-2", "conn-b")
    await router.register(old, ttl_s=30)
    await router.register(newer, ttl_s=5)  # the station reconnected to another gateway

    await router.refresh([old], ttl_s=60)

    assert await router.lookup(station_id) == newer
    assert await redis.pttl(f"csms:route:{station_id}") <= 5000


async def test_unregister_deletes_only_its_own_route(router: RedisRouter) -> None:
    station_id = unique("CP")
    old = route_of(station_id, "gw-1", "conn-a")
    newer = route_of(station_id, "gw-2", "conn-b")
    await router.register(newer, ttl_s=30)

    await router.unregister(old)  # the old connection closes after the station moved
    assert await router.lookup(station_id) == newer

    await router.unregister(newer)
    assert await router.lookup(station_id) is None


async def test_batched_registration_and_removal_remove_only_their_own_routes(
    router: RedisRouter, redis: Redis
) -> None:
    ours = [route_of(unique("CP"), "gw-1", f"conn-{n}") for n in range(5)]
    assert await router.register_many(ours, ttl_s=30) == [None] * 5  # none held before
    assert [await router.lookup(route.station_id) for route in ours] == ours
    assert 0 < await redis.pttl(f"csms:route:{ours[0].station_id}") <= 30_000
    # Two stations reconnected to another gateway before this one's closes were sent.
    moved = {
        route.station_id: route_of(route.station_id, "gw-2", "conn-new") for route in ours[1::3]
    }
    for route in moved.values():
        await router.register(route, ttl_s=30)
    await router.unregister_many(ours)
    assert [await router.lookup(route.station_id) for route in ours] == [
        moved.get(route.station_id) for route in ours
    ]
    await router.unregister_many([])
    assert await router.register_many([], ttl_s=30) == []


async def test_a_registration_returns_the_route_it_replaced(
    router: RedisRouter, redis: Redis
) -> None:
    station_id, other = unique("CP"), unique("CP")
    held = route_of(station_id, "gw-1", "conn-a")
    await router.register(held, ttl_s=30)
    await redis.set(f"csms:route:{other}", b"not a route", px=30_000)
    newer = [route_of(station_id, "gw-2", "conn-b"), route_of(other, "gw-2", "conn-c")]
    # The holder before, read in the same step as the write; a value that is no route is
    # none (and is replaced).
    assert await router.register_many(newer, ttl_s=30) == [held, None]
    assert [await router.lookup(route.station_id) for route in newer] == newer
    assert await router.register_many(newer[:1], ttl_s=30) == newer[:1]  # itself again


async def test_a_message_sent_right_after_opening_is_delivered(router: RedisRouter) -> None:
    # Sent within the same millisecond as the mailbox opened: it must not be skipped.
    for _ in range(20):
        address = unique("sessions")
        mailbox = await router.open_mailbox(address)
        await router.send(address, result(0))
        assert await receive(mailbox) == result(0)


async def test_mailbox_loses_nothing_between_blocking_reads(router: RedisRouter) -> None:
    address = unique("sessions")
    mailbox = await router.open_mailbox(address)

    async def receive_one() -> Message:
        return await receive(mailbox, timeout_s=5)

    # sent while the reader is blocked in XREAD
    reading = asyncio.create_task(receive_one())
    await asyncio.sleep(0.2)
    await router.send(address, result(0))
    assert await reading == result(0)

    # sent after an XREAD block (1 s) ran out empty and the reader started the next one
    reading = asyncio.create_task(receive_one())
    await asyncio.sleep(1.3)
    await router.send(address, result(1))
    assert await reading == result(1)

    # many, quickly: all of them, in order
    for number in range(2, 302):
        await router.send(address, result(number))
    assert [await receive(mailbox) for _ in range(300)] == [result(n) for n in range(2, 302)]


async def test_garbage_in_a_mailbox_is_skipped_and_what_follows_delivered(
    router: RedisRouter, redis: Redis
) -> None:
    address = unique("gateway")
    mailbox = await router.open_mailbox(address)
    key = _mailbox_key(address)
    await redis.xadd(key, {"m": b"\x00not json"})
    await redis.xadd(key, {"m": b'{"kind": "command", "station_id": 7}'})  # not a message
    await redis.xadd(key, {"other": b"field"})  # no message field at all
    await router.send(address, result(1))
    assert await receive(mailbox) == result(1)


async def test_a_close_request_reaches_the_holding_gateway(router: RedisRouter) -> None:
    address = unique("gateway")
    mailbox = await router.open_mailbox(address)
    close = CloseConnection(station_id="CP-001", connection_id="conn-a")
    await router.send(address, close)
    assert await receive(mailbox) == close


async def test_mailboxes_are_separate(router: RedisRouter) -> None:
    ours, theirs = unique("sessions"), unique("sessions")
    mailbox = await router.open_mailbox(ours)
    await router.send(theirs, result(0))
    answer = CallAnswer(station_id="CP-001", connection_id="conn-a", message_id="m1", payload={})
    await router.send(ours, answer)
    assert await receive(mailbox) == answer


async def test_command_client_end_to_end(router: RedisRouter) -> None:
    station_id, gateway_id = unique("CP"), unique("gw")
    await router.register(route_of(station_id, gateway_id, "conn-a"), ttl_s=30)
    gateway = await router.open_mailbox(f"gateway:{gateway_id}")

    async def play_gateway() -> StationCommand:
        command = await receive(gateway)
        assert isinstance(command, StationCommand)
        await router.send(
            command.reply_to,
            CommandResult(
                command_id=command.command_id,
                station_id=command.station_id,
                action=command.action,
                outcome=CommandOutcome.ERROR,
                error_code="NotSupported",
                error_description="no such reset type",
                duration_ms=8.0,
            ),
        )
        return command

    async with CommandClient(router, "sessions") as client:
        result, command = await asyncio.gather(
            client.call(station_id, fixed("Reset", {"type": "OnIdle"}), 5), play_gateway()
        )
        with pytest.raises(StationOffline):
            await client.call(unique("CP"), fixed("Reset", {"type": "OnIdle"}), 5)

    assert (command.station_id, command.connection_id, command.reply_to) == (
        station_id,
        "conn-a",
        client.address,
    )
    assert (command.action, command.payload) == ("Reset", {"type": "OnIdle"})
    assert result == CommandResult(
        command_id=command.command_id,
        station_id=station_id,
        action="Reset",
        outcome=CommandOutcome.ERROR,
        error_code="NotSupported",
        error_description="no such reset type",
        duration_ms=8.0,
        ocpp_version="2.0.1",
    )


def command_for(station_id: str, payload: dict[str, object]) -> StationCommand:
    return StationCommand(
        command_id=unique("cmd"),
        station_id=station_id,
        connection_id="",
        action="DataTransfer",
        payload=payload,
        reply_to="sessions:test",
        deadline=2_000_000_000.0,
    )


async def test_send_routed_appends_with_the_routes_connection_id_in_one_step(
    router: RedisRouter, redis: Redis
) -> None:
    station_id, gateway_id = unique("CP"), unique("gw")
    # A connection id and a payload that JSON must escape (quotes, a slash, a backslash,
    # non-ASCII), and a payload that holds the very field name the router fills in.
    connection_id = 'conn "a"/\\ü'
    route = route_of(station_id, gateway_id, connection_id)
    await router.register(route, ttl_s=30)
    gateway = await router.open_mailbox(f"gateway:{gateway_id}")
    payload: dict[str, object] = {"vendorId": "v", "data": '"connection_id":"x"', "n": [1, {}]}
    command = command_for(station_id, payload)

    assert await router.send_routed(command, "2.0.1") == route

    sent = await receive(gateway)
    assert sent == command.model_copy(update={"connection_id": connection_id})
    assert 0 < await redis.ttl(_mailbox_key(f"gateway:{gateway_id}")) <= 300


async def test_send_routed_sends_nothing_without_a_route_or_to_another_version(
    router: RedisRouter, redis: Redis
) -> None:
    station_id, gateway_id = unique("CP"), unique("gw")
    mailbox = _mailbox_key(f"gateway:{gateway_id}")
    command = command_for(station_id, {"vendorId": "v"})

    assert await router.send_routed(command, "2.0.1") is None  # no gateway holds it
    route = Route(
        station_id=station_id, gateway_id=gateway_id, connection_id="c", ocpp_version="1.6"
    )
    await router.register(route, ttl_s=30)
    assert await router.send_routed(command, "2.0.1") == route  # built for another version

    assert await redis.exists(mailbox) == 0


async def test_command_client_sends_later_commands_without_a_lookup_of_their_own(
    infra: Infra,
) -> None:
    station_id, gateway_id = unique("CP"), unique("gw")
    async with RedisRouter(infra.redis_url) as router:
        await router.register(route_of(station_id, gateway_id, "conn-a"), ttl_s=30)
        gateway = await router.open_mailbox(f"gateway:{gateway_id}")
        counted = CountingRedisRouter(infra.redis_url)
        async with counted, CommandClient(counted, "sessions") as client:

            async def answer() -> StationCommand:
                command = await receive(gateway)
                assert isinstance(command, StationCommand)
                reply = result(0).model_copy(update={"command_id": command.command_id})
                await router.send(command.reply_to, reply)
                return command

            for _ in range(2):
                _, command = await asyncio.gather(
                    client.call(station_id, fixed("Reset", {"type": "OnIdle"}), 5), answer()
                )
                assert command.connection_id == "conn-a"
            # The station reconnects elsewhere, in 1.6: the guessed 2.0.1 call is refused by
            # the script, built again for 1.6 and sent to the new connection.
            other = unique("gw")
            new_route = Route(
                station_id=station_id, gateway_id=other, connection_id="b", ocpp_version="1.6"
            )
            await router.register(new_route, ttl_s=30)
            gateway = await router.open_mailbox(f"gateway:{other}")
            build = {"1.6": ("Reset", {"type": "Soft"}), "2.0.1": ("Reset", {"type": "OnIdle"})}
            finished, command = await asyncio.gather(
                client.call(station_id, lambda version: build[version.number], 5), answer()
            )
            await router.unregister(new_route)
            with pytest.raises(StationOffline):
                await client.call(station_id, fixed("Reset", {"type": "Soft"}), 5)

    assert counted.lookups == 1  # the first command's only
    assert (command.connection_id, command.payload) == ("b", {"type": "Soft"})
    assert finished.ocpp_version == "1.6"


async def test_a_command_to_a_gateway_gone_without_its_routes_times_out(
    router: RedisRouter, redis: Redis
) -> None:
    """The route outlived its gateway (it stopped before the TTL ran out): the command waits
    in that gateway's mailbox, unread, and the caller gets TIMEOUT, not a hang."""
    station_id, gateway_id = unique("CP"), unique("gw")
    await router.register(route_of(station_id, gateway_id, "conn-a"), ttl_s=30)
    async with CommandClient(router, "sessions") as client:
        outcome = await client.call(station_id, fixed("Reset", {"type": "OnIdle"}), 0.01)
    assert (outcome.outcome, outcome.ocpp_version) == (CommandOutcome.TIMEOUT, "2.0.1")
    assert await redis.xlen(_mailbox_key(f"gateway:{gateway_id}")) == 1


class CountingRedisRouter(RedisRouter):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.lookups = 0

    async def lookup(self, station_id: str) -> Route | None:
        self.lookups += 1
        return await super().lookup(station_id)


async def test_declarations_are_kept_per_deployment_and_withdrawn(infra: Infra) -> None:
    """Two deployments sharing a Redis (the test clusters) see only their own services."""
    from csms_core.calls.declared import SESSIONS

    ours, theirs = unique("ns"), unique("ns")
    async with (
        RedisRouter(infra.redis_url, namespace=ours) as router,
        RedisRouter(infra.redis_url, namespace=theirs) as other,
    ):
        await router.announce(SESSIONS, "r-1", ttl_s=30)
        [announced] = await router.declarations()
        assert (announced.replica, announced.declaration) == ("r-1", SESSIONS)
        assert 29 < announced.ttl_s <= 30
        assert await other.declarations() == []
        await router.withdraw("sessions", "r-1")
        assert await router.declarations() == []
        assert await router.withdrawn() == {"r-1"}
        assert await other.withdrawn() == frozenset()


async def test_a_gateway_holds_the_replicas_of_a_redis_that_lost_them(
    infra: Infra, redis: Redis
) -> None:
    """What a Redis restart does to the directory: every announcement gone. The gateway
    routes to the replicas it read until their TTL would have ended; a withdrawn one goes."""
    from csms_core.calls import AnswerDirectory
    from csms_core.calls.declared import SESSIONS

    namespace = unique("ns")
    async with RedisRouter(infra.redis_url, namespace=namespace) as router:
        directory = AnswerDirectory(router)
        await router.announce(SESSIONS, "r-1", ttl_s=30)
        await directory.refresh()
        keys = [key async for key in redis.scan_iter(match=f"csms:answers:{namespace}*")]
        assert keys
        await redis.delete(*keys)
        await directory.refresh()
        assert (await directory.route("1.6", "BootNotification", {})).owner == "sessions"
        await router.withdraw("sessions", "r-1")
        await directory.refresh()
        assert (await directory.route("1.6", "BootNotification", {})).owner == "nobody"


async def test_answer_many_reaches_each_gateways_mailbox_in_order(
    router: RedisRouter, redis: Redis
) -> None:
    gateways = [unique("gw"), unique("gw")]
    mailboxes = [await router.open_mailbox(f"gateway:{gateway}") for gateway in gateways]
    answers = [
        CallAnswer(station_id=f"CP-{n}", connection_id="c", message_id=str(n), payload={})
        for n in range(4)
    ]
    async with CommandClient(router, "sessions") as commands:
        await commands.answer_many([(answer, gateways[n % 2]) for n, answer in enumerate(answers)])

    assert [await receive(mailboxes[0]), await receive(mailboxes[0])] == [answers[0], answers[2]]
    assert [await receive(mailboxes[1]), await receive(mailboxes[1])] == [answers[1], answers[3]]
    for gateway in gateways:  # a mailbox nobody writes to expires
        assert 0 < await redis.ttl(f"csms:mailbox:gateway:{gateway}") <= 300


async def test_more_commands_at_once_than_pooled_connections_wait_for_one(
    router: RedisRouter,
) -> None:
    """A reconnect storm registers thousands of routes at once: each waits for a pooled
    connection instead of failing (redis-py's plain pool raises MaxConnectionsError)."""
    routes = [route_of(unique("CP"), "gw-1", f"conn-{n}") for n in range(3 * POOL_CONNECTIONS)]

    await asyncio.gather(*(router.register(route, ttl_s=30) for route in routes))

    found = await asyncio.gather(*(router.lookup(route.station_id) for route in routes))
    assert found == routes


async def test_a_reader_cancelled_right_after_a_message_or_while_blocked_ends_promptly(
    router: RedisRouter,
) -> None:
    """A cancellation, even one redis-py swallows, ends the reader within one blocking
    read (1 s), not for good: at both moments that hung a reader before (3e590d1)."""
    address = f"test:{uuid4().hex[:8]}"
    for round_ in range(6):
        mailbox = await router.open_mailbox(address)
        received: asyncio.Queue[Message] = asyncio.Queue()

        async def read(
            mailbox: AsyncIterator[Message] = mailbox,
            received: asyncio.Queue[Message] = received,
        ) -> None:
            async for message in mailbox:
                await received.put(message)

        reader = asyncio.create_task(read())
        result = CommandResult(
            command_id=f"c{round_}",
            station_id="CP-1",
            action="Reset",
            outcome=CommandOutcome.RESULT,
        )
        await router.send(address, result)
        assert await asyncio.wait_for(received.get(), 5) == result
        if round_ % 2:  # else right after the message, before its next read
            await asyncio.sleep(0.05)  # into the next blocking XREAD
        reader.cancel()
        done, _ = await asyncio.wait({reader}, timeout=3)
        assert done == {reader}, f"round {round_}: the reader did not end"
        assert reader.cancelled()


async def test_warm_opens_connections_the_pool_keeps(infra: Infra, redis: Redis) -> None:
    """A REST process's start-up (issue 10): its first commands find connections open."""
    name = unique("warm")

    async def held() -> int:
        clients: list[dict[str, str]] = await redis.client_list()
        return sum(1 for client in clients if client.get("name") == name)

    async with RedisRouter(infra.redis_url, client_name=name) as router:
        await router.warm(4)
        assert await held() == 4
        await router.lookup("CP-warm")  # on one of them
        assert await held() == 4
