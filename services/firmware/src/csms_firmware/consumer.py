"""Consumption of ``ocpp.inbound`` and ``ocpp.connections``, read with their typed models.

From ``ocpp.inbound``: BootNotification (what a station is and runs: the only proof of
an update), FirmwareStatusNotification and the 1.6 security SignedFirmwareStatus..., and
PublishFirmwareStatus..., LogStatus... and 1.6 DiagnosticsStatusNotification. Their
answers carry no decision (the gateway gives them); we only record.

It runs on the batched consumer (``csms_core.bus.batching``): the records of a poll, a
partition's in one transaction, one after the other in one session (a record reads what
the ones before it wrote), so a boot storm costs a transaction a batch, not one a record.
Each event's effects commit with its id (``ProcessedEvent``, loaded for the whole batch at
once), so a replay changes nothing. A record that is no event of its topic
(``InvalidEvent``) or a payload without what is read here is dead-lettered with the
reason (the batch split around it).
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.bus import Delivery, Unprocessable
from csms_core.events import ConnectionClosed, ConnectionOpened, InvalidEvent, OcppCall
from csms_core.topics import OCPP_CONNECTIONS, OCPP_INBOUND
from csms_firmware.campaigns import progress
from csms_firmware.catalogue.publish import on_publish_status
from csms_firmware.inbound import (
    PublishFirmwareStatusNotification,
    StationMessage,
    StatusNotification,
    boot_description,
)
from csms_firmware.logs.service import on_log_status
from csms_firmware.models import ProcessedEvent
from csms_firmware.stations import handlers as stations
from csms_firmware.stations.models import FirmwareStation
from csms_ocpp import OcppVersion

TOPICS = (OCPP_INBOUND, OCPP_CONNECTIONS)

# An effect of one station CALL; True if a campaign may have changed (plan again).
Effect = Callable[[AsyncSession, StationMessage], Awaitable[bool]]


async def _boot(session: AsyncSession, message: StationMessage) -> bool:
    boot = boot_description(message.version, message.payload)
    known = await session.get(FirmwareStation, message.station_id)
    previous_boot_at = known.last_boot_at if known is not None else None
    station = await stations.on_boot(session, message.station_id, message.version, boot)
    await progress.on_boot(session, station, previous_boot_at)
    return True


async def _firmware_status(session: AsyncSession, message: StationMessage) -> bool:
    notice = StatusNotification.model_validate(message.payload)
    return await progress.on_firmware_status(
        session, message.station_id, notice.status, notice.request_id, message.received_at
    )


async def _publish_status(session: AsyncSession, message: StationMessage) -> bool:
    notice = PublishFirmwareStatusNotification.model_validate(message.payload)
    await on_publish_status(
        session, message.station_id, notice.status, notice.request_id, notice.locations
    )
    return False


async def _log_status(session: AsyncSession, message: StationMessage) -> bool:
    notice = StatusNotification.model_validate(message.payload)
    await on_log_status(
        session, message.station_id, message.action, notice.status, notice.request_id
    )
    return False


EFFECTS: dict[str, Effect] = {
    "BootNotification": _boot,
    "FirmwareStatusNotification": _firmware_status,
    "SignedFirmwareStatusNotification": _firmware_status,
    "PublishFirmwareStatusNotification": _publish_status,
    "LogStatusNotification": _log_status,
    "DiagnosticsStatusNotification": _log_status,
}


def station_message(event: OcppCall) -> StationMessage:
    return StationMessage(
        station_id=event.station_id,
        version=OcppVersion.from_number(event.ocpp_version or "1.6"),
        action=event.data.action,
        payload=event.data.payload,
        received_at=event.data.received_at,
    )


@dataclass
class FirmwareBatch:
    """One transaction's records: its session, the events done already (in an earlier
    transaction or earlier in this one), what the commit will let out."""

    session: AsyncSession
    done: set[str]
    applied: int = 0
    changed: bool = False  # a campaign may have changed: plan again


class FirmwareConsumer:
    """The firmware service's handler on the batched consumer (a ``BatchHandler``)."""

    def __init__(self, on_change: Callable[[], None], on_events: Callable[[], None]) -> None:
        self._on_change = on_change
        self._on_events = on_events

    async def begin(self, session: AsyncSession, deliveries: Sequence[Delivery]) -> FirmwareBatch:
        ids = [event_id for delivery in deliveries if (event_id := _event_id(delivery))]
        done: set[str] = set()
        if ids:
            query = select(ProcessedEvent.event_id).where(col(ProcessedEvent.event_id).in_(ids))
            done = set(await session.exec(query))
        return FirmwareBatch(session, done)

    async def apply(self, batch: FirmwareBatch, delivery: Delivery) -> bool:
        """One record's effects; False: no station waits for an answer of ours."""
        event = _read(delivery)
        if event is None or event.id in batch.done:
            return False
        batch.changed |= await apply(batch.session, event)
        batch.session.add(ProcessedEvent(event_id=event.id))
        batch.done.add(event.id)
        batch.applied += 1
        return False

    async def finish(self, batch: FirmwareBatch) -> None:
        """Nothing coalesced: every record wrote its own rows."""

    async def deliver(self, batch: FirmwareBatch) -> None:
        """After the commit: the outbox has events to publish, the planner maybe work."""
        if batch.applied:
            self._on_events()
        if batch.changed:
            self._on_change()


def _event_id(delivery: Delivery) -> str | None:
    try:
        return delivery.envelope.id
    except InvalidEvent:  # dead-lettered with its reason when it is applied
        return None


FirmwareInput = OcppCall | ConnectionOpened | ConnectionClosed


def _read(delivery: Delivery) -> FirmwareInput | None:
    """The record's event if it is one this service acts on (``InvalidEvent`` if it is no
    event of its topic)."""
    if delivery.topic == OCPP_INBOUND:
        call = OCPP_INBOUND.decode(delivery)
        return call if isinstance(call, OcppCall) and call.data.action in EFFECTS else None
    return OCPP_CONNECTIONS.decode(delivery)


async def apply(session: AsyncSession, event: FirmwareInput) -> bool:
    """One event's effects in ``session``; True if a campaign may have changed."""
    if isinstance(event, ConnectionOpened):
        await stations.on_connected(
            session, event.station_id, event.ocpp_version, event.data.connection_id
        )
        return True
    if isinstance(event, ConnectionClosed):
        await stations.on_disconnected(session, event.station_id, event.data.connection_id)
        return False
    message = station_message(event)
    try:
        return await EFFECTS[message.action](session, message)
    except ValidationError as exc:
        raise Unprocessable(f"{message.action} of {event.id}: {exc}") from exc
