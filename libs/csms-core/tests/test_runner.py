"""The consumer loop: handle, retry, dead-letter, commit, stop."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from csms_core import topics
from csms_core.bus import Delivery, run_consumer
from csms_core.bus.memory import InMemoryBus
from csms_core.envelope import Envelope
from csms_core.events import InboundCall, OcppCall, Topic
from tests.kits.bus import PatientBus

GROUP = "sessions"
# ``ocpp.inbound`` for events of any type: the runner never reads their data.
INBOUND = Topic(topics.OCPP_INBOUND.name, Envelope)
STATUS = Topic(topics.STATION_STATUS.name, Envelope)


def event(number: int) -> Envelope:
    return Envelope(
        id=f"event-{number}",
        type="ocpp.call.received",
        source="csms/gateway/gw-1",
        station_id="CP-001",
        ocpp_version="2.0.1",
        data={"action": "Heartbeat", "n": number},
    )


async def eventually(condition: Callable[[], bool], timeout_s: float = 5) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.01)


async def run_until(
    bus: InMemoryBus,
    handler: Callable[[Delivery], Awaitable[None]],
    done: Callable[[], bool],
) -> None:
    """Run the consumer until ``done()``, then stop it and wait for it to finish."""
    stopping = asyncio.Event()
    ready = asyncio.Event()
    task = asyncio.create_task(
        run_consumer(bus, [topics.OCPP_INBOUND], GROUP, handler, stopping=stopping, ready=ready)
    )
    await asyncio.wait_for(ready.wait(), 1)
    await eventually(done)
    stopping.set()
    await asyncio.wait_for(task, 2)


async def uncommitted(bus: InMemoryBus) -> list[str]:
    """What a new member of the group would still be given."""
    async with bus.consumer([topics.OCPP_INBOUND], GROUP) as consumer:
        return [delivery.envelope.id for delivery in await consumer.next_batch(timeout_s=0.01)]


async def test_every_event_is_handled_then_committed() -> None:
    bus = InMemoryBus()
    for number in range(3):
        await bus.publish(INBOUND, event(number))
    handled: list[str] = []

    async def handler(delivery: Delivery) -> None:
        handled.append(delivery.envelope.id)

    await run_until(bus, handler, lambda: len(handled) == 3)

    assert handled == ["event-0", "event-1", "event-2"]
    assert await uncommitted(bus) == []
    assert bus.records(topics.DEAD_LETTER) == []


async def test_a_handler_that_always_fails_sends_the_event_to_dead_letter() -> None:
    bus = InMemoryBus()
    poison = event(0)
    await bus.publish(INBOUND, poison)
    await bus.publish(INBOUND, event(1))
    attempts: list[str] = []

    async def handler(delivery: Delivery) -> None:
        attempts.append(delivery.envelope.id)
        if delivery.envelope.id == "event-0":
            raise RuntimeError("database is down")

    await run_until(bus, handler, lambda: "event-1" in attempts)

    assert attempts == ["event-0", "event-0", "event-0", "event-1"]
    [dead] = bus.records(topics.DEAD_LETTER)
    assert dead.key == "CP-001"
    assert dead.envelope.model_dump(mode="json", exclude={"id", "time"}) == {
        "specversion": "1.0",
        "type": "csms.dead-letter",
        "source": "csms/sessions",
        "station_id": "CP-001",
        "ocpp_version": "2.0.1",
        "datacontenttype": "application/json",
        "data": {
            "group": "sessions",
            "topic": "ocpp.inbound",
            "partition": 0,
            "offset": 0,
            "error": "RuntimeError('database is down')",
            "event": poison.model_dump(mode="json"),
        },
    }
    # The poison event no longer blocks the group: both events are committed.
    assert await uncommitted(bus) == []


async def test_a_handler_that_fails_once_is_retried_without_dead_letter() -> None:
    bus = InMemoryBus()
    await bus.publish(INBOUND, event(0))
    attempts: list[str] = []

    async def handler(delivery: Delivery) -> None:
        attempts.append(delivery.envelope.id)
        if len(attempts) == 1:
            raise ConnectionError("redis restarting")

    await run_until(bus, handler, lambda: len(attempts) == 2)

    assert attempts == ["event-0", "event-0"]
    assert bus.records(topics.DEAD_LETTER) == []
    assert await uncommitted(bus) == []


async def test_stopping_finishes_and_commits_the_batch_in_hand() -> None:
    bus = InMemoryBus()
    for number in range(3):
        await bus.publish(INBOUND, event(number))
    stopping = asyncio.Event()
    handled: list[str] = []

    async def handler(delivery: Delivery) -> None:
        stopping.set()  # SIGTERM arrives while the first event is handled
        handled.append(delivery.envelope.id)

    await asyncio.wait_for(
        run_consumer(bus, [topics.OCPP_INBOUND], GROUP, handler, stopping=stopping), 2
    )

    assert handled == ["event-0", "event-1", "event-2"]
    assert await uncommitted(bus) == []


async def test_an_idle_consumer_stops_promptly() -> None:
    bus = PatientBus()  # its polls wait 60 s: the stop wakes the one under way
    stopping = asyncio.Event()

    async def handler(delivery: Delivery) -> None:
        raise AssertionError("nothing was published")

    task = asyncio.create_task(
        run_consumer(bus, [topics.OCPP_INBOUND], GROUP, handler, stopping=stopping)
    )
    await asyncio.sleep(0.05)
    stopping.set()
    await asyncio.wait_for(task, 5)


async def test_concurrent_consumer_keeps_each_stations_order_and_overlaps_stations() -> None:
    bus = InMemoryBus()
    for number in range(12):
        station = f"CP-{number % 3}"
        await bus.publish(
            INBOUND,
            Envelope(id=f"e{number}", type="ocpp.call", source="test", station_id=station, data={}),
        )
    seen: dict[str, list[str]] = {}
    running, most_running = 0, 0

    async def handler(delivery: Delivery) -> None:
        nonlocal running, most_running
        running += 1
        most_running = max(most_running, running)
        await asyncio.sleep(0.01)
        seen.setdefault(delivery.key, []).append(delivery.envelope.id)
        running -= 1

    stopping = asyncio.Event()
    task = asyncio.create_task(
        run_consumer(bus, [topics.OCPP_INBOUND], GROUP, handler, stopping=stopping, concurrency=8)
    )
    await eventually(lambda: sum(map(len, seen.values())) == 12)
    stopping.set()
    await task
    assert seen == {f"CP-{s}": [f"e{n}" for n in range(s, 12, 3)] for s in range(3)}
    assert most_running == 3


async def test_a_record_that_is_no_event_is_dead_lettered_at_once_with_the_record() -> None:
    bus = InMemoryBus()
    await bus.append(topics.OCPP_INBOUND, "CP-9", b"\x00 not json")
    good = OcppCall(
        id="good",
        source="test",
        station_id="CP-1",
        data=InboundCall(
            gateway_id="gw",
            connection_id="c",
            action="Heartbeat",
            message_id="1",
            payload={},
            received_at=datetime.now(UTC),
            owner="gateway",
        ),
    )
    await bus.publish(topics.OCPP_INBOUND, good)
    handled: list[str] = []
    attempts = 0

    async def handler(delivery: Delivery) -> None:
        nonlocal attempts
        attempts += 1
        handled.append(topics.OCPP_INBOUND.decode(delivery).id)

    await run_until(bus, handler, lambda: handled == ["good"])

    assert attempts == 2  # the bad record once: not retried
    [letter] = [topics.DEAD_LETTER.decode(d) for d in bus.records(topics.DEAD_LETTER)]
    assert (letter.station_id, letter.data.event, letter.data.raw) == (
        "CP-9",
        None,
        "\x00 not json",
    )
    assert (letter.data.topic, letter.data.offset) == ("ocpp.inbound", 0)
    assert "the record is not JSON" in letter.data.error
    assert await uncommitted(bus) == []


async def test_an_event_with_bad_data_is_dead_lettered_at_once_with_the_reason() -> None:
    bus = InMemoryBus()
    bad = Envelope(type="ocpp.call", source="test", station_id="CP-1", data={"action": 7})
    await bus.publish(INBOUND, bad)
    calls = 0

    async def handler(delivery: Delivery) -> None:
        nonlocal calls
        calls += 1
        topics.OCPP_INBOUND.decode(delivery)

    await run_until(bus, handler, lambda: bool(bus.records(topics.DEAD_LETTER)))

    assert calls == 1
    [letter] = [topics.DEAD_LETTER.decode(d) for d in bus.records(topics.DEAD_LETTER)]
    assert letter.data.event == bad
    assert "InvalidEvent('ocpp.inbound ocpp.call: data.gateway_id: Field required" in (
        letter.data.error
    )
    assert "data.action: Input should be a valid string" in letter.data.error


async def test_an_event_type_newer_than_the_consumer_is_skipped_without_dead_letter() -> None:
    bus = InMemoryBus()
    await bus.publish(STATUS, Envelope(type="station.renamed", source="t", station_id="CP-1"))
    seen: list[str] = []

    async def handler(delivery: Delivery) -> None:
        seen.append(delivery.envelope.type)
        topics.STATION_STATUS.decode(delivery)

    stopping = asyncio.Event()
    task = asyncio.create_task(
        run_consumer(bus, [topics.STATION_STATUS], GROUP, handler, stopping=stopping)
    )
    await eventually(lambda: seen == ["station.renamed"])
    stopping.set()
    await task
    assert bus.records(topics.DEAD_LETTER) == []
    async with bus.consumer([topics.STATION_STATUS], GROUP) as consumer:
        assert await consumer.next_batch(timeout_s=0.01) == []  # committed
