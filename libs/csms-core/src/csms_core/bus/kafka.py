"""The distributed bus on Apache Kafka: consumers on aiokafka, the producer on librdkafka
or aiokafka (``CSMS_KAFKA_CLIENT``, ``csms_core.bus.producers``).

The producer is idempotent with acks=all: ``publish`` returns once every
in-sync replica has the record, which is what lets the gateway acknowledge a
station's CALL. Consumers never auto-commit; the runner commits after the
handler stored its effects (at-least-once delivery, idempotent handlers).
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code
from aiokafka.structs import ConsumerRecord, TopicPartition

from csms_core import topics
from csms_core.bus.base import Delivery, Outgoing, PublishError
from csms_core.bus.producers import (
    PRODUCER_ERRORS,
    RdkafkaProducer,
    StationPartitioner,
    make_producer,
)
from csms_core.envelope import EncodedEvent, Event
from csms_core.events.topic import Topic
from csms_core.settings import DEFAULT_KAFKA_CLIENT, DEFAULT_KAFKA_LINGER_MS, KafkaClient
from csms_core.telemetry import record_trace_headers

logger = logging.getLogger(__name__)

E = TypeVar("E", bound=Event[Any])

_Fetched = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]  # one getmany

__all__ = ["KafkaBus", "KafkaConsumer", "KafkaFetch", "StationPartitioner"]


@dataclass(frozen=True, slots=True)
class KafkaFetch:
    """What a consumer's fetch asks the broker for: an answer once ``min_bytes`` are there
    or after ``max_wait_ms``, at most ``max_partition_bytes`` of each partition."""

    min_bytes: int = 1
    max_wait_ms: int = 500
    max_partition_bytes: int = 1024 * 1024


class KafkaBus:
    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "csms",
        request_timeout_ms: int = 15_000,
        partitions: int = 12,
        replication_factor: int = 1,
        topic_prefix: str = "",
        security: Mapping[str, Any] | None = None,
        client: KafkaClient = DEFAULT_KAFKA_CLIENT,
        rdkafka_security: Mapping[str, str] | None = None,
        fetch: KafkaFetch | None = None,
        linger_ms: int = DEFAULT_KAFKA_LINGER_MS,
    ) -> None:
        self._bootstrap = bootstrap
        self._fetch = fetch or KafkaFetch()
        self._client_id = client_id
        # TLS and SASL options of every aiokafka client (``CommonSettings.kafka_options``),
        # and of a librdkafka producer (``CommonSettings.librdkafka_options``).
        self._security = dict(security or {})
        # A namespace for every topic name, e.g. "tenant-a." or a test run's own prefix.
        self._prefix = topic_prefix
        self._partitions = partitions
        self._replication_factor = replication_factor
        self._producer = make_producer(
            client,
            bootstrap,
            client_id,
            request_timeout_ms,
            self._security,
            rdkafka_security or {},
            linger_ms,
        )

    async def __aenter__(self) -> Self:
        await self.ensure_topics()
        await self._producer.start()
        return self

    async def ensure_topics(self, names: Sequence[str] = topics.ALL) -> None:
        """Create the contract's topics that do not exist yet.

        Consumers subscribed to a topic that does not exist only notice it at their
        next metadata refresh (minutes), so topics are created before anyone uses them.
        """
        names = [self._prefix + name for name in names]
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self._bootstrap, client_id=self._client_id, **self._security
        )
        await admin.start()
        try:
            missing = set(names) - set(await admin.list_topics())
            if missing:
                response = await admin.create_topics(
                    [
                        NewTopic(name, self._partitions, self._replication_factor)
                        for name in sorted(missing)
                    ]
                )
                _raise_topic_errors(response.topic_errors)
                await _until_listed(admin, missing)
                logger.info("created topics %s", sorted(missing))
        finally:
            await admin.close()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._producer.stop()

    async def publish(self, topic: Topic[E], event: E | EncodedEvent[E]) -> None:
        try:
            await (await self._append(Outgoing(topic, event)))
        except PRODUCER_ERRORS as exc:
            raise PublishError(f"{topic}: {exc}") from exc

    async def publish_many(self, records: Sequence[Outgoing]) -> None:
        # Appended one after another (so each partition keeps their order), then awaited
        # together: the records of one batch share produce requests and acknowledgements.
        try:
            if len(records) == 1:  # e.g. the gateway's station CALLs: no gather for one
                await (await self._append(records[0]))
                return
            sent = [await self._append(record) for record in records]
            await asyncio.gather(*sent)
        except PRODUCER_ERRORS as exc:
            raise PublishError(f"{len(records)} records: {exc}") from exc

    def append_now(self, record: Outgoing) -> "asyncio.Future[Any] | None":
        """Append one record without a coroutine; the future of its acknowledgement, failed
        with one of ``PRODUCER_ERRORS`` (``publish`` raises ``PublishError`` for those).
        None: this bus's producer appends only in a coroutine (aiokafka): nothing done."""
        producer = self._producer
        if not isinstance(producer, RdkafkaProducer):
            return None
        headers = record.headers or record_trace_headers(record.topic)
        return producer.append(
            self._prefix + record.topic,
            record.event.to_bytes(),
            record.event.station_id,
            headers,
        )

    async def _append(self, record: Outgoing) -> "asyncio.Future[Any]":
        """Append one record to its partition's batch; the future of its acknowledgement."""
        headers = record.headers or record_trace_headers(record.topic)
        return await self._producer.send(
            self._prefix + record.topic,
            record.event.to_bytes(),
            record.event.station_id,
            headers,
        )

    def consumer(self, topics: Sequence[str], group: str) -> "KafkaConsumer":
        return KafkaConsumer(
            self._bootstrap,
            tuple(topics),
            group,
            self._client_id,
            self._prefix,
            self._security,
            self._fetch,
        )


def _raise_topic_errors(topic_errors: Sequence[tuple[Any, ...]]) -> None:
    """The admin client returns per-topic errors instead of raising them."""
    for topic, code, *message in topic_errors:
        # Another replica creating the same topic at the same moment is success too.
        if code not in (0, TopicAlreadyExistsError.errno):
            raise for_code(code)(f"cannot create topic {topic}: {''.join(map(str, message))}")


async def _until_listed(admin: AIOKafkaAdminClient, names: set[str]) -> None:
    """Creation returns before the brokers' metadata lists the topic: wait until it does."""
    async with asyncio.timeout(30):
        while not names <= set(await admin.list_topics()):  # noqa: ASYNC110 - only polling tells
            await asyncio.sleep(0.05)


class KafkaConsumer:
    def __init__(
        self,
        bootstrap: str,
        topics: tuple[str, ...],
        group: str,
        client_id: str,
        prefix: str = "",
        security: Mapping[str, Any] | None = None,
        fetch: KafkaFetch | None = None,
    ) -> None:
        self._prefix = prefix
        self._woken = False  # ``wake`` came while no poll was under way
        self._polling: asyncio.Task[_Fetched] | None = None  # the poll under way
        fetch = fetch or KafkaFetch()
        self._consumer = AIOKafkaConsumer(
            *(prefix + topic for topic in topics),
            bootstrap_servers=bootstrap,
            group_id=group,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            fetch_min_bytes=fetch.min_bytes,
            fetch_max_wait_ms=fetch.max_wait_ms,
            max_partition_fetch_bytes=fetch.max_partition_bytes,
            **(security or {}),
        )

    async def __aenter__(self) -> Self:
        await self._consumer.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._consumer.stop()

    async def next_batch(self, max_records: int = 500, timeout_s: float = 0.5) -> list[Delivery]:
        if self._woken:
            self._woken = False
            return []
        # The poll in a task of its own, which ``wake`` cancels: aiokafka keeps what it
        # fetched for the next poll; nothing is committed but what a poll returned.
        self._polling = polling = asyncio.create_task(
            self._consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=max_records),
            name="kafka poll",
        )
        try:
            batches = await polling
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not polling.cancelled() or (current is not None and current.cancelling()):
                raise  # the caller was cancelled, not woken
            return []
        finally:
            self._polling = None
            self._woken = False
        deliveries: list[Delivery] = []
        for records in batches.values():
            deliveries.extend(_decode(record, self._prefix) for record in records)
        return deliveries

    def wake(self) -> None:
        self._woken = True
        if self._polling is not None:
            self._polling.cancel()

    async def commit(self) -> None:
        await self._consumer.commit()

    async def commit_through(self, deliveries: Sequence[Delivery]) -> None:
        # The next offset of each partition's last record; a partition another member took
        # over meanwhile is left to it (it reads on from the offset committed before).
        ends: dict[TopicPartition, int] = defaultdict(int)
        for delivery in deliveries:
            tp = TopicPartition(self._prefix + delivery.topic, delivery.partition)
            ends[tp] = max(ends[tp], delivery.offset + 1)
        owned = self._consumer.assignment()
        offsets = {tp: offset for tp, offset in ends.items() if tp in owned}
        if offsets:
            await self._consumer.commit(offsets)


def _decode(record: ConsumerRecord[bytes, bytes], prefix: str = "") -> Delivery:
    """A record as a Delivery; its value is read by whoever handles it (a record that is no
    event of its topic is dead-lettered then, with the reason)."""
    headers = {name: value.decode(errors="replace") for name, value in record.headers}
    topic = record.topic.removeprefix(prefix)
    key = (record.key or b"").decode(errors="replace")
    return Delivery(topic, record.partition, record.offset, key, record.value or b"", headers)
