"""The embedded bus: Kafka's consumer-group semantics, in one process."""

import asyncio

from csms_core.bus.base import Delivery, Outgoing
from csms_core.bus.memory import InMemoryBus
from csms_core.envelope import Envelope
from csms_core.events import Topic

# Topics of any event type: the bus neither reads nor checks the data.
TOPIC = Topic("ocpp.inbound", Envelope)
CONNECTIONS = Topic("ocpp.connections", Envelope)
STATION_STATUS = Topic("csms.station-status", Envelope)


def event(station_id: str, number: int) -> Envelope:
    return Envelope(
        id=f"{station_id}-{number}",
        type="ocpp.call.received",
        source="csms/gateway/gw-1",
        station_id=station_id,
        data={"n": number},
    )


def ids(batch: list[Delivery]) -> list[str]:
    return [delivery.envelope.id for delivery in batch]


async def test_published_events_are_delivered_in_order_with_offsets() -> None:
    bus = InMemoryBus()
    events = [event("CP-1", 0), event("CP-2", 1), event("CP-1", 2)]
    for envelope in events:
        await bus.publish(TOPIC, envelope)

    async with bus.consumer([TOPIC], "sessions") as consumer:
        batch = await consumer.next_batch()

    assert batch == [
        Delivery(TOPIC, 0, offset, envelope.station_id, envelope.to_bytes(), headers)
        for (offset, envelope), headers in zip(
            enumerate(events), [d.headers for d in batch], strict=True
        )
    ]
    assert [d.envelope for d in batch] == events
    # Every record carries a traceparent, also one published outside any span.
    assert all(d.headers["traceparent"].startswith("00-") for d in batch)
    assert bus.records(TOPIC) == batch


async def test_next_batch_respects_max_records_and_returns_empty_when_idle() -> None:
    bus = InMemoryBus()
    for number in range(5):
        await bus.publish(TOPIC, event("CP-1", number))

    async with bus.consumer([TOPIC], "sessions") as consumer:
        assert ids(await consumer.next_batch(max_records=2)) == ["CP-1-0", "CP-1-1"]
        assert ids(await consumer.next_batch(max_records=10)) == ["CP-1-2", "CP-1-3", "CP-1-4"]
        assert await consumer.next_batch(timeout_s=0.01) == []


async def test_a_waiting_consumer_wakes_up_on_publish() -> None:
    bus = InMemoryBus()
    async with bus.consumer([TOPIC], "sessions") as consumer:
        waiting = asyncio.create_task(consumer.next_batch(timeout_s=5))
        await asyncio.sleep(0.01)  # the consumer is now waiting for a record
        await bus.publish(TOPIC, event("CP-1", 0))
        assert ids(await asyncio.wait_for(waiting, 1)) == ["CP-1-0"]


async def test_wake_ends_a_waiting_poll_and_a_record_still_arrives_after_it() -> None:
    bus = InMemoryBus()
    async with bus.consumer([TOPIC], "sessions") as consumer:
        waiting = asyncio.create_task(consumer.next_batch(timeout_s=30))
        await asyncio.sleep(0.01)  # the consumer is now waiting for a record
        consumer.wake()
        assert await asyncio.wait_for(waiting, 1) == []
        consumer.wake()  # asked before the next poll: it returns at once too
        assert await asyncio.wait_for(consumer.next_batch(timeout_s=30), 1) == []
        await bus.publish(TOPIC, event("CP-1", 0))
        assert ids(await consumer.next_batch(timeout_s=1)) == ["CP-1-0"]


async def test_a_new_consumer_of_the_group_replays_from_the_committed_offset() -> None:
    bus = InMemoryBus()
    for number in range(4):
        await bus.publish(TOPIC, event("CP-1", number))

    async with bus.consumer([TOPIC], "sessions") as first:
        assert ids(await first.next_batch(max_records=2)) == ["CP-1-0", "CP-1-1"]
        await first.commit()
        # read but not committed: a crash here means these are delivered again
        assert ids(await first.next_batch(max_records=1)) == ["CP-1-2"]

    async with bus.consumer([TOPIC], "sessions") as second:
        assert ids(await second.next_batch()) == ["CP-1-2", "CP-1-3"]
        await second.commit()

    async with bus.consumer([TOPIC], "sessions") as third:
        assert await third.next_batch(timeout_s=0.01) == []


async def test_separate_groups_each_see_every_event() -> None:
    bus = InMemoryBus()
    for number in range(3):
        await bus.publish(TOPIC, event("CP-1", number))

    async with bus.consumer([TOPIC], "sessions") as sessions:
        assert ids(await sessions.next_batch()) == ["CP-1-0", "CP-1-1", "CP-1-2"]
        await sessions.commit()
    async with bus.consumer([TOPIC], "analytics") as analytics:
        assert ids(await analytics.next_batch()) == ["CP-1-0", "CP-1-1", "CP-1-2"]


async def test_a_consumer_reads_only_its_topics() -> None:
    bus = InMemoryBus()
    await bus.publish(TOPIC, event("CP-1", 0))
    await bus.publish(CONNECTIONS, event("CP-1", 1))
    await bus.publish(STATION_STATUS, event("CP-1", 2))

    async with bus.consumer([TOPIC, CONNECTIONS], "sessions") as consumer:
        batch = await consumer.next_batch()

    assert [(d.topic, d.offset, d.envelope.id) for d in batch] == [
        (TOPIC, 0, "CP-1-0"),
        ("ocpp.connections", 0, "CP-1-1"),
    ]


async def test_publish_many_appends_in_order_with_the_given_trace_headers() -> None:
    bus = InMemoryBus()
    carried = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    await bus.publish_many(
        [
            Outgoing(TOPIC, event("CP-1", 0), carried),
            Outgoing(STATION_STATUS, event("CP-1", 1)),
            Outgoing(TOPIC, event("CP-2", 2)),
        ]
    )

    assert ids(bus.records(TOPIC)) == ["CP-1-0", "CP-2-2"]
    assert ids(bus.records(STATION_STATUS)) == ["CP-1-1"]
    assert bus.records(TOPIC)[0].headers == carried
    assert bus.records(TOPIC)[1].headers["traceparent"].startswith("00-")


async def test_append_now_appends_at_once_its_future_already_done() -> None:
    bus = InMemoryBus()
    topic = Topic("test.append", Envelope)
    headers = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}
    acknowledged = bus.append_now(Outgoing(topic, event("CP-1", 0), headers))
    assert acknowledged.done() and acknowledged.result() is None
    [record] = bus.records(topic)
    assert (record.key, record.headers) == ("CP-1", headers)
    assert record.envelope.id == event("CP-1", 0).id
