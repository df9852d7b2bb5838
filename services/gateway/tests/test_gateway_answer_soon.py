"""A CALL the gateway answers itself, answered from its record's acknowledgement
(``InboundCalls.answer_soon``, ``StationConnection._answer_soon``): the way of a station
that offers no compression and whose CALL is not traced; the same guarantees as the
worker's way (durable first, in order, bounded), tested here on both ways: traced or not,
with compression or without."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest

from csms_core import topics
from csms_core.bus.memory import InMemoryBus
from csms_core.envelope import Event
from csms_core.identity import IdentityStore
from csms_core.router.memory import InMemoryRouter
from csms_gateway.server import Gateway
from tests.kits.gateway import (
    FailingBus,
    HeldBus,
    Station,
    connect_station,
    running_gateway,
    settings_for_tests,
)

E = TypeVar("E", bound=Event[Any])
BOOT_201 = {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}
STATUS_201 = {
    "timestamp": "2025-01-01T00:00:00Z",
    "connectorStatus": "Available",
    "evseId": 1,
    "connectorId": 1,
}
ACCEPTED_201 = {"status": "Accepted", "currentTime": "2025-01-01T00:00:00.000Z", "interval": 300}

# (trace sample ratio, the station's compression): the callback's way is the first.
WAYS = [(0.0, None), (1.0, None), (0.0, "deflate")]


@asynccontextmanager
async def station_on(
    bus: InMemoryBus,
    router: InMemoryRouter,
    identities: IdentityStore,
    way: tuple[float, str | None],
    **settings: Any,
) -> AsyncIterator[tuple[Gateway, Station]]:
    ratio, compression = way
    config = settings_for_tests(trace_sample_ratio=ratio, **settings)
    async with (
        running_gateway(config, bus, router, identities) as gateway,
        connect_station(gateway, compression=compression) as station,
    ):
        yield gateway, station


def inbound_ids(bus: InMemoryBus) -> list[str]:
    return [record.envelope.data["message_id"] for record in bus.records(topics.OCPP_INBOUND)]


@pytest.mark.parametrize("way", WAYS)
async def test_the_answer_waits_for_the_record(
    router: InMemoryRouter, identities: IdentityStore, way: tuple[float, str | None]
) -> None:
    bus = HeldBus()
    async with station_on(bus, router, identities, way) as (_, station):
        await station.send([2, "hb-1", "Heartbeat", {}])
        assert await station.silent_for(0.3)
        assert bus.records(topics.OCPP_INBOUND) == []
        bus.released.set()
        answer = await station.receive()
        assert inbound_ids(bus) == ["hb-1"]
    assert answer[:2] == [3, "hb-1"]
    assert list(answer[2]) == ["currentTime"]
    record = bus.records(topics.OCPP_INBOUND)[0]
    assert record.headers["traceparent"].startswith("00-")  # the trace carried on


@pytest.mark.parametrize("raises", [False, True])
@pytest.mark.parametrize("way", WAYS)
async def test_a_record_not_stored_is_an_internal_error_never_a_callresult(
    router: InMemoryRouter, identities: IdentityStore, way: tuple[float, str | None], raises: bool
) -> None:
    bus = FailingBus(raises=raises)
    async with station_on(bus, router, identities, way) as (_, station):
        for message_id in ("hb-1", "hb-2"):
            answer = await station.call("Heartbeat", {}, message_id=message_id)
            assert answer == [
                4,
                message_id,
                "InternalError",
                "could not store the message; retry",
                {},
            ]
    assert bus.records(topics.OCPP_INBOUND) == []


@pytest.mark.parametrize("way", WAYS)
async def test_pipelined_calls_are_answered_in_the_order_received(
    bus: InMemoryBus,
    router: InMemoryRouter,
    identities: IdentityStore,
    way: tuple[float, str | None],
) -> None:
    """A misbehaving station sends without waiting: CALLs the gateway answers itself, one
    the sessions service decides, refused ones; every answer in the order of its CALL."""
    frames: list[list[Any]] = [
        [2, "hb-1", "Heartbeat", {}],
        [2, "st-1", "StatusNotification", STATUS_201],
        [2, "bad-1", "StatusNotification", {"evseId": "one"}],  # breaks the schema
        [2, "boot-1", "BootNotification", BOOT_201],  # waits for the sessions decision
        [2, "hb-2", "Heartbeat", {}],
        [2, "odd-1", "NoSuchAction", {}],
        [2, "st-2", "StatusNotification", STATUS_201],
    ]
    async with station_on(bus, router, identities, way) as (_, station):
        for frame in frames:
            await station.send(frame)
            await asyncio.sleep(0.01)  # each in a segment of its own: read directly
        answers = [await station.receive() for _ in frames]
    assert [answer[1] for answer in answers] == [frame[1] for frame in frames]
    kinds = {answer[1]: answer[0] for answer in answers}
    assert kinds == {
        "hb-1": 3,
        "st-1": 3,
        "bad-1": 4,
        "boot-1": 3,
        "hb-2": 3,
        "odd-1": 4,
        "st-2": 3,
    }
    # Nobody decides the boot here (sessions announced, not answering): its fallback.
    assert answers[3][2]["status"] == "Pending"
    assert inbound_ids(bus) == ["hb-1", "st-1", "boot-1", "hb-2", "st-2"]


@pytest.mark.parametrize("way", WAYS)
async def test_the_queue_behind_a_record_in_flight_is_bounded(
    router: InMemoryRouter, identities: IdentityStore, way: tuple[float, str | None]
) -> None:
    """While the first Heartbeat's record is held, 3 more wait behind it and the gateway
    reads no more; once stored, the rest is read and answered in order."""
    bus = HeldBus()
    async with station_on(bus, router, identities, way, max_inbound_queue=3) as (
        gateway,
        station,
    ):
        for n in range(20):
            await station.send([2, f"hb-{n}", "Heartbeat", {}])
        connection = gateway.connection("CP-1")
        assert connection is not None
        async with asyncio.timeout(3):
            while connection.queued_calls < 3:
                await asyncio.sleep(0.01)
        assert await station.silent_for(0.2)  # nothing answered, nothing more read
        assert connection.queued_calls == 3
        bus.released.set()
        answers = [await station.receive() for _ in range(20)]
    assert [answer[1] for answer in answers] == [f"hb-{n}" for n in range(20)]
    assert inbound_ids(bus) == [f"hb-{n}" for n in range(20)]
