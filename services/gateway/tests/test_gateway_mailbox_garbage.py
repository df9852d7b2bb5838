"""Entries that are no message, in a gateway's mailbox and a service's reply stream (real
Redis): each is logged, counted and skipped, and both readers keep serving."""

import asyncio
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from csms_core.bus.memory import InMemoryBus
from csms_core.identity import IdentityStore
from csms_core.router import CommandClient, CommandOutcome, fixed
from csms_core.router.redis import RedisRouter
from tests.cluster import Infra
from tests.kits.gateway import connect_station, running_gateway, settings_for_tests

pytestmark = pytest.mark.integration

RESET = {"type": "Immediate"}
# Bad JSON, an entry without the message field, a kind this version does not know (a
# rolling upgrade), a known kind with fields missing.
GARBAGE: list[dict[bytes, bytes]] = [
    {b"m": b"{not json"},
    {b"payload": b"{}"},
    {b"m": b'{"kind": "telemetry", "station_id": "CP-1"}'},
    {b"m": b'{"kind": "command", "station_id": "CP-1"}'},
]


@pytest.fixture
async def redis(infra: Infra) -> AsyncIterator[Redis]:
    client = Redis.from_url(infra.redis_url)
    yield client
    await client.aclose()


def skipped(reader: str) -> float:
    """Entries of ``reader``'s mailboxes skipped so far (``csms_mailbox_undecodable_total``)."""
    value = REGISTRY.get_sample_value("csms_mailbox_undecodable_total", {"reader": reader})
    return value or 0.0


async def test_garbage_in_the_gateway_mailbox_and_a_reply_stream_is_skipped(
    infra: Infra, redis: Redis, identities: IdentityStore
) -> None:
    namespace = uuid4().hex[:8]
    gateway_id, station_id = f"gw-{namespace}", f"CP-garbage-{namespace}"
    settings = settings_for_tests(gateway_id=gateway_id)
    async with (
        RedisRouter(infra.redis_url, namespace=namespace) as router,
        running_gateway(settings, InMemoryBus(), router, identities) as gateway,
        connect_station(gateway, station_id) as station,
        CommandClient(router, "garbage") as client,
    ):
        before = skipped("gateway"), skipped("garbage")
        for fields in GARBAGE:
            await redis.xadd(f"csms:mailbox:gateway:{gateway_id}", fields)  # type: ignore[arg-type]
            await redis.xadd(f"csms:mailbox:{client.address}", fields)  # type: ignore[arg-type]

        reset = asyncio.create_task(client.call(station_id, fixed("Reset", RESET), 5))
        frame = await station.receive()
        assert frame[2:] == ["Reset", RESET]
        await station.send([3, frame[1], {"status": "Accepted"}])
        result = await reset

        assert result.outcome is CommandOutcome.RESULT
        assert result.payload == {"status": "Accepted"}
        assert (skipped("gateway"), skipped("garbage")) == (before[0] + 4, before[1] + 4)
        # and once more: neither reader stopped after the garbage
        again = asyncio.create_task(client.call(station_id, fixed("Reset", RESET), 5))
        frame = await station.receive()
        await station.send([3, frame[1], {"status": "Rejected"}])
        assert (await again).payload == {"status": "Rejected"}
