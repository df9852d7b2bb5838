"""Payloads of the CALLs a station sends, per OCPP version."""

from typing import Any

from csms_ocpp import OcppVersion

JsonObject = dict[str, Any]

VENDOR = "CSMS-Sim"
MODEL = "VirtualCharger"
FIRMWARE = "1.0.0"

# Neutral connector states use the 1.6 names; 2.x knows only five (2.0.1 ConnectorStatusEnumType).
_V2_CONNECTOR_STATUS = {
    "Available": "Available",
    "Preparing": "Occupied",
    "Charging": "Occupied",
    "SuspendedEV": "Occupied",
    "SuspendedEVSE": "Occupied",
    "Finishing": "Occupied",
    "Reserved": "Reserved",
    "Unavailable": "Unavailable",
    "Faulted": "Faulted",
}


def boot_notification(
    version: OcppVersion, station_id: str, reason: str, firmware: str = FIRMWARE
) -> JsonObject:
    if not version.is_2x:
        return {
            "chargePointVendor": VENDOR,
            "chargePointModel": MODEL,
            "chargePointSerialNumber": station_id[-25:],
            "firmwareVersion": firmware,
        }
    return {
        "reason": reason,
        "chargingStation": {
            "model": MODEL,
            "vendorName": VENDOR,
            "serialNumber": station_id[-25:],
            "firmwareVersion": firmware,
        },
    }


def status_notification(
    version: OcppVersion, evse_id: int, status: str, timestamp: str
) -> JsonObject:
    if not version.is_2x:
        return {
            "connectorId": evse_id,
            "errorCode": "NoError",
            "status": status,
            "timestamp": timestamp,
        }
    return {
        "timestamp": timestamp,
        "connectorStatus": _V2_CONNECTOR_STATUS[status],
        "evseId": evse_id,
        "connectorId": 1,
    }


def connector_status(version: OcppVersion, status: str) -> str:
    return _V2_CONNECTOR_STATUS[status] if version.is_2x else status


def authorize(version: OcppVersion, id_token: str) -> JsonObject:
    return {"idToken": id_token_v2(id_token)} if version.is_2x else {"idTag": id_token}


def id_token_v2(id_token: str) -> JsonObject:
    return {"idToken": id_token, "type": "ISO14443"}


def sampled_values(
    version: OcppVersion, energy_wh: float, power_w: float, context: str
) -> list[JsonObject]:
    """Energy.Active.Import.Register and Power.Active.Import (1.6 strings, 2.x numbers)."""
    if not version.is_2x:
        return [
            {
                "value": f"{energy_wh:.0f}",
                "context": context,
                "measurand": "Energy.Active.Import.Register",
                "unit": "Wh",
            },
            {
                "value": f"{power_w:.0f}",
                "context": context,
                "measurand": "Power.Active.Import",
                "unit": "W",
            },
        ]
    return [
        {
            "value": round(energy_wh, 1),
            "context": context,
            "measurand": "Energy.Active.Import.Register",
            "unitOfMeasure": {"unit": "Wh"},
        },
        {
            "value": round(power_w, 1),
            "context": context,
            "measurand": "Power.Active.Import",
            "unitOfMeasure": {"unit": "W"},
        },
    ]


def meter_value(
    version: OcppVersion, timestamp: str, energy_wh: float, power_w: float, context: str
) -> JsonObject:
    return {
        "timestamp": timestamp,
        "sampledValue": sampled_values(version, energy_wh, power_w, context),
    }


def firmware_status(version: OcppVersion, status: str, request_id: int | None) -> JsonObject:
    payload: JsonObject = {"status": status}
    if version.is_2x and request_id is not None:
        payload["requestId"] = request_id
    return payload
