"""Which messages a station may send, and which answers carry no decision.

OCPP knowledge only: which service decides what is declared by the services
themselves (``csms_core.calls``). The gateway answers a station's CALL alone when
the answer carries no decision (ARCHITECTURE.md): the response schema requires
nothing, or only the current time (Heartbeat).
"""

from datetime import UTC, datetime
from functools import lru_cache
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


def is_station_initiated(version: OcppVersion, action: str) -> bool:
    return action in STATION_INITIATED[version]


# Actions both sides may initiate (OCPP 1.6 §4.3 / 2.0.1 P01/P02: DataTransfer).
BOTH_WAYS = frozenset({"DataTransfer"})


def is_csms_initiated(version: OcppVersion, action: str) -> bool:
    """The CSMS may send this action to a station in this version."""
    return is_known(version, action) and (
        not is_station_initiated(version, action) or action in BOTH_WAYS
    )


def is_known(version: OcppVersion, action: str) -> bool:
    """The action exists in this version (in either direction)."""
    return schemas.has_schema(version, action)


@lru_cache(maxsize=1024)
def answers_itself(version: OcppVersion | str, action: str) -> bool:
    """The answer to this station CALL carries no decision, so the gateway may give it alone:
    Heartbeat (the current time) and every CALL whose response requires nothing."""
    if isinstance(version, str):
        version = OcppVersion.from_number(version)
    return action == "Heartbeat" or not _response_requires_anything(version, action)


def _response_requires_anything(version: OcppVersion, action: str) -> bool:
    if not schemas.has_schema(version, action, response=True):
        return False  # an OCPP 2.1 SEND message: nobody answers it
    schema = schemas.validator(version, action, response=True).schema
    return isinstance(schema, dict) and bool(schema.get("required"))


def gateway_response(action: str) -> dict[str, Any]:
    """The answer the gateway gives on its own to a call it ``answers_itself``."""
    if action == "Heartbeat":
        return {"currentTime": now_iso()}
    return {}


def now_iso() -> str:
    """The current UTC time as OCPP writes it (RFC 3339 with millisecond precision and Z)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
