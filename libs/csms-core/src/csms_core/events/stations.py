"""``csms.station-status``: version-neutral station and connector status (sessions)."""

from datetime import UTC, datetime
from typing import ClassVar, Literal

import orjson
from pydantic import Field

from csms_core.envelope import EncodedEvent, Event
from csms_core.events.data import EventData, IsoTime, SparseEventData

BootStatus = Literal["Accepted", "Pending", "Rejected"]
ConnectorStatus = Literal["Available", "Occupied", "Reserved", "Unavailable", "Faulted"]


class StationBootedData(EventData):
    boot_status: BootStatus
    registered: bool = Field(description="Registered over REST before it booted.")
    reason: str | None = Field(description="The 2.x BootReasonEnumType; null for 1.6.")
    vendor: str
    model: str
    serial_number: str | None
    firmware_version: str | None


class StationBooted(Event[StationBootedData]):
    type: Literal["station.booted"] = "station.booted"


class StationConnectedData(EventData):
    gateway_id: str
    connection_id: str
    security_profile: int | None = None


class StationConnected(Event[StationConnectedData]):
    type: Literal["station.connected"] = "station.connected"


class StationDisconnectedData(EventData):
    gateway_id: str | None
    connection_id: str
    close_code: int | None = None
    reason: str | None = None


class StationDisconnected(Event[StationDisconnectedData]):
    type: Literal["station.disconnected"] = "station.disconnected"


class ConnectorStatusChangedData(EventData):
    evse_id: int = Field(ge=0, description="2.x evseId; 1.6: the connectorId.")
    connector_id: int = Field(ge=0, description="On the EVSE (1 for 1.6; 0 = the station).")
    status: ConnectorStatus
    ocpp_status: str = Field(description="As the station reported it (e.g. 1.6 Charging).")
    error_code: str | None = Field(default=None, description="1.6 errorCode; null for 2.x.")
    timestamp: IsoTime


class ConnectorStatusChanged(Event[ConnectorStatusChangedData]):
    type: Literal["connector.status_changed"] = "connector.status_changed"


def encode_connector_status_changed(
    *,
    id: str,
    source: str,
    station_id: str,
    ocpp_version: str | None,
    evse_id: int,
    connector_id: int,
    status: ConnectorStatus,
    ocpp_status: str,
    error_code: str | None,
    timestamp: datetime,
    time: datetime | None = None,
) -> EncodedEvent[ConnectorStatusChanged]:
    """The record bytes of a ``ConnectorStatusChanged``, written by orjson straight from the
    fields: the same bytes as the model's ``to_bytes`` (tested), without building the
    models, once per status report (the most frequent event of a network)."""
    if timestamp.tzinfo is None:  # the model's AwareDatetime refuses it too
        raise ValueError("a connector status's timestamp must have a time zone")
    record = {
        "specversion": "1.0",
        "id": id,
        "type": "connector.status_changed",
        "source": source,
        "time": time or datetime.now(UTC),
        "station_id": station_id,
        "ocpp_version": ocpp_version,
        "datacontenttype": "application/json",
        "data": {
            "evse_id": evse_id,
            "connector_id": connector_id,
            "status": status,
            "ocpp_status": ocpp_status,
            "error_code": error_code,
            "timestamp": timestamp.isoformat(),  # IsoTime
        },
    }
    return EncodedEvent(station_id, orjson.dumps(record, option=orjson.OPT_UTC_Z))


class ReportPartData(SparseEventData):
    """One part of a multi-part report a station sent (requestId, seqNo, tbc)."""

    omitted_when_none: ClassVar[frozenset[str]] = frozenset({"report_state", "missing_seq_nos"})

    request_id: int
    seq_no: int = Field(ge=0)
    tbc: bool
    generated_at: str = Field(description="When the station generated the part, as sent.")
    report_state: str | None = Field(
        default=None, description="Where our request stands (absent: nobody asked for it)."
    )
    missing_seq_nos: list[int] | None = Field(default=None, description="Parts still missing.")


class DeviceModelReportedData(ReportPartData):
    variables: int = Field(ge=0, description="Variable attributes the part stored.")


class DeviceModelReported(Event[DeviceModelReportedData]):
    type: Literal["station.device-model.reported"] = "station.device-model.reported"


class MonitoringReportedData(ReportPartData):
    monitors: int = Field(ge=0, description="Monitors the part stored.")


class MonitoringReported(Event[MonitoringReportedData]):
    type: Literal["station.monitoring.reported"] = "station.monitoring.reported"


class StationEventReportedData(EventData):
    """One event a 2.x station notified (NotifyEvent, OCPP 2.0.1 N07/N08)."""

    event_id: int = Field(description="The station's eventId.")
    timestamp: IsoTime = Field(description="When the event happened, as the station says.")
    trigger: str = Field(description="Alerting, Delta or Periodic.")
    event_notification_type: str = Field(
        description="HardWiredNotification, HardWiredMonitor, PreconfiguredMonitor, CustomMonitor."
    )
    component: str
    component_instance: str | None
    evse_id: int | None
    connector_id: int | None
    variable: str
    variable_instance: str | None
    actual_value: str
    cleared: bool = Field(description="The monitored situation returned to normal.")
    severity: int | None = Field(
        description="2.1: as sent; 2.0.1: the severity of the monitor that raised it, if known."
    )
    variable_monitoring_id: int | None
    tech_code: str | None
    tech_info: str | None
    transaction_id: str | None
    cause: int | None = Field(description="The eventId of the event that caused this one.")


class StationEventReported(Event[StationEventReportedData]):
    type: Literal["station.event.reported"] = "station.event.reported"
