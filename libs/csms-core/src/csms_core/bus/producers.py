"""The Kafka bus's two producers: librdkafka (confluent-kafka) and aiokafka.

Both are idempotent with acks=all and place a keyed record on the partition the Java
client and aiokafka's default partitioner choose (murmur2 of the key, positive, modulo
the partition count), so records of one station land on the same partition whichever
producer wrote them. ``send`` appends one record and returns the future of its
acknowledgement; a record that could not be made durable fails that future (or ``send``
itself) with one of ``PRODUCER_ERRORS``.

librdkafka does its network I/O and batching in C threads of its own. The records of one
event-loop iteration are handed to it together at the iteration's end; its delivery
reports are handed out by ``poll``, called here on the event loop while records are in
flight (a timer every ``POLL_INTERVAL_S``), so each report resolves its record's future
on the loop's own thread: no thread hand-over per record.
"""

import asyncio
import logging
from collections.abc import Mapping
from functools import partial
from typing import Any, Protocol

import confluent_kafka
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError as AiokafkaError
from aiokafka.partitioner import DefaultPartitioner, murmur2

from csms_core.settings import DEFAULT_KAFKA_LINGER_MS, KafkaClient

logger = logging.getLogger(__name__)

# How often librdkafka's delivery reports are collected while records are in flight: a
# record's answer waits for it at most this long after its acknowledgement came in.
POLL_INTERVAL_S = 0.001
# How long stop() waits for the records still in flight.
STOP_TIMEOUT_S = 15.0


class DeliveryFailed(Exception):
    """librdkafka gave up on a record (its error, e.g. _MSG_TIMED_OUT with no broker)."""


# What a producer raises for a record that is not durable.
PRODUCER_ERRORS: tuple[type[Exception], ...] = (
    AiokafkaError,
    DeliveryFailed,
    confluent_kafka.KafkaException,
    BufferError,  # librdkafka's queue is full (queue.buffering.max.messages)
)


class Producer(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(
        self, topic: str, value: bytes, key: str, headers: Mapping[str, str]
    ) -> "asyncio.Future[Any]":
        """Append one record; the future of its acknowledgement."""
        ...


class StationPartitioner:
    """aiokafka's default partitioner (murmur2, as the Java client), each key's hash kept.

    The hash is pure Python (about 5 µs per record); a gateway sends many records for
    the same few thousand stations. At ``capacity`` keys the memory starts afresh.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._hashes: dict[bytes, int] = {}
        self._default = DefaultPartitioner()

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return int(self._default(key, all_partitions, available))
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= self._capacity:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]


class AiokafkaProducer:
    def __init__(
        self,
        bootstrap: str,
        client_id: str,
        request_timeout_ms: int,
        security: Mapping[str, Any],
        linger_ms: int = DEFAULT_KAFKA_LINGER_MS,
    ) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            # No linger: a produce request is in flight to each broker at a time, and the
            # records that arrive meanwhile form the next batch anyway. Measured with 100
            # records in flight (1.1 KB each, 12 partitions): linger 2 ms 18.7 µs CPU per
            # record and p50 3.9 ms to the acknowledgement; linger 0 15.7 µs and 2.0 ms.
            linger_ms=linger_ms,
            # One batch per partition waits for the request in flight; a record that finds
            # it full waits for it to be sent (and all such records wake together). At
            # aiokafka's 16 KiB, a burst of 5,000 BootNotifications (13 records a batch)
            # took more round trips than 15 s allow, and 3,560 of them timed out.
            max_batch_size=512 * 1024,
            partitioner=StationPartitioner(),
            request_timeout_ms=request_timeout_ms,
            retry_backoff_ms=200,
            **security,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(
        self, topic: str, value: bytes, key: str, headers: Mapping[str, str]
    ) -> "asyncio.Future[Any]":
        sent: asyncio.Future[Any] = await self._producer.send(
            topic,
            value,
            key=key.encode(),
            headers=[(name, text.encode()) for name, text in headers.items()],
        )
        return sent


# A record of this loop iteration, waiting to be produced: topic, value, key, headers, the
# future of its acknowledgement (a tuple: one per station CALL).
_Queued = tuple[str, bytes, str, list[tuple[str, str | bytes | None]], "asyncio.Future[Any]"]


class RdkafkaProducer:
    """librdkafka's producer, its delivery reports collected on the event loop."""

    def __init__(
        self,
        bootstrap: str,
        client_id: str,
        request_timeout_ms: int,
        security: Mapping[str, str],
        linger_ms: int = DEFAULT_KAFKA_LINGER_MS,
    ) -> None:
        self._config: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "client.id": client_id,
            "acks": "all",
            "enable.idempotence": True,
            # The Java client's placement, aiokafka's default partitioner's too (tested).
            "partitioner": "murmur2_random",
            # Sent at once, one request in flight per broker: what arrives meanwhile forms
            # the next batch (as aiokafka does). librdkafka's default 5 in flight sends
            # more, smaller requests: in a closed-loop gateway benchmark (meter10, 100
            # stations) 0.170-0.184 ms CPU per CALL with 5, 0.126-0.131 with 1, against
            # aiokafka's 0.142-0.146 ms; a 1 ms linger cost more (0.206-0.252 ms). Re-measured
            # once the records of a loop iteration were produced together (stop 27, status,
            # side by side): linger 2 ms the same CPU per CALL and throughput as 0, 5 ms
            # 16-24 % less throughput. ``CSMS_KAFKA_LINGER_MS``, 0 by default.
            "linger.ms": linger_ms,
            "max.in.flight.requests.per.connection": 1,
            "socket.nagle.disable": True,
            # A record not durable after this long fails (aiokafka: a batch expires after
            # its request timeout), and its CALL is answered with an error to retry.
            "message.timeout.ms": request_timeout_ms,
            "request.timeout.ms": request_timeout_ms,
            "retry.backoff.ms": 200,
            "error_cb": self._error,
            "logger": logger,
            **security,
        }
        self._producer: confluent_kafka.Producer | None = None
        # Producers that had a fatal error (a broken idempotence sequence: the client is
        # unusable): polled until their records' reports are in, a new one sends meanwhile.
        self._retired: list[confluent_kafka.Producer] = []
        self._fatal = False
        self._in_flight = 0
        # Records of this loop iteration, produced together at its end (_produce_queued).
        self._queued: list[_Queued] = []
        self._drained: asyncio.Event | None = None  # set when stop() waits for the last
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._producer = confluent_kafka.Producer(self._config)

    async def stop(self) -> None:
        producer = self._producer
        if producer is None:
            return
        # Every record still in flight gets its report (or its timeout) before we go.
        if self._in_flight:
            self._drained = asyncio.Event()
            try:
                await asyncio.wait_for(self._drained.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                logger.warning("Kafka producer: %d records unacknowledged at stop", self._in_flight)
                for client in (producer, *self._retired):
                    client.purge()  # their reports fail their futures
                    client.poll(0)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for client in (producer, *self._retired):
            client.flush(0)
        self._producer, self._retired = None, []

    def _renew(self) -> confluent_kafka.Producer:
        """A new client in place of one that had a fatal error (a new producer id)."""
        if self._producer is not None:
            # Its records fail (a station retries them: at least once, never lost).
            self._producer.purge(blocking=False)
            self._retired.append(self._producer)
        self._producer, self._fatal = confluent_kafka.Producer(self._config), False
        logger.warning("Kafka producer: a new client replaces the one with a fatal error")
        return self._producer

    def _error(self, error: confluent_kafka.KafkaError) -> None:
        """librdkafka's client-wide errors (all brokers down, ...): it retries on its own,
        and each record fails on its own once its timeout is over. After a fatal one (which
        confluent-kafka 2.x raises from ``poll`` instead: ``_poll_client``) the next record
        goes through a new client."""
        if error.fatal():
            logger.error("Kafka producer: fatal error %s", error)
            self._fatal = True
        else:
            logger.warning("Kafka producer: %s", error)

    async def send(
        self, topic: str, value: bytes, key: str, headers: Mapping[str, str]
    ) -> "asyncio.Future[Any]":
        return self.append(topic, value, key, headers)

    def append(
        self, topic: str, value: bytes, key: str, headers: Mapping[str, str]
    ) -> "asyncio.Future[Any]":
        """``send`` without a coroutine (it never waits): for a caller on the loop's thread
        that answers from a callback."""
        loop = self._loop
        if self._producer is None or loop is None:
            raise DeliveryFailed("the producer is not started")
        future: asyncio.Future[Any] = loop.create_future()
        self._queued.append((topic, value, key, list(headers.items()), future))
        self._in_flight += 1
        if len(self._queued) == 1:
            loop.call_soon(self._produce_queued)
        return future

    def _produce_queued(self) -> None:
        """Hand this loop iteration's records to librdkafka, one after another.

        Each produce() that finds its partition's queue empty wakes librdkafka's broker
        thread (a futex, with the GIL held): one record at a time as each CALL comes in,
        that was 17 % of the gateway's GIL time (py-spy) and 0.142-0.144 ms CPU per CALL;
        the records of an iteration together, 0.115-0.121 ms (bench/RESULTS.md)."""
        queued, self._queued = self._queued, []
        producer, loop = self._producer, self._loop
        if producer is None or loop is None:  # stopped meanwhile
            for *_, future in queued:
                self._settle(future, DeliveryFailed("the producer is stopped"))
            return
        if self._fatal:
            producer = self._renew()
        produce, delivered = producer.produce, self._delivered
        for topic, value, key, headers, future in queued:
            try:
                produce(topic, value, key, on_delivery=partial(delivered, future), headers=headers)
            except (confluent_kafka.KafkaException, BufferError) as exc:
                self._settle(future, DeliveryFailed(f"{topic}: {exc}"))
        if self._timer is None and self._in_flight:
            self._timer = loop.call_later(POLL_INTERVAL_S, self._poll)

    def _poll(self) -> None:
        self._timer = None
        producer, loop = self._producer, self._loop
        if producer is None or loop is None:
            return
        try:
            self._poll_client(producer)  # runs _delivered for every report that came in, here
            for retired in list(self._retired):
                self._poll_client(retired)
                if len(retired) == 0:
                    self._retired.remove(retired)
        finally:  # even if a callback raised: the other records' reports still come
            if self._in_flight:
                self._timer = loop.call_later(POLL_INTERVAL_S, self._poll)

    def _poll_client(self, client: confluent_kafka.Producer) -> None:
        """One client's reports. confluent-kafka raises a fatal error from ``poll`` (it never
        reaches ``error_cb``): the client is unusable, every later record would fail with
        _FATAL; the next ones go through a new client (``_renew``)."""
        try:
            client.poll(0)
        except confluent_kafka.KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if not isinstance(error, confluent_kafka.KafkaError) or not error.fatal():
                raise
            if client is self._producer:
                logger.error("Kafka producer: fatal error %s", error.str())  # noqa: TRY400
                self._fatal = True
            else:  # a retired client's: it has been replaced already
                logger.warning("Kafka producer: a replaced client's fatal error %s", error.str())

    def _delivered(
        self,
        future: "asyncio.Future[Any]",
        error: confluent_kafka.KafkaError | None,
        message: "confluent_kafka.Message[Any, Any]",
    ) -> None:
        failure = None if error is None else DeliveryFailed(f"{message.topic()}: {error.str()}")
        self._settle(future, failure)

    def _settle(self, future: "asyncio.Future[Any]", failure: DeliveryFailed | None) -> None:
        """One record done: its future resolved, and stop() told once none is left."""
        self._in_flight -= 1
        if not self._in_flight and self._drained is not None:
            self._drained.set()
        if future.done():  # its caller gave up waiting
            return
        if failure is None:
            future.set_result(None)
        else:
            future.set_exception(failure)


def make_producer(
    client: KafkaClient,
    bootstrap: str,
    client_id: str,
    request_timeout_ms: int,
    security: Mapping[str, Any],
    rdkafka_security: Mapping[str, str],
    linger_ms: int = DEFAULT_KAFKA_LINGER_MS,
) -> Producer:
    if client == "librdkafka":
        return RdkafkaProducer(
            bootstrap, client_id, request_timeout_ms, rdkafka_security, linger_ms
        )
    return AiokafkaProducer(bootstrap, client_id, request_timeout_ms, security, linger_ms)
