"""Handlers of a station's provisioning and status messages and of its connection events."""

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from csms_core.events import (
    ConnectorStatusChanged,
    ConnectorStatusChangedData,
    StationBooted,
    StationBootedData,
    StationConnected,
    StationConnectedData,
    StationDisconnected,
    StationDisconnectedData,
)
from csms_core.identity import record_registration
from csms_ocpp.actions import now_iso
from csms_sessions.context import EventContext
from csms_sessions.db import parse_ocpp_time
from csms_sessions.stations.models import BootStatus, ConnectorState, ConnectorStatus, Station
from csms_sessions.transactions.resolution import note_connector_status

logger = logging.getLogger(__name__)

_BOOT_STATUS_BY_POLICY = {
    "accept": BootStatus.ACCEPTED,
    "pending": BootStatus.PENDING,
    "reject": BootStatus.REJECTED,
}
# OCPP 1.6 ChargePointStatus → the 2.x ConnectorStatusEnumType we store (2.x values map to
# themselves): 2.x reports every state of a connector in use as Occupied.
_CONNECTOR_STATE_V16 = {
    "Available": ConnectorState.AVAILABLE,
    "Preparing": ConnectorState.OCCUPIED,
    "Charging": ConnectorState.OCCUPIED,
    "SuspendedEVSE": ConnectorState.OCCUPIED,
    "SuspendedEV": ConnectorState.OCCUPIED,
    "Finishing": ConnectorState.OCCUPIED,
    "Reserved": ConnectorState.RESERVED,
    "Unavailable": ConnectorState.UNAVAILABLE,
    "Faulted": ConnectorState.FAULTED,
}


def touch(station: Station, seen_at: datetime) -> None:
    """Every inbound message proves the station alive at ``seen_at`` (never moves back)."""
    if station.last_seen_at is None or station.last_seen_at < seen_at:
        station.last_seen_at = seen_at


async def on_boot_notification(ctx: EventContext) -> dict[str, Any]:
    """Record what the station says it is and decide whether it may operate."""
    station = ctx.station
    _describe(station, ctx.payload, is_2x=ctx.version.is_2x)
    station.boot_status = _boot_decision(ctx)
    station.last_boot_at = ctx.received_at
    # The gateway's boot gate reads it on the station's next connection (B02/B03).
    await record_registration(ctx.session, station.station_id, station.boot_status.value)
    accepted = station.boot_status is BootStatus.ACCEPTED
    ctx.publish(
        StationBooted,
        StationBootedData(
            boot_status=station.boot_status.value,
            registered=station.registered,
            reason=ctx.payload.get("reason"),  # 2.x only (BootReasonEnumType)
            vendor=station.vendor or "",
            model=station.model or "",
            serial_number=station.serial_number,
            firmware_version=station.firmware_version,
        ),
    )
    return {
        "status": station.boot_status.value,
        "currentTime": now_iso(),
        # OCPP 2.0.1 B01/B02: the heartbeat interval if accepted, else when to boot again.
        "interval": (
            ctx.settings.heartbeat_interval_s if accepted else ctx.settings.pending_retry_interval_s
        ),
    }


def _describe(station: Station, payload: dict[str, Any], *, is_2x: bool) -> None:
    if is_2x:
        described = payload["chargingStation"]
        station.vendor = described["vendorName"]
        station.model = described["model"]
        station.serial_number = described.get("serialNumber")
        station.firmware_version = described.get("firmwareVersion")
    else:
        station.vendor = payload["chargePointVendor"]
        station.model = payload["chargePointModel"]
        station.serial_number = payload.get("chargePointSerialNumber")
        station.firmware_version = payload.get("firmwareVersion")


def _boot_decision(ctx: EventContext) -> BootStatus:
    if ctx.station.registered:
        return BootStatus.ACCEPTED
    decision = _BOOT_STATUS_BY_POLICY[ctx.settings.unknown_station_policy]
    logger.info(
        "boot of unregistered station %s: %s (policy %s)",
        ctx.station.station_id,
        decision.value,
        ctx.settings.unknown_station_policy,
    )
    return decision


async def on_heartbeat(ctx: EventContext) -> None:
    """Nothing beyond last_seen_at, which every message updates; the gateway answers it."""


async def on_status_notification(ctx: EventContext) -> None:
    """Store a connector's status unless a newer one is stored already (out-of-order replay)."""
    reported = _connector_status(ctx)
    key = (reported.station_id, reported.evse_id, reported.connector_id)
    stored = await ctx.get(ConnectorStatus, key)
    if stored is not None and stored.updated_at > reported.updated_at:
        logger.info("ignoring a status of %s older than the stored one", key)
        return
    _store(ctx, stored, reported)
    await note_connector_status(
        ctx, reported.evse_id, reported.connector_id, reported.status, reported.updated_at
    )
    ctx.publish(
        ConnectorStatusChanged,
        ConnectorStatusChangedData(
            evse_id=reported.evse_id,
            connector_id=reported.connector_id,
            status=reported.status.value,
            ocpp_status=reported.ocpp_status,
            error_code=reported.error_code,
            timestamp=reported.updated_at,
        ),
    )


@dataclass(frozen=True, slots=True)
class _Reported:
    """A connector's status as a StatusNotification reports it (addressed as stored)."""

    station_id: str
    evse_id: int
    connector_id: int
    status: ConnectorState
    ocpp_status: str
    updated_at: datetime
    error_code: str | None = None


def _store(ctx: EventContext, stored: ConnectorStatus | None, reported: _Reported) -> None:
    # Not session.merge(): it flushes first, once per status, where a batch of events
    # (csms_core.bus.batching) writes all its statuses in one statement at the commit.
    if stored is None:
        ctx.session.add(ConnectorStatus(**asdict(reported)))
        return
    if stored.status is not reported.status:
        stored.status = reported.status
    if stored.ocpp_status != reported.ocpp_status:
        stored.ocpp_status = reported.ocpp_status
    if stored.error_code != reported.error_code:
        stored.error_code = reported.error_code
    stored.updated_at = reported.updated_at


def _connector_status(ctx: EventContext) -> _Reported:
    payload = ctx.payload
    timestamp = payload.get("timestamp")
    updated_at = parse_ocpp_time(timestamp) if timestamp else ctx.received_at
    if ctx.version.is_2x:
        return _Reported(
            station_id=ctx.station.station_id,
            evse_id=payload["evseId"],
            connector_id=payload["connectorId"],
            status=ConnectorState(payload["connectorStatus"]),
            ocpp_status=payload["connectorStatus"],
            updated_at=updated_at,
        )
    connector_id = payload["connectorId"]
    return _Reported(
        station_id=ctx.station.station_id,
        evse_id=connector_id,
        connector_id=1 if connector_id > 0 else 0,
        status=_CONNECTOR_STATE_V16[payload["status"]],
        ocpp_status=payload["status"],
        error_code=payload["errorCode"],
        updated_at=updated_at,
    )


async def on_connection_opened(ctx: EventContext) -> None:
    """The station holds a (new) connection on a gateway: it is online there."""
    station, data = ctx.station, ctx.envelope.data
    station.online = True
    station.gateway_id = data["gateway_id"]
    station.connection_id = data["connection_id"]
    station.connected_at = ctx.envelope.time
    if ctx.envelope.ocpp_version:
        station.ocpp_version = ctx.envelope.ocpp_version
    ctx.publish(
        StationConnected,
        StationConnectedData(
            gateway_id=data["gateway_id"],
            connection_id=data["connection_id"],
            security_profile=data.get("security_profile"),
        ),
    )


async def on_connection_closed(ctx: EventContext) -> None:
    """Offline, unless the station reconnected already and this closes a superseded connection."""
    station, data = ctx.station, ctx.envelope.data
    if data["connection_id"] != station.connection_id:
        logger.info("ignoring the close of superseded connection %s", data["connection_id"])
        return
    station.online = False
    station.disconnected_at = ctx.envelope.time
    ctx.publish(
        StationDisconnected,
        StationDisconnectedData(
            gateway_id=data.get("gateway_id"),
            connection_id=data["connection_id"],
            close_code=data.get("close_code"),
            reason=data.get("reason"),
        ),
    )
