"""A station's boots and connections, as ``ocpp.inbound`` and ``ocpp.connections`` tell them."""

from sqlmodel.ext.asyncio.session import AsyncSession

from csms_firmware.db import utc_now
from csms_firmware.inbound import BootDescription
from csms_firmware.stations.models import FirmwareStation
from csms_ocpp import OcppVersion


async def station_row(session: AsyncSession, station_id: str) -> FirmwareStation:
    station = await session.get(FirmwareStation, station_id)
    if station is None:
        station = FirmwareStation(station_id=station_id)
    return station


async def on_boot(
    session: AsyncSession, station_id: str, version: OcppVersion, boot: BootDescription
) -> FirmwareStation:
    """Record what the station says it is and runs."""
    station = await station_row(session, station_id)
    station.vendor, station.model = boot.vendor, boot.model
    station.serial_number, station.firmware_version = boot.serial_number, boot.firmware_version
    station.ocpp_version = version.number
    station.last_boot_at = station.updated_at = utc_now()
    station.online = True
    session.add(station)
    return station


async def on_connected(
    session: AsyncSession, station_id: str, ocpp_version: str | None, connection_id: str | None
) -> FirmwareStation:
    station = await station_row(session, station_id)
    station.online, station.connection_id = True, connection_id
    station.ocpp_version = ocpp_version or station.ocpp_version
    station.updated_at = utc_now()
    session.add(station)
    return station


async def on_disconnected(
    session: AsyncSession, station_id: str, connection_id: str | None
) -> None:
    station = await session.get(FirmwareStation, station_id)
    # A close of a connection the station has replaced already changes nothing.
    if station is None or (connection_id and station.connection_id not in (None, connection_id)):
        return
    station.online = False
    station.updated_at = utc_now()
    session.add(station)
