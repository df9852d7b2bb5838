"""What the firmware service reads of the station CALLs on ``ocpp.inbound``, typed.

The gateway validated every payload against its version's official schema, so these
models only name the fields read here (others are ignored; 2.x ``customData`` too).
"""

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from csms_ocpp import OcppVersion


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class StatusNotification(_Payload):
    """(Signed)FirmwareStatusNotification, LogStatusNotification, DiagnosticsStatus...:
    1.6 has no requestId; 2.x omits it when the status answers a trigger (L01.FR.20)."""

    status: str
    request_id: int | None = Field(default=None, alias="requestId")


class PublishFirmwareStatusNotification(StatusNotification):
    """2.0.1 L03: the URLs a local controller publishes the image at, once Published."""

    locations: list[str] = Field(default_factory=list, alias="location")


class _BootNotification16(_Payload):
    vendor: str = Field(alias="chargePointVendor")
    model: str = Field(alias="chargePointModel")
    serial_number: str | None = Field(default=None, alias="chargePointSerialNumber")
    firmware_version: str | None = Field(default=None, alias="firmwareVersion")


class _ChargingStation(_Payload):
    vendor: str = Field(alias="vendorName")
    model: str
    serial_number: str | None = Field(default=None, alias="serialNumber")
    firmware_version: str | None = Field(default=None, alias="firmwareVersion")


class _BootNotification2x(_Payload):
    charging_station: _ChargingStation = Field(alias="chargingStation")


@dataclass(frozen=True, slots=True)
class BootDescription:
    """What a BootNotification says the station is and runs."""

    vendor: str
    model: str
    serial_number: str | None
    firmware_version: str | None


def boot_description(version: OcppVersion, payload: dict[str, object]) -> BootDescription:
    """Of any version's BootNotification (pydantic's ValidationError if it is none)."""
    station: _BootNotification16 | _ChargingStation = (
        _BootNotification2x.model_validate(payload).charging_station
        if version.is_2x
        else _BootNotification16.model_validate(payload)
    )
    return BootDescription(
        station.vendor, station.model, station.serial_number, station.firmware_version
    )


@dataclass(frozen=True, slots=True)
class StationMessage:
    """One CALL of a station: its payload, and when the gateway received it (the station's
    own time line: silence is judged by it, not by when this service got to read it)."""

    station_id: str
    version: OcppVersion
    action: str
    payload: dict[str, object]
    received_at: datetime
