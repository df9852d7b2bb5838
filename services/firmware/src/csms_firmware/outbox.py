"""The transactional outbox: events are stored with the change they report, then published.

A change and its ``csms.firmware`` events commit together; the publisher sends what is
stored in order and marks it sent. A crash in between only delays the events: the next
round (of any replica) sends them, under their original envelope ids.
"""

import asyncio
import logging
from datetime import timedelta

from pydantic import BaseModel
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.bus import Bus
from csms_core.db import session_factory, transaction
from csms_core.events.firmware import (
    FIRMWARE_SOURCE,
    CampaignStateChangedData,
    CampaignStationStateChangedData,
    FirmwareEvent,
    FirmwareImageAddedData,
    FirmwareStatusReportedData,
    LogReceivedData,
    LogStatusChangedData,
    PublicationStatusChangedData,
)
from csms_core.events.topic import type_name
from csms_core.topics import BY_NAME, FIRMWARE
from csms_firmware.db import utc_now
from csms_firmware.models import OutboxRecord

logger = logging.getLogger(__name__)

BATCH = 500
POLL_S = 1.0
RETENTION = timedelta(days=1)


FirmwareEventData = (
    FirmwareImageAddedData
    | CampaignStateChangedData
    | CampaignStationStateChangedData
    | FirmwareStatusReportedData
    | PublicationStatusChangedData
    | LogStatusChangedData
    | LogReceivedData
)
# Each data model's event type, from the models csms.firmware is bound to.
_TYPE_OF: dict[type[BaseModel], str] = {
    model.model_fields["data"].annotation: type_name(model) or ""  # type: ignore[misc]
    for model in FIRMWARE.models.values()
}


def emit(
    session: AsyncSession,
    data: FirmwareEventData,
    station_id: str,
    ocpp_version: str | None = None,
) -> FirmwareEvent:
    """Store the ``csms.firmware`` event of ``data`` for publishing once ``session``
    commits (keyed ``station_id``: a station's, ``campaign:...`` or ``image:...``)."""
    event = FIRMWARE.parse_object(
        {
            "type": _TYPE_OF[type(data)],
            "source": FIRMWARE_SOURCE,
            "station_id": station_id,
            "ocpp_version": ocpp_version,
            "data": data.model_dump(mode="json"),
        }
    )
    session.add(OutboxRecord(topic=FIRMWARE, envelope=event.model_dump(mode="json")))
    return event


class OutboxPublisher:
    def __init__(self, bus: Bus, engine: AsyncEngine) -> None:
        self._bus = bus
        self._factory = session_factory(engine)
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    def poke(self) -> None:
        """Something was committed with events: publish soon."""
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self.flush()
            except Exception:
                logger.warning("publishing csms.firmware events failed; will retry", exc_info=True)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), POLL_S)
            except TimeoutError:
                continue

    async def flush(self) -> int:
        """Publish every stored event; return how many."""
        sent = 0
        async with self._lock:
            while True:
                async with transaction(self._factory) as session:
                    rows = (
                        await session.exec(
                            select(OutboxRecord)
                            .where(col(OutboxRecord.published).is_(False))
                            .order_by(col(OutboxRecord.id))
                            .limit(BATCH)
                            .with_for_update(skip_locked=True)
                        )
                    ).all()
                    for row in rows:
                        topic = BY_NAME[row.topic]
                        await self._bus.publish(topic, topic.parse_object(row.envelope))
                    ids = [row.id for row in rows]
                    if ids:
                        await session.exec(
                            update(OutboxRecord)
                            .where(col(OutboxRecord.id).in_(ids))
                            .values(published=True)
                        )
                sent += len(rows)
                if len(rows) < BATCH:
                    return sent

    async def prune(self) -> None:
        async with transaction(self._factory) as session:
            await session.exec(
                delete(OutboxRecord).where(
                    col(OutboxRecord.published),
                    col(OutboxRecord.created_at) < utc_now() - RETENTION,
                )
            )
