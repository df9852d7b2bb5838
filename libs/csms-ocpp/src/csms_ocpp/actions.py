"""Which messages a station may send, and who answers them.

The gateway answers a station's CALL itself when the answer carries no
decision (ARCHITECTURE.md): the response schema requires nothing, or only the
current time (Heartbeat). Every other CALL is decided by the service that
owns it and answered through the reply channel; one nobody owns yet is
answered ``NotSupported`` after it is stored, so the station is not kept waiting.
"""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from csms_ocpp import schemas
from csms_ocpp.versions import OcppVersion

_STATION_INITIATED_V16 = frozenset(
    {
        "Authorize",
        "BootNotification",
        "DataTransfer",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StartTransaction",
        "StatusNotification",
        "StopTransaction",
        # OCPP 1.6 security whitepaper (edition 3)
        "LogStatusNotification",
        "SecurityEventNotification",
        "SignCertificate",
        "SignedFirmwareStatusNotification",
    }
)
_STATION_INITIATED_V201 = frozenset(
    {
        "Authorize",
        "BootNotification",
        "ClearedChargingLimit",
        "DataTransfer",
        "FirmwareStatusNotification",
        "Get15118EVCertificate",
        "GetCertificateStatus",
        "Heartbeat",
        "LogStatusNotification",
        "MeterValues",
        "NotifyChargingLimit",
        "NotifyCustomerInformation",
        "NotifyDisplayMessages",
        "NotifyEVChargingNeeds",
        "NotifyEVChargingSchedule",
        "NotifyEvent",
        "NotifyMonitoringReport",
        "NotifyReport",
        "PublishFirmwareStatusNotification",
        "ReportChargingProfiles",
        "ReservationStatusUpdate",
        "SecurityEventNotification",
        "SignCertificate",
        "StatusNotification",
        "TransactionEvent",
    }
)
_STATION_INITIATED_V21 = _STATION_INITIATED_V201 | {
    "BatterySwap",
    "ClosePeriodicEventStream",
    "GetCertificateChainStatus",
    "NotifyDERAlarm",
    "NotifyDERStartStop",
    "NotifyPeriodicEventStream",
    "NotifyPriorityCharging",
    "NotifySettlement",
    "OpenPeriodicEventStream",
    "PullDynamicScheduleUpdate",
    "ReportDERControl",
    "VatNumberValidation",
}
STATION_INITIATED: dict[OcppVersion, frozenset[str]] = {
    OcppVersion.V16: _STATION_INITIATED_V16,
    OcppVersion.V201: _STATION_INITIATED_V201,
    OcppVersion.V21: frozenset(_STATION_INITIATED_V21),
}


class Owner(StrEnum):
    """The service that decides the answer to a station's CALL."""

    GATEWAY = "gateway"
    SESSIONS = "sessions"
    SMARTCHARGING = "smartcharging"
    SECURITY = "security"
    NOBODY = "nobody"


# Calls whose answer carries a decision, by the service that makes it.
_DECIDED_BY: dict[str, Owner] = {
    "BootNotification": Owner.SESSIONS,
    "Authorize": Owner.SESSIONS,
    "StartTransaction": Owner.SESSIONS,
    "StopTransaction": Owner.SESSIONS,
    "TransactionEvent": Owner.SESSIONS,
    "DataTransfer": Owner.SESSIONS,
    "NotifyEVChargingNeeds": Owner.SMARTCHARGING,
    "NotifyEVChargingSchedule": Owner.SMARTCHARGING,
    "SignCertificate": Owner.SECURITY,
    "Get15118EVCertificate": Owner.SECURITY,
    "GetCertificateStatus": Owner.SECURITY,
    "GetCertificateChainStatus": Owner.SECURITY,
}


def is_station_initiated(version: OcppVersion, action: str) -> bool:
    return action in STATION_INITIATED[version]


def is_known(version: OcppVersion, action: str) -> bool:
    """The action exists in this version (in either direction)."""
    return schemas.has_schema(version, action)


def owner(version: OcppVersion, action: str, payload: dict[str, Any]) -> Owner:
    """Who answers this station CALL."""
    if action == "TransactionEvent":
        # Only an idToken asks for a decision (idTokenInfo); otherwise the answer is empty.
        return Owner.SESSIONS if "idToken" in payload else Owner.GATEWAY
    if action in _DECIDED_BY:
        return _DECIDED_BY[action]
    if action == "Heartbeat" or not _response_requires_anything(version, action):
        return Owner.GATEWAY
    return Owner.NOBODY


def _response_requires_anything(version: OcppVersion, action: str) -> bool:
    if not schemas.has_schema(version, action, response=True):
        return False  # an OCPP 2.1 SEND message: nobody answers it
    schema = schemas.validator(version, action, response=True).schema
    return isinstance(schema, dict) and bool(schema.get("required"))


def gateway_response(action: str) -> dict[str, Any]:
    """The answer the gateway gives on its own to a call owned by ``Owner.GATEWAY``."""
    if action == "Heartbeat":
        return {"currentTime": now_iso()}
    return {}


def now_iso() -> str:
    """The current UTC time as OCPP writes it (RFC 3339 with millisecond precision and Z)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
