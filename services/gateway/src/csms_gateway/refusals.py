"""The record of refused stations: each security-relevant refusal (admission.Refusal) is
logged, counted and published on ``ocpp.refusals`` for the security service to store as a
security event; an attacker repeating one is reported once per station and reason per
period (admission.RefusalThrottle), and publishing never holds up a handshake."""

import asyncio
import logging

from csms_core import topics
from csms_core.bus import PublishError
from csms_gateway import events
from csms_gateway.admission import Refusal, RefusalThrottle
from csms_gateway.events import EventPublisher
from csms_gateway.metrics import GatewayMetrics

logger = logging.getLogger(__name__)

# Refusals being published at once; beyond (a broker outage during an attack) they are
# logged and counted only.
MAX_IN_FLIGHT = 1000


class RefusalReporter:
    """``Handshake(on_refused=...)`` and the connections' flood cut-offs call it."""

    def __init__(
        self,
        gateway_id: str,
        publisher: EventPublisher,
        metrics: GatewayMetrics,
        throttle: RefusalThrottle | None = None,
    ) -> None:
        self._gateway_id = gateway_id
        self._publisher = publisher
        self._metrics = metrics
        self._throttle = throttle if throttle is not None else RefusalThrottle()
        self._in_flight: set[asyncio.Task[None]] = set()

    def __call__(self, refusal: Refusal) -> None:
        reported = self._throttle.admit(refusal)
        if reported is None:
            self._metrics.refusals_held_back.inc()
            return
        logger.warning(
            "station refused: %s (%s)",
            refusal.reason.value,
            refusal.detail,
            extra={"station_id": refusal.station_id, "remote_address": refusal.remote_address},
        )
        if len(self._in_flight) >= MAX_IN_FLIGHT:
            self._metrics.refusals_held_back.inc()
            return
        task = asyncio.get_running_loop().create_task(self._publish(reported))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _publish(self, refusal: Refusal) -> None:
        try:
            await self._publisher.publish(
                topics.OCPP_REFUSALS, events.connection_refused(self._gateway_id, refusal)
            )
        except PublishError:
            logger.exception(
                "could not publish a refusal", extra={"station_id": refusal.station_id}
            )

    async def drain(self) -> None:
        """Wait for the refusals being published (at shutdown)."""
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
