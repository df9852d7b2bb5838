"""The consumer loop every service runs: handle a batch, then commit it.

A handler that raises is retried; an event that still fails is published to
``csms.dead-letter`` with the error, so a poison event neither stops the
consumer nor is lost. Offsets are committed only after the whole batch is
handled (or dead-lettered): at-least-once delivery, and handlers de-duplicate.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from csms_core import topics
from csms_core.bus.base import Bus, Delivery
from csms_core.envelope import Envelope
from csms_core.telemetry import traced_delivery

logger = logging.getLogger(__name__)

Handler = Callable[[Delivery], Awaitable[None]]
ATTEMPTS = 3


async def run_consumer(
    bus: Bus,
    topic_names: Sequence[str],
    group: str,
    handler: Handler,
    *,
    stopping: asyncio.Event,
    ready: asyncio.Event | None = None,
) -> None:
    """Consume until ``stopping`` is set; finish and commit the batch in hand first."""
    async with bus.consumer(topic_names, group) as consumer:
        if ready is not None:
            ready.set()
        while not stopping.is_set():
            batch = await consumer.next_batch()
            for delivery in batch:
                await _handle(bus, group, handler, delivery)
            if batch:
                await consumer.commit()


async def _handle(bus: Bus, group: str, handler: Handler, delivery: Delivery) -> None:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with traced_delivery(delivery, group):
                await handler(delivery)
        except Exception as exc:  # noqa: BLE001 - a poison event must not stop the consumer
            logger.warning(
                "handler failed (attempt %d/%d) for %s %s: %r",
                attempt,
                ATTEMPTS,
                delivery.envelope.type,
                delivery.envelope.id,
                exc,
            )
            error = exc
            await asyncio.sleep(0.05 * attempt)
        else:
            return
    await bus.publish(topics.DEAD_LETTER, _dead_letter(group, delivery, error))


def _dead_letter(group: str, delivery: Delivery, error: BaseException) -> Envelope:
    return Envelope(
        type="csms.dead-letter",
        source=f"csms/{group}",
        station_id=delivery.envelope.station_id,
        ocpp_version=delivery.envelope.ocpp_version,
        data={
            "group": group,
            "topic": delivery.topic,
            "partition": delivery.partition,
            "offset": delivery.offset,
            "error": repr(error),
            "event": delivery.envelope.model_dump(mode="json"),
        },
    )
