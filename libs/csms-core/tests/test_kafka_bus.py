"""The Kafka bus against a real broker: durable publish, trace headers, group offsets."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import InvalidReplicationFactorError
from aiokafka.partitioner import DefaultPartitioner
from pydantic import ValidationError

from csms_core.bus.base import Delivery, Outgoing, PublishError
from csms_core.bus.kafka import KafkaBus, KafkaConsumer, StationPartitioner
from csms_core.bus.producers import DeliveryFailed, RdkafkaProducer
from csms_core.envelope import Envelope
from csms_core.events import InvalidEvent, Topic
from csms_core.settings import DEFAULT_KAFKA_LINGER_MS, CommonSettings, KafkaClient
from csms_core.telemetry import setup_tracing, tracer
from tests.cluster import Infra, PrivateBrokers, delete_topics

pytestmark = pytest.mark.integration


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid4().hex[:12]}"


@pytest.fixture(params=["librdkafka", "aiokafka"])
async def bus(infra: Infra, request: pytest.FixtureRequest) -> AsyncIterator[KafkaBus]:
    """Every test of the bus with each producer client (the consumers are aiokafka's)."""
    client: KafkaClient = request.param
    async with KafkaBus(infra.kafka_bootstrap, client_id="csms-core-tests", client=client) as bus:
        yield bus


@pytest.fixture
async def topic(infra: Infra, bus: KafkaBus) -> AsyncIterator[Topic[Envelope]]:
    name = unique("test.bus")
    await bus.ensure_topics([name])
    yield Topic(name, Envelope)  # a topic of any event type (the bus does not read data)
    # every run left its topics behind: thousands of partitions a restarted broker loads
    await delete_topics(infra.kafka_bootstrap, name)


def event(station_id: str, number: int) -> Envelope:
    return Envelope(
        id=f"{station_id}-{number}",
        type="ocpp.call.received",
        source="csms/gateway/gw-1",
        station_id=station_id,
        ocpp_version="2.0.1",
        data={"action": "Heartbeat", "n": number},
    )


async def read(consumer: KafkaConsumer, count: int, timeout_s: float = 20) -> list[Delivery]:
    """Poll until ``count`` records arrived (joining a group takes a moment)."""
    deliveries: list[Delivery] = []
    async with asyncio.timeout(timeout_s):
        while len(deliveries) < count:
            deliveries += await consumer.next_batch(timeout_s=0.2)
    return deliveries


async def test_published_event_reaches_a_group_with_the_publishers_traceparent(
    bus: KafkaBus, topic: Topic[Envelope]
) -> None:
    setup_tracing("csms-core-tests")
    envelope = event(unique("CP"), 0)
    with tracer.start_as_current_span("publish") as span:
        await bus.publish(topic, envelope)
    context = span.get_span_context()

    async with bus.consumer([topic], unique("group")) as consumer:
        [delivery] = await read(consumer, 1)

    assert (delivery.topic, delivery.key, delivery.envelope) == (
        topic,
        envelope.station_id,
        envelope,
    )
    flags = int(context.trace_flags)
    assert flags & 1  # sampled
    assert delivery.headers == {
        "traceparent": f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags:02x}"
    }


async def test_wake_ends_a_waiting_poll_and_loses_no_record(
    bus: KafkaBus, topic: Topic[Envelope]
) -> None:
    station_id = unique("CP")
    async with bus.consumer([topic], unique("group")) as consumer:
        waiting = asyncio.create_task(consumer.next_batch(timeout_s=60))
        await asyncio.sleep(0.5)  # polling (the group joined meanwhile, or is joining)
        consumer.wake()
        assert await asyncio.wait_for(waiting, 5) == []
        await bus.publish(topic, event(station_id, 0))
        assert [d.envelope.id for d in await read(consumer, 1)] == [f"{station_id}-0"]


async def test_a_wake_before_the_poll_ends_the_next_poll_only(
    bus: KafkaBus, topic: Topic[Envelope]
) -> None:
    """A wake while no poll is under way: the next poll returns at once with nothing, the
    one after it waits for records and loses none."""
    station_id = unique("CP")
    async with bus.consumer([topic], unique("group")) as consumer:
        consumer.wake()
        assert await asyncio.wait_for(consumer.next_batch(timeout_s=60), 5) == []
        await bus.publish(topic, event(station_id, 0))
        assert [d.envelope.id for d in await read(consumer, 1)] == [f"{station_id}-0"]


async def test_a_cancelled_poll_is_not_taken_for_a_wake(
    bus: KafkaBus, topic: Topic[Envelope]
) -> None:
    """Cancelling the task that polls cancels it (a wake would return no records instead),
    and the consumer polls on afterwards without a record lost."""
    station_id = unique("CP")
    async with bus.consumer([topic], unique("group")) as consumer:
        waiting = asyncio.create_task(consumer.next_batch(timeout_s=60))
        await asyncio.sleep(0.5)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await bus.publish(topic, event(station_id, 0))
        assert [d.envelope.id for d in await read(consumer, 1)] == [f"{station_id}-0"]


async def test_a_committed_record_is_not_read_again_by_the_group(
    bus: KafkaBus, topic: Topic[Envelope]
) -> None:
    group, station_id = unique("group"), unique("CP")
    await bus.publish(topic, event(station_id, 0))
    async with bus.consumer([topic], group) as first:
        assert [d.envelope.id for d in await read(first, 1)] == [f"{station_id}-0"]
        await first.commit()

    await bus.publish(topic, event(station_id, 1))
    async with bus.consumer([topic], group) as second:
        assert [d.envelope.id for d in await read(second, 1)] == [f"{station_id}-1"]


async def test_an_uncommitted_batch_is_delivered_again(
    bus: KafkaBus, topic: Topic[Envelope]
) -> None:
    group, station_id = unique("group"), unique("CP")
    for number in range(3):
        await bus.publish(topic, event(station_id, number))
    expected = [f"{station_id}-{number}" for number in range(3)]

    async with bus.consumer([topic], group) as crashed:
        first_time = await read(crashed, 3)
        # no commit: the handler never finished

    async with bus.consumer([topic], group) as replacement:
        second_time = await read(replacement, 3)

    assert [d.envelope.id for d in first_time] == expected
    assert [d.envelope.id for d in second_time] == expected
    assert [d.offset for d in second_time] == [d.offset for d in first_time]


async def test_commit_through_commits_those_records_not_a_poll_taken_since(
    bus: KafkaBus, topic: Topic[Envelope]
) -> None:
    """The batched consumer polls ahead while it applies a poll: committing the applied
    one must leave the poll taken ahead to be read again."""
    group, station_id = unique("group"), unique("CP")  # one station: one partition
    for number in range(4):
        await bus.publish(topic, event(station_id, number))
    async with bus.consumer([topic], group) as first:
        taken = await read(first, 4)
        await first.commit_through(taken[:2])  # applied; the other two polled ahead only

    async with bus.consumer([topic], group) as second:
        again = await read(second, 2)

    assert [d.envelope.id for d in again] == [f"{station_id}-2", f"{station_id}-3"]
    assert [d.offset for d in again] == [d.offset for d in taken[2:]]


async def test_ensure_topics_creates_only_the_missing_ones(infra: Infra, bus: KafkaBus) -> None:
    existing, missing = unique("test.bus"), unique("test.bus")
    await bus.ensure_topics([existing])

    await bus.ensure_topics([existing, missing])
    await bus.ensure_topics([existing, missing])  # nothing left to create: no error

    # listed as soon as ensure_topics returns, so a consumer subscribing now finds them
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        assert {existing, missing} <= set(await admin.list_topics())
    finally:
        await admin.close()
        for name in (existing, missing):
            await delete_topics(infra.kafka_bootstrap, name)


async def test_ensure_topics_raises_when_the_broker_refuses(infra: Infra, bus: KafkaBus) -> None:
    # ``bus`` made the contract's topics exist, so entering this one creates nothing.
    async with KafkaBus(infra.kafka_bootstrap, replication_factor=3) as too_many_replicas:
        with pytest.raises(InvalidReplicationFactorError, match=r"cannot create topic test\.bus-"):
            await too_many_replicas.ensure_topics([unique("test.bus")])


def test_the_station_partitioner_places_keys_as_the_default_one() -> None:
    default, cached = DefaultPartitioner(), StationPartitioner(capacity=50)
    partitions = list(range(12))
    for number in range(200):
        key = f"CP-{number % 120}".encode()
        assert cached(key, partitions, partitions) == default(key, partitions, partitions)
        assert cached(key, partitions[:5], partitions) == default(key, partitions[:5], partitions)
    assert cached(None, partitions, [3]) == 3


async def test_a_record_published_outside_any_span_still_carries_a_traceparent(
    bus: KafkaBus, topic: Topic[Envelope]
) -> None:
    envelope = event(unique("CP"), 0)
    await bus.publish(topic, envelope)  # no current span (e.g. a connection closing)

    async with bus.consumer([topic], unique("group")) as consumer:
        [delivery] = await read(consumer, 1)

    version, trace_id, span_id, _flags = delivery.headers["traceparent"].split("-")
    assert (version, len(trace_id), len(span_id)) == ("00", 32, 16)
    assert delivery.envelope == envelope


async def test_a_record_that_is_no_event_is_delivered_as_it_is(
    infra: Infra, bus: KafkaBus, topic: Topic[Envelope]
) -> None:
    """Not skipped: the consumer's runner dead-letters it with the record."""
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"not an event", key=b"CP-7")
    finally:
        await producer.stop()

    async with bus.consumer([topic], unique("group")) as consumer:
        [delivery] = await read(consumer, 1)

    assert (delivery.key, delivery.value) == ("CP-7", b"not an event")
    with pytest.raises(InvalidEvent, match="not an event envelope"):
        _ = delivery.envelope


async def test_publish_many_keeps_each_stations_order_and_the_given_trace(
    bus: KafkaBus, topic: Topic[Envelope]
) -> None:
    stations = [unique("CP") for _ in range(3)]
    carried = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}
    records = [
        Outgoing(topic, event(stations[number % 3], number), carried if number == 4 else None)
        for number in range(30)
    ]
    with tracer.start_as_current_span("deliver") as span:
        await bus.publish_many(records)
    current = f"00-{span.get_span_context().trace_id:032x}"

    async with bus.consumer([topic], unique("group")) as consumer:
        deliveries = await read(consumer, 30)

    by_station: dict[str, list[int]] = {}
    for delivery in deliveries:
        by_station.setdefault(delivery.key, []).append(delivery.envelope.data["n"])
    assert by_station == {station: list(range(s, 30, 3)) for s, station in enumerate(stations)}
    headers = {d.envelope.data["n"]: d.headers["traceparent"] for d in deliveries}
    assert headers[4] == carried["traceparent"]
    assert all(value.startswith(current) for n, value in headers.items() if n != 4)


async def test_both_producers_place_a_station_on_the_partition_of_the_default_partitioner(
    infra: Infra, topic: Topic[Envelope]
) -> None:
    """Replicas on either client (or in the middle of a change from one to the other) write
    a station's records to one partition: its order holds across them."""
    stations = [unique("CP") for _ in range(60)]
    clients: list[KafkaClient] = ["librdkafka", "aiokafka"]
    for client in clients:
        async with KafkaBus(infra.kafka_bootstrap, client=client) as bus:
            await bus.publish_many([Outgoing(topic, event(station, 0)) for station in stations])

    async with (
        KafkaBus(infra.kafka_bootstrap) as bus,
        bus.consumer([topic], unique("group")) as reader,
    ):
        deliveries = await read(reader, 2 * len(stations))

    placed: dict[str, set[int]] = {}
    for delivery in deliveries:
        placed.setdefault(delivery.key, set()).add(delivery.partition)
    default, partitions = DefaultPartitioner(), list(range(12))
    assert placed == {
        station: {default(station.encode(), partitions, partitions)} for station in stations
    }
    assert len({partition for (partition,) in placed.values()}) > 6  # spread, not one


async def test_closing_the_bus_waits_for_the_records_in_flight(
    infra: Infra, bus: KafkaBus, topic: Topic[Envelope]
) -> None:
    station = unique("CP")
    await bus.publish(topic, event(station, 0))  # the topic's partitions known from now on
    sending = asyncio.create_task(
        bus.publish_many([Outgoing(topic, event(station, n)) for n in range(1, 200)])
    )
    await asyncio.sleep(0)  # appended, not acknowledged yet
    assert not sending.done()
    await bus.__aexit__(None, None, None)
    await sending  # acknowledged, not failed

    async with (
        KafkaBus(infra.kafka_bootstrap) as reader_bus,
        reader_bus.consumer([topic], unique("group")) as reader,
    ):
        deliveries = await read(reader, 200)
    assert [d.envelope.data["n"] for d in deliveries] == list(range(200))


@pytest.fixture(scope="module")
def private_kafka(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrivateBrokers]:
    """A broker of this module's own: its tests stop it (others share ours)."""
    state_dir = tmp_path_factory.mktemp("kafka-of-its-own")
    with PrivateBrokers.running(infra, state_dir, kafka=True, redis=False) as brokers:
        yield brokers


@pytest.mark.timeout(300)
@pytest.mark.parametrize("client", ["librdkafka", "aiokafka"])
async def test_a_broker_that_is_down_fails_the_publish_and_loses_nothing_acknowledged(
    private_kafka: PrivateBrokers, client: KafkaClient
) -> None:
    """What a gateway answers a station on: a record is acknowledged only once durable, and
    the producer comes back by itself with the broker. librdkafka fails a record it cannot
    make durable with a PublishError once the request timeout is over (the gateway answers
    InternalError, "retry"); aiokafka (0.13) holds it until the broker is back, however long
    that takes (seen here: more than 5 minutes), so only the first part is asked of it."""
    brokers, name, station = private_kafka, unique("test.bus"), unique("CP")
    topic = Topic(name, Envelope)
    acknowledged = []
    bootstrap = brokers.infra.kafka_bootstrap
    async with KafkaBus(bootstrap, client=client, request_timeout_ms=3000) as bus:
        await bus.ensure_topics([name])
        await bus.publish(topic, event(station, 0))
        acknowledged.append(0)
        await asyncio.to_thread(brokers.run, "kafka-stop")
        try:
            during = asyncio.create_task(bus.publish(topic, event(station, 1)))
            # aiokafka holds the record, however long: a few seconds of the outage are enough.
            await asyncio.wait([during], timeout=10 if client == "librdkafka" else 3)
            if client == "librdkafka":
                assert during.done(), "no error 10 s into the outage"
                with pytest.raises(PublishError, match=name):
                    await during
        finally:
            await asyncio.to_thread(brokers.run, "kafka-start")
        try:
            async with asyncio.timeout(90):
                await during
            acknowledged.append(1)
        except PublishError:
            pass
        number = 2
        async with asyncio.timeout(90):
            while len(acknowledged) < 5:  # the first ones may time out while it reconnects
                try:
                    await bus.publish(topic, event(station, number))
                    acknowledged.append(number)
                except PublishError:
                    pass
                number += 1
        on_topic: list[int] = []
        async with bus.consumer([topic], unique("group")) as reader, asyncio.timeout(60):
            while not set(acknowledged) <= set(on_topic):
                on_topic += [d.envelope.data["n"] for d in await reader.next_batch(timeout_s=0.2)]
    # the acknowledged ones, once each and in order (a failed one may have got there)
    assert [n for n in on_topic if n in acknowledged] == acknowledged


async def test_a_record_librdkafka_refuses_at_once_fails_alone(
    infra: Infra, topic: Topic[Envelope]
) -> None:
    """Records of one loop iteration are produced together: one that librdkafka refuses
    (its queue full) fails its own future, and the ones before it are still delivered."""
    producer = RdkafkaProducer(
        infra.kafka_bootstrap, "csms-core-tests", 15_000, {"queue.buffering.max.messages": "2"}
    )
    await producer.start()
    try:
        sent = [await producer.send(topic, b"{}", "CP-full", {}) for _ in range(4)]
        outcomes = await asyncio.gather(*sent, return_exceptions=True)
    finally:
        await producer.stop()
    assert outcomes[:2] == [None, None]
    assert all(isinstance(outcome, DeliveryFailed) for outcome in outcomes[2:]), outcomes
    assert "Queue full" in str(outcomes[2])


async def test_after_a_fatal_error_librdkafka_sends_through_a_new_client(
    infra: Infra, caplog: pytest.LogCaptureFixture
) -> None:
    """A fatal error leaves a librdkafka producer unusable (every later record fails with
    _FATAL): the records after it go through a new client. Provoked on the real broker: with
    the gap-less guarantee (a client setting, here only), a batch the broker refuses for
    good (a record over the topic's max.message.bytes) is a fatal error."""
    name = unique("test.fatal")
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        small_records = NewTopic(name, 1, 1, topic_configs={"max.message.bytes": "1024"})
        await admin.create_topics([small_records])
    finally:
        await admin.close()
    producer = RdkafkaProducer(
        infra.kafka_bootstrap, "csms-core-tests", 15_000, {"enable.gapless.guarantee": "true"}
    )
    await producer.start()
    acknowledged: list[bytes] = []
    try:
        with pytest.raises(DeliveryFailed, match="Message size too large"):
            await (await producer.send(name, b"x" * 4096, "CP-fatal", {}))
        number = 0
        async with asyncio.timeout(30):
            while len(acknowledged) < 3:  # one may still meet the broken client
                value = f"after-{number}".encode()
                number += 1
                try:
                    await (await producer.send(name, value, "CP-fatal", {}))
                except DeliveryFailed:
                    continue
                acknowledged.append(value)
    finally:
        await producer.stop()
        on_topic = await _values(infra.kafka_bootstrap, name, len(acknowledged))
        await delete_topics(infra.kafka_bootstrap, name)
    assert "Kafka producer: fatal error" in caplog.text
    assert "a new client replaces the one with a fatal error" in caplog.text
    assert [value for value in on_topic if value in acknowledged] == acknowledged


async def _values(bootstrap: str, topic: str, count: int) -> list[bytes]:
    """The values of the topic's first ``count`` records (or all there are, 10 s on)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    values: list[bytes] = []
    try:
        async with asyncio.timeout(10):
            while len(values) < count:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    values += [record.value for record in records if record.value is not None]
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return values


async def test_append_now_gives_the_future_of_the_records_acknowledgement(
    bus: KafkaBus, topic: Topic[Envelope], request: pytest.FixtureRequest
) -> None:
    """librdkafka's producer appends without a coroutine (the gateway answers a CALL from
    the future's callback); aiokafka's cannot: None, nothing appended."""
    station_id = unique("CP")
    headers = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}
    events = [event(station_id, 0), event(station_id, 1)]
    acknowledged = bus.append_now(Outgoing(topic, events[0], headers))
    if request.node.callspec.params["bus"] == "aiokafka":
        assert acknowledged is None
        await bus.publish(topic, events[1])  # what the caller does instead
        expected = 1
    else:
        assert acknowledged is not None
        assert await asyncio.wait_for(acknowledged, 20) is None
        expected = 0
    async with bus.consumer([topic], unique("group")) as consumer:
        [delivery] = await read(consumer, 1)
    assert delivery.envelope == events[expected]
    if expected == 0:
        assert delivery.headers["traceparent"] == headers["traceparent"]


async def test_append_now_after_stop_raises_a_producer_error(infra: Infra) -> None:
    async with KafkaBus(infra.kafka_bootstrap, client_id="csms-core-tests") as bus:
        pass
    with pytest.raises(DeliveryFailed):
        bus.append_now(Outgoing(Topic("test.bus.never", Envelope), event(unique("CP"), 0)))


@pytest.mark.parametrize("client", ["librdkafka", "aiokafka"])
async def test_a_record_waits_the_configured_linger_for_others_to_join_its_batch(
    infra: Infra, client: KafkaClient
) -> None:
    """``CSMS_KAFKA_LINGER_MS`` reaches the producer: a lone record is held that long
    before its batch is sent (and still becomes durable and readable)."""
    station, topic = unique("CP"), Topic(unique("test.bus"), Envelope)
    try:
        async with KafkaBus(infra.kafka_bootstrap, client=client, linger_ms=300) as bus:
            await bus.ensure_topics([topic])
            await bus.publish(topic, event(station, 0))  # connected and warm
            started = asyncio.get_running_loop().time()
            await bus.publish(topic, event(station, 1))
            waited = asyncio.get_running_loop().time() - started
            async with bus.consumer([topic], unique("group")) as reader:
                deliveries = await read(reader, 2)
    finally:
        await delete_topics(infra.kafka_bootstrap, topic)
    assert waited >= 0.25
    assert [delivery.key for delivery in deliveries] == [station, station]


def test_the_linger_setting_is_read_from_the_environment_and_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CSMS_KAFKA_LINGER_MS", "4")
    assert CommonSettings().kafka_linger_ms == 4
    monkeypatch.delenv("CSMS_KAFKA_LINGER_MS")
    assert CommonSettings().kafka_linger_ms == DEFAULT_KAFKA_LINGER_MS
    for bad in ("-1", "1001", "soon"):
        monkeypatch.setenv("CSMS_KAFKA_LINGER_MS", bad)
        with pytest.raises(ValidationError, match="kafka_linger_ms"):
            CommonSettings()
