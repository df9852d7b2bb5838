"""The messages the firmware service sends, per OCPP version.

- 1.6 core: UpdateFirmware (``location``, ``retrieveDate``, ``retries``, ``retryInterval``;
  no requestId), GetDiagnostics, TriggerMessage.
- 1.6 security whitepaper (edition 3): SignedUpdateFirmware (signingCertificate and
  signature required, with requestId), GetLog, ExtendedTriggerMessage.
- 2.0.1 / 2.1: UpdateFirmware with requestId and the firmware's signature fields (L01),
  PublishFirmware / UnpublishFirmware (L03/L04, MD5 checksum), GetLog (N01; 2.1 also
  DataCollectorLog), TriggerMessage.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from csms_firmware.db import ocpp_time
from csms_ocpp import OcppVersion

JsonObject = dict[str, Any]
Message = tuple[str, JsonObject]

DIAGNOSTICS_LOG = "DiagnosticsLog"
SECURITY_LOG = "SecurityLog"
DATA_COLLECTOR_LOG = "DataCollectorLog"


class NotInVersion(ValueError):
    """The station's OCPP version has no such message."""


@dataclass(frozen=True, slots=True)
class FirmwareUpdate:
    location: str
    request_id: int
    retrieve_at: datetime
    install_at: datetime | None = None
    retries: int | None = None
    retry_interval_s: int | None = None
    signature: str | None = None
    signing_certificate: str | None = None

    @property
    def signed(self) -> bool:
        return self.signature is not None and self.signing_certificate is not None


def _retries(payload: JsonObject, retries: int | None, interval: int | None) -> JsonObject:
    if retries is not None:
        payload["retries"] = retries
    if interval is not None:
        payload["retryInterval"] = interval
    return payload


def update_firmware(
    version: OcppVersion, update: FirmwareUpdate, *, plain_16: bool = False
) -> Message:
    """The update for ``version``; a signed image goes to a 1.6 station as SignedUpdateFirmware
    unless ``plain_16`` (a station without the security extension)."""
    if version is OcppVersion.V16 and (plain_16 or not update.signed):
        payload: JsonObject = {
            "location": update.location,
            "retrieveDate": ocpp_time(update.retrieve_at),
        }
        return "UpdateFirmware", _retries(payload, update.retries, update.retry_interval_s)
    firmware: JsonObject = {
        "location": update.location,
        "retrieveDateTime": ocpp_time(update.retrieve_at),
    }
    if update.install_at is not None:
        firmware["installDateTime"] = ocpp_time(update.install_at)
    if update.signed:
        firmware["signingCertificate"] = update.signing_certificate
        firmware["signature"] = update.signature
    payload = {"requestId": update.request_id, "firmware": firmware}
    action = "SignedUpdateFirmware" if version is OcppVersion.V16 else "UpdateFirmware"
    return action, _retries(payload, update.retries, update.retry_interval_s)


def trigger_firmware_status(version: OcppVersion, *, signed_16: bool = False) -> Message:
    """Ask for the current firmware status (1.6 §5.17 / 2.0.1 F06 / whitepaper §4.4)."""
    if version is OcppVersion.V16 and signed_16:
        return "ExtendedTriggerMessage", {"requestedMessage": "FirmwareStatusNotification"}
    return "TriggerMessage", {"requestedMessage": "FirmwareStatusNotification"}


def trigger_log_status(version: OcppVersion, *, diagnostics_16: bool) -> Message:
    if version is OcppVersion.V16:
        if diagnostics_16:
            return "TriggerMessage", {"requestedMessage": "DiagnosticsStatusNotification"}
        return "ExtendedTriggerMessage", {"requestedMessage": "LogStatusNotification"}
    return "TriggerMessage", {"requestedMessage": "LogStatusNotification"}


def publish_firmware(
    version: OcppVersion,
    *,
    location: str,
    md5: str,
    request_id: int,
    retries: int | None = None,
    retry_interval_s: int | None = None,
) -> Message:
    if not version.is_2x:
        raise NotInVersion("PublishFirmware is an OCPP 2.x message (local controllers)")
    payload = {"location": location, "checksum": md5, "requestId": request_id}
    return "PublishFirmware", _retries(payload, retries, retry_interval_s)


def unpublish_firmware(version: OcppVersion, *, md5: str) -> Message:
    if not version.is_2x:
        raise NotInVersion("UnpublishFirmware is an OCPP 2.x message (local controllers)")
    return "UnpublishFirmware", {"checksum": md5}


@dataclass(frozen=True, slots=True)
class LogUpload:
    log_type: str
    location: str
    request_id: int
    oldest: datetime | None = None
    latest: datetime | None = None
    retries: int | None = None
    retry_interval_s: int | None = None


def log_action(version: OcppVersion, log_type: str) -> str:
    """GetDiagnostics for a 1.6 diagnostics log, GetLog otherwise."""
    if log_type == DATA_COLLECTOR_LOG and version is not OcppVersion.V21:
        raise NotInVersion("DataCollectorLog exists in OCPP 2.1 only")
    if version is OcppVersion.V16 and log_type == DIAGNOSTICS_LOG:
        return "GetDiagnostics"
    return "GetLog"


def get_log(version: OcppVersion, upload: LogUpload) -> Message:
    action = log_action(version, upload.log_type)
    if action == "GetDiagnostics":
        payload: JsonObject = {"location": upload.location}
        if upload.oldest is not None:
            payload["startTime"] = ocpp_time(upload.oldest)
        if upload.latest is not None:
            payload["stopTime"] = ocpp_time(upload.latest)
        return action, _retries(payload, upload.retries, upload.retry_interval_s)
    log: JsonObject = {"remoteLocation": upload.location}
    if upload.oldest is not None:
        log["oldestTimestamp"] = ocpp_time(upload.oldest)
    if upload.latest is not None:
        log["latestTimestamp"] = ocpp_time(upload.latest)
    payload = {"logType": upload.log_type, "requestId": upload.request_id, "log": log}
    return action, _retries(payload, upload.retries, upload.retry_interval_s)
