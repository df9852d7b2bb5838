"""Handlers of a station's provisioning and status messages and of its connection events."""

import logging
from datetime import datetime

from csms_core.events import (
    ConnectionClosed,
    ConnectionOpened,
    ConnectorStatusChanged,
    StationBooted,
    StationBootedData,
    StationConnected,
    StationConnectedData,
    StationDisconnected,
    StationDisconnectedData,
)
from csms_core.events.stations import encode_connector_status_changed
from csms_core.identity import record_registration
from csms_ocpp.actions import now_iso
from csms_ocpp.messages import (
    BOOT_NOTIFICATION,
    BOOT_NOTIFICATION_16,
    HEARTBEAT,
    STATUS_NOTIFICATION,
    STATUS_NOTIFICATION_16,
    BootNotificationRequest,
    BootNotificationRequest16,
    BootNotificationResponse,
    BootNotificationResponse16,
    HeartbeatRequest,
    StatusNotificationRequest,
    StatusNotificationRequest16,
)
from csms_sessions.context import SOURCE, EventContext, calls, events, reads_station_id_only
from csms_sessions.db import parse_ocpp_time
from csms_sessions.stations.bulk import ReportedStatus
from csms_sessions.stations.models import BootStatus, ConnectorState, Station
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


@calls.decides(BOOT_NOTIFICATION_16)
async def on_boot_notification_16(
    ctx: EventContext, request: BootNotificationRequest16
) -> BootNotificationResponse16:
    """Record what the 1.6 station says it is and decide whether it may operate."""
    station = ctx.station
    station.vendor = request["chargePointVendor"]
    station.model = request["chargePointModel"]
    station.serial_number = request.get("chargePointSerialNumber")
    station.firmware_version = request.get("firmwareVersion")
    return await _booted(ctx, reason=None)


@calls.decides(BOOT_NOTIFICATION)
async def on_boot_notification(
    ctx: EventContext, request: BootNotificationRequest
) -> BootNotificationResponse:
    """Record what the 2.x station says it is and decide whether it may operate."""
    station, described = ctx.station, request["chargingStation"]
    station.vendor = described["vendorName"]
    station.model = described["model"]
    station.serial_number = described.get("serialNumber")
    station.firmware_version = described.get("firmwareVersion")
    return await _booted(ctx, reason=request["reason"])


async def _booted(ctx: EventContext, reason: str | None) -> BootNotificationResponse:
    station = ctx.station
    station.boot_status = _boot_decision(ctx)
    station.last_boot_at = ctx.received_at
    # The gateway's boot gate reads it on the station's next connection (B02/B03); a
    # batch's boots write theirs together.
    if ctx.registrations is not None:
        ctx.registrations[station.station_id] = station.boot_status.value
    else:
        await record_registration(ctx.session, station.station_id, station.boot_status.value)
    accepted = station.boot_status is BootStatus.ACCEPTED
    ctx.publish(
        StationBooted,
        StationBootedData(
            boot_status=station.boot_status.value,
            registered=station.registered,
            reason=reason,  # 2.x only (BootReasonEnumType)
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


@calls.handles(HEARTBEAT)
async def on_heartbeat(ctx: EventContext, request: HeartbeatRequest) -> None:
    """Nothing beyond last_seen_at, which every message updates; the gateway answers it."""


reads_station_id_only(HEARTBEAT, STATUS_NOTIFICATION, STATUS_NOTIFICATION_16)


@calls.handles(STATUS_NOTIFICATION_16)
async def on_status_notification_16(
    ctx: EventContext, request: StatusNotificationRequest16
) -> None:
    """A 1.6 connector N is EVSE N, connector 1 (0: the whole station)."""
    timestamp = request.get("timestamp")
    connector_id = request["connectorId"]
    reported = ReportedStatus(
        station_id=ctx.station_id,
        evse_id=connector_id,
        connector_id=1 if connector_id > 0 else 0,
        status=_CONNECTOR_STATE_V16[request["status"]],
        ocpp_status=request["status"],
        error_code=request["errorCode"],
        updated_at=parse_ocpp_time(timestamp) if timestamp else ctx.received_at,
    )
    await _store_status(ctx, reported)


@calls.handles(STATUS_NOTIFICATION)
async def on_status_notification(ctx: EventContext, request: StatusNotificationRequest) -> None:
    reported = ReportedStatus(
        station_id=ctx.station_id,
        evse_id=request["evseId"],
        connector_id=request["connectorId"],
        status=ConnectorState(request["connectorStatus"]),
        ocpp_status=request["connectorStatus"],
        updated_at=parse_ocpp_time(request["timestamp"]),
    )
    await _store_status(ctx, reported)


async def _store_status(ctx: EventContext, reported: ReportedStatus) -> None:
    """Store a connector's status unless a newer one is stored already (out-of-order replay)."""
    if ctx.statuses is None:
        raise RuntimeError("a status report is handled in a batch (csms_sessions.batch)")
    stored = await ctx.statuses.get(ctx.session, reported.key)
    if stored is not None and stored.updated_at > reported.updated_at:
        logger.info("ignoring a status of %s older than the stored one", reported.key)
        return
    # Written with the batch's other statuses, in one statement, before the commit.
    ctx.statuses.put(reported)
    await note_connector_status(
        ctx, reported.evse_id, reported.connector_id, reported.status, reported.updated_at
    )
    # The most frequent domain event: its bytes written straight (the model's, tested).
    ctx.publish_encoded(
        ConnectorStatusChanged,
        encode_connector_status_changed(
            id=ctx.next_event_id(),
            source=SOURCE,
            station_id=ctx.station_id,
            ocpp_version=ctx.envelope.ocpp_version,
            evse_id=reported.evse_id,
            connector_id=reported.connector_id,
            status=reported.status.value,
            ocpp_status=reported.ocpp_status,
            error_code=reported.error_code,
            timestamp=reported.updated_at,
        ),
    )


@events.on(ConnectionOpened)
async def on_connection_opened(event: ConnectionOpened, ctx: EventContext) -> None:
    """The station holds a (new) connection on a gateway: it is online there."""
    station, data = ctx.station, event.data
    station.online = True
    station.gateway_id = data.gateway_id
    station.connection_id = data.connection_id
    station.connected_at = event.time
    if event.ocpp_version:
        station.ocpp_version = event.ocpp_version
    ctx.publish(
        StationConnected,
        StationConnectedData(
            gateway_id=data.gateway_id,
            connection_id=data.connection_id,
            security_profile=data.security_profile,
        ),
    )


@events.on(ConnectionClosed)
async def on_connection_closed(event: ConnectionClosed, ctx: EventContext) -> None:
    """Offline, unless the station reconnected already and this closes a superseded connection."""
    station, data = ctx.station, event.data
    if data.connection_id != station.connection_id:
        logger.info("ignoring the close of superseded connection %s", data.connection_id)
        return
    station.online = False
    station.disconnected_at = event.time
    ctx.publish(
        StationDisconnected,
        StationDisconnectedData(
            gateway_id=data.gateway_id,
            connection_id=data.connection_id,
            close_code=data.close_code,
            reason=data.reason,
        ),
    )
