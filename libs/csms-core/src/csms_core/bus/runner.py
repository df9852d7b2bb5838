"""The consumer loop every service runs: handle a batch, then commit it.

A handler that fails because a dependency is down (database, Redis, Kafka:
``TRANSIENT_ERRORS``) is retried with back-off for as long as it takes, so an
outage delays effects but skips none. A handler that fails for any other
reason is retried a few times, then the event is published to
``csms.dead-letter`` with the error, so a poison event neither stops the
consumer nor is lost; one the handler finds invalid (``Unprocessable``, e.g.
``InvalidEvent``: a record that is no event of its topic) goes there at once, with
the reason. One it does not read (``Ignored``, e.g. an event type newer than its
code) is skipped. Offsets are committed only after the whole batch is
handled (or dead-lettered): at-least-once delivery, and handlers de-duplicate.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence

import redis.exceptions
import sqlalchemy.exc

from csms_core import topics
from csms_core.bus.base import Bus, Delivery, PublishError, wake_on
from csms_core.envelope import Envelope
from csms_core.errors import Ignored, Unprocessable
from csms_core.events.dead_letter import DeadLetter, DeadLetterData
from csms_core.events.topic import InvalidEvent
from csms_core.telemetry import traced_delivery

logger = logging.getLogger(__name__)

Handler = Callable[[Delivery], Awaitable[None]]
ATTEMPTS = 3
MAX_BACKOFF_S = 5.0
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # includes ConnectionError and TimeoutError
    PublishError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


class Stopped(Exception):
    """The consumer is stopping while an event still waits for a dependency."""


async def run_consumer(
    bus: Bus,
    topic_names: Sequence[str],
    group: str,
    handler: Handler,
    *,
    stopping: asyncio.Event,
    ready: asyncio.Event | None = None,
    concurrency: int = 1,
) -> None:
    """Consume until ``stopping`` is set; finish and commit the batch in hand first.

    With ``concurrency`` > 1, the events of up to that many stations (record keys) are
    handled at once; one station's events are always handled one after another, in order.
    """
    async with bus.consumer(topic_names, group) as consumer:
        if ready is not None:
            ready.set()
        waking = wake_on(stopping, consumer.wake)
        try:
            while not stopping.is_set():
                batch = await consumer.next_batch()
                try:
                    await _handle_batch(bus, group, handler, batch, stopping, concurrency)
                except Stopped:
                    return  # uncommitted: the group's next member handles the rest again
                if batch:
                    await consumer.commit()
        finally:
            waking.cancel()


async def _handle_batch(
    bus: Bus,
    group: str,
    handler: Handler,
    batch: list[Delivery],
    stopping: asyncio.Event,
    concurrency: int,
) -> None:
    if concurrency <= 1:
        for delivery in batch:
            await _handle(bus, group, handler, delivery, stopping)
        return
    by_station: dict[str, list[Delivery]] = defaultdict(list)
    for delivery in batch:
        by_station[delivery.key].append(delivery)
    slots = asyncio.Semaphore(concurrency)

    async def handle_station(deliveries: list[Delivery]) -> None:
        async with slots:
            for delivery in deliveries:
                await _handle(bus, group, handler, delivery, stopping)

    try:
        async with asyncio.TaskGroup() as tasks:
            for deliveries in by_station.values():
                tasks.create_task(handle_station(deliveries))
    except* Stopped:
        raise Stopped from None


async def _handle(
    bus: Bus, group: str, handler: Handler, delivery: Delivery, stopping: asyncio.Event
) -> None:
    failures, backoff = 0, 0.1
    while True:
        try:
            with traced_delivery(delivery, group):
                await handler(delivery)
        except TRANSIENT_ERRORS as exc:
            logger.warning("dependency unavailable for %s: %r; retrying", delivery.describe(), exc)
            if stopping.is_set():
                raise Stopped from exc
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
        except Ignored as exc:
            logger.debug("%s skipped: %s", delivery.describe(), exc)
            return
        except Unprocessable as exc:
            logger.warning("invalid %s: %s", delivery.describe(), exc)
            await bus.publish(topics.DEAD_LETTER, dead_letter(group, delivery, exc))
            return
        except Exception as exc:  # noqa: BLE001 - a poison event must not stop the consumer
            failures += 1
            logger.warning(
                "handler failed (attempt %d/%d) for %s: %r",
                failures,
                ATTEMPTS,
                delivery.describe(),
                exc,
            )
            if failures >= ATTEMPTS:
                await bus.publish(topics.DEAD_LETTER, dead_letter(group, delivery, exc))
                return
            await asyncio.sleep(0.05 * failures)
        else:
            return


def dead_letter(group: str, delivery: Delivery, error: BaseException) -> DeadLetter:
    """The dead letter of a record ``group`` gave up on: the record's event, or the record
    itself when it is none."""
    event: Envelope | None = None
    try:
        event = delivery.envelope
    except InvalidEvent:
        raw: str | None = delivery.value.decode(errors="replace")
    else:
        raw = None
    return DeadLetter(
        source=f"csms/{group}",
        station_id=event.station_id if event is not None else delivery.key,
        ocpp_version=event.ocpp_version if event is not None else None,
        data=DeadLetterData(
            group=group,
            topic=delivery.topic,
            partition=delivery.partition,
            offset=delivery.offset,
            error=repr(error),
            event=event,
            raw=raw,
        ),
    )
