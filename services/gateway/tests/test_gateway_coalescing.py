"""Route (un)registrations and connection events written in batches: the coalescer, and a
gateway whose many stations connect and disconnect at once (a reconnect storm's shape)."""

import asyncio
from collections.abc import Sequence
from contextlib import AsyncExitStack

import pytest

from csms_core import topics
from csms_core.bus.memory import InMemoryBus
from csms_core.identity import IdentityStore
from csms_core.router import Route
from csms_core.router.memory import InMemoryRouter
from csms_gateway.coalescing import Coalescer
from tests.kits.gateway import connect_station, eventually, running_gateway, settings_for_tests

STATIONS = 40
ROUND_TRIP_S = 0.005


class Recorder:
    """A write that records each batch and holds the first one until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.fail_with: Exception | None = None

    async def write(self, items: Sequence[int]) -> None:
        self.batches.append(list(items))
        await self.release.wait()
        if self.fail_with is not None:
            raise self.fail_with


async def test_items_submitted_while_a_batch_is_written_go_in_the_next_in_order() -> None:
    recorder = Recorder()
    coalescer = Coalescer[int, None](recorder.write, "test")
    first = asyncio.create_task(coalescer.submit(0))
    await asyncio.sleep(0)  # the first batch is being written
    rest = [asyncio.create_task(coalescer.submit(n)) for n in range(1, 6)]
    await asyncio.sleep(0)
    assert not first.done()
    recorder.release.set()
    await asyncio.gather(first, *rest)
    assert recorder.batches == [[0], [1, 2, 3, 4, 5]]
    assert coalescer.batches == 2


async def test_an_item_submitted_while_nothing_is_written_is_written_at_once() -> None:
    recorder = Recorder()
    recorder.release.set()
    coalescer = Coalescer[int, None](recorder.write, "test")
    await coalescer.submit(7)
    assert recorder.batches == [[7]]


async def test_every_caller_of_a_failed_batch_gets_its_exception() -> None:
    recorder = Recorder()
    recorder.fail_with = ConnectionError("redis down")
    coalescer = Coalescer[int, None](recorder.write, "test")
    callers = [asyncio.create_task(coalescer.submit(n)) for n in range(3)]
    recorder.release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)
    recorder.fail_with = None
    await coalescer.submit(9)  # the next batch is written again
    assert recorder.batches[-1] == [9]


async def test_a_caller_that_gives_up_still_has_its_item_written() -> None:
    recorder = Recorder()
    coalescer = Coalescer[int, None](recorder.write, "test")
    first = asyncio.create_task(coalescer.submit(0))
    await asyncio.sleep(0)  # written by its caller, in flight
    caller = asyncio.create_task(coalescer.submit(1))
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    recorder.release.set()
    await first
    await coalescer.drain()
    assert recorder.batches == [[0], [1]]


async def test_batches_are_bounded() -> None:
    recorder = Recorder()
    coalescer = Coalescer[int, None](recorder.write, "test", max_batch=4)
    callers = [asyncio.create_task(coalescer.submit(n)) for n in range(10)]
    await asyncio.sleep(0)
    recorder.release.set()
    await asyncio.gather(*callers)
    assert [len(batch) for batch in recorder.batches] == [1, 4, 4, 1]
    assert [n for batch in recorder.batches for n in batch] == list(range(10))


async def test_each_caller_gets_what_the_write_returned_for_its_own_item() -> None:
    release = asyncio.Event()

    async def doubled(items: Sequence[int]) -> list[int]:
        await release.wait()
        return [2 * item for item in items]

    coalescer = Coalescer[int, int](doubled, "test")
    first = asyncio.create_task(coalescer.submit(1))  # written by its caller
    await asyncio.sleep(0)
    batched = [asyncio.create_task(coalescer.submit(n)) for n in (5, 7, 11)]
    release.set()
    assert await asyncio.gather(first, *batched) == [2, 10, 14, 22]
    assert coalescer.batches == 2


class BatchCountingRouter(InMemoryRouter):
    """The embedded router, counting the batched calls and their sizes; each batch takes a
    round trip's time (as on Redis), so what arrives meanwhile waits for the next."""

    def __init__(self) -> None:
        super().__init__()
        self.registered: list[int] = []
        self.removed: list[int] = []

    async def register_many(self, routes: Sequence[Route], ttl_s: float) -> list[Route | None]:
        await asyncio.sleep(ROUND_TRIP_S)
        replaced = await super().register_many(routes, ttl_s)
        self.registered.append(len(routes))
        return replaced

    async def unregister_many(self, routes: Sequence[Route]) -> None:
        await asyncio.sleep(ROUND_TRIP_S)
        await super().unregister_many(routes)
        self.removed.append(len(routes))


async def test_many_stations_closing_at_once_remove_their_routes_in_batches_in_order(
    identities: IdentityStore,
) -> None:
    bus, router = InMemoryBus(), BatchCountingRouter()
    ids = [f"CP-{n}" for n in range(STATIONS)]
    async with running_gateway(settings_for_tests(), bus, router, identities) as gateway:
        async with AsyncExitStack() as stack:
            stations = await asyncio.gather(
                *(stack.enter_async_context(connect_station(gateway, id_)) for id_ in ids)
            )
            # The handshake completes before the route is written.
            await eventually(lambda: sum(router.registered) == STATIONS)
            for id_ in ids:
                assert await router.lookup(id_) is not None
            await asyncio.gather(*(station.websocket.close() for station in stations))
        await eventually(lambda: sum(router.removed) == STATIONS)
        for id_ in ids:
            assert await router.lookup(id_) is None
        assert sum(router.registered) == STATIONS
        assert len(router.registered) < STATIONS  # some registrations shared a round trip
        assert len(router.removed) < STATIONS  # some removals shared a round trip
        await eventually(lambda: len(bus.records(topics.OCPP_CONNECTIONS)) == 2 * STATIONS)
    types: dict[str, list[str]] = {id_: [] for id_ in ids}
    for record in bus.records(topics.OCPP_CONNECTIONS):
        types[record.envelope.station_id].append(record.envelope.type)
    expected = ["ocpp.connection.opened", "ocpp.connection.closed"]
    assert all(sequence == expected for sequence in types.values()), types


async def test_a_batched_removal_keeps_the_route_of_a_station_taken_over_elsewhere(
    identities: IdentityStore,
) -> None:
    bus, router = InMemoryBus(), BatchCountingRouter()
    ids = [f"CP-{n}" for n in range(STATIONS)]
    async with running_gateway(settings_for_tests(), bus, router, identities) as gateway:
        async with AsyncExitStack() as stack:
            stations = await asyncio.gather(
                *(stack.enter_async_context(connect_station(gateway, id_)) for id_ in ids)
            )
            await eventually(lambda: sum(router.registered) == STATIONS)
            # Half the stations reconnected to another gateway meanwhile.
            elsewhere = {
                id_: Route(
                    station_id=id_,
                    gateway_id="gw-other",
                    connection_id=f"other-{id_}",
                    ocpp_version="2.0.1",
                )
                for id_ in ids[::2]
            }
            await router.register_many(list(elsewhere.values()), ttl_s=60)
            await asyncio.gather(*(station.websocket.close() for station in stations))
        await eventually(lambda: sum(router.removed) == STATIONS)
        for id_ in ids:
            assert await router.lookup(id_) == elsewhere.get(id_)
        assert len(router.removed) < STATIONS
