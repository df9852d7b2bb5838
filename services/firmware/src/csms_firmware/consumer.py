"""Consumption of ``ocpp.inbound`` and ``ocpp.connections``.

From ``ocpp.inbound``: BootNotification (what a station is and runs: the only proof of
an update), FirmwareStatusNotification and the 1.6 security SignedFirmwareStatus..., and
PublishFirmwareStatus..., LogStatus... and 1.6 DiagnosticsStatusNotification. Their
answers carry no decision (the gateway gives them); we only record. Each event's effects
commit with its id (``ProcessedEvent``), so a replay changes nothing.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.bus import Delivery, Unprocessable
from csms_core.db import session_factory, transaction
from csms_core.topics import OCPP_CONNECTIONS, OCPP_INBOUND
from csms_firmware.campaigns import progress
from csms_firmware.catalogue.publish import on_publish_status
from csms_firmware.logs.service import on_log_status
from csms_firmware.models import ProcessedEvent
from csms_firmware.stations import handlers as stations
from csms_ocpp import OcppVersion

TOPICS = (OCPP_INBOUND, OCPP_CONNECTIONS)
CALL = "ocpp.call"
OPENED, CLOSED = "ocpp.connection.opened", "ocpp.connection.closed"


class InboundCall(BaseModel):
    """The part of an ``ocpp.call`` event this service reads."""

    action: str
    payload: dict[str, Any]


class ConnectionEvent(BaseModel):
    connection_id: str | None = None


Effect = Callable[[AsyncSession, str, OcppVersion, dict[str, Any]], Awaitable[bool]]


async def _boot(
    session: AsyncSession, station_id: str, version: OcppVersion, payload: dict[str, Any]
) -> bool:
    station = await stations.on_boot(session, station_id, version, payload)
    await progress.on_boot(session, station)
    return True


async def _firmware_status(
    session: AsyncSession, station_id: str, version: OcppVersion, payload: dict[str, Any]
) -> bool:
    return await progress.on_firmware_status(
        session, station_id, payload["status"], payload.get("requestId")
    )


async def _publish_status(
    session: AsyncSession, station_id: str, version: OcppVersion, payload: dict[str, Any]
) -> bool:
    await on_publish_status(
        session,
        station_id,
        payload["status"],
        payload.get("requestId"),
        list(payload.get("location") or []),
    )
    return False


def _log_status(action: str) -> Effect:
    async def effect(
        session: AsyncSession, station_id: str, version: OcppVersion, payload: dict[str, Any]
    ) -> bool:
        await on_log_status(
            session, station_id, action, payload["status"], payload.get("requestId")
        )
        return False

    return effect


EFFECTS: dict[str, Effect] = {
    "BootNotification": _boot,
    "FirmwareStatusNotification": _firmware_status,
    "SignedFirmwareStatusNotification": _firmware_status,
    "PublishFirmwareStatusNotification": _publish_status,
    "LogStatusNotification": _log_status("LogStatusNotification"),
    "DiagnosticsStatusNotification": _log_status("DiagnosticsStatusNotification"),
}


class FirmwareConsumer:
    """The ``run_consumer`` handler of the firmware service."""

    def __init__(
        self, engine: AsyncEngine, on_change: Callable[[], None], on_events: Callable[[], None]
    ) -> None:
        self._factory = session_factory(engine)
        self._on_change = on_change
        self._on_events = on_events

    async def __call__(self, delivery: Delivery) -> None:
        envelope = delivery.envelope
        if delivery.topic == OCPP_INBOUND:
            if envelope.type != CALL or envelope.data.get("action") not in EFFECTS:
                return
        elif envelope.type not in (OPENED, CLOSED):
            return
        changed = False
        async with transaction(self._factory) as session:
            if await session.get(ProcessedEvent, envelope.id) is not None:
                return
            changed = await self._apply(session, delivery)
            session.add(ProcessedEvent(event_id=envelope.id))
        self._on_events()
        if changed:
            self._on_change()

    async def _apply(self, session: AsyncSession, delivery: Delivery) -> bool:
        envelope = delivery.envelope
        station_id = envelope.station_id
        try:
            if delivery.topic == OCPP_CONNECTIONS:
                connection = ConnectionEvent.model_validate(envelope.data)
                if envelope.type == OPENED:
                    await stations.on_connected(
                        session, station_id, envelope.ocpp_version, connection.connection_id
                    )
                    return True
                await stations.on_disconnected(session, station_id, connection.connection_id)
                return False
            call = InboundCall.model_validate(envelope.data)
            version = OcppVersion.from_number(envelope.ocpp_version or "1.6")
            return await EFFECTS[call.action](session, station_id, version, call.payload)
        except (ValidationError, KeyError, ValueError) as exc:
            raise Unprocessable(f"{envelope.type} {envelope.id}: {exc!r}") from exc
