"""Firmware update and log/diagnostics upload flows, with their status notifications.

1.6 §6.19 / §6.42 (FirmwareStatusNotification, DiagnosticsStatusNotification; the security
whitepaper's SignedUpdateFirmware / GetLog with requestId); 2.0.1 L01 and N01: status
notifications carry the requestId. An install reboots the station, which then boots
with reason FirmwareUpdate.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from csms_simulator.station import Station

# Simulated seconds each step takes.
DOWNLOAD_S = 30.0
VERIFY_S = 5.0
INSTALL_S = 20.0
UPLOAD_S = 15.0


def start_firmware_update(
    station: "Station",
    *,
    action: str,
    request_id: int | None,
    delay_s: float,
    signed: bool,
) -> None:
    """Run Downloading → Downloaded → [SignatureVerified] → Installing → Installed → reboot
    into the new version; a broken station ends with InstallationFailed and keeps its own."""
    steps: list[tuple[float, str]] = [(0.0, "Downloading"), (DOWNLOAD_S, "Downloaded")]
    if signed:
        steps.append((VERIFY_S, "SignatureVerified"))
    failed = station.install_broken
    steps += [(1.0, "Installing"), (INSTALL_S, "InstallationFailed" if failed else "Installed")]
    station.firmware_busy = True

    def done() -> None:
        station.firmware_busy = False
        if failed:
            return
        station.firmware_version = station.config.updated_firmware_version
        station.reboot("FirmwareUpdate", "Reboot")

    _run_steps(station, action, request_id, steps, delay_s, done)


def start_log_upload(station: "Station", *, action: str, request_id: int | None) -> None:
    """Run Uploading → Uploaded (1.6 DiagnosticsStatusNotification or LogStatusNotification)."""
    _run_steps(station, action, request_id, [(0.0, "Uploading"), (UPLOAD_S, "Uploaded")], 1.0)


def _run_steps(
    station: "Station",
    action: str,
    request_id: int | None,
    steps: list[tuple[float, str]],
    delay_s: float,
    done: Callable[[], None] | None = None,
) -> None:
    # LogStatusNotification has requestId in 1.6 security too; the 1.6 core ones have none.
    with_request_id = station.version.is_2x or action in (
        "LogStatusNotification",
        "SignedFirmwareStatusNotification",
    )
    at = delay_s
    for wait, status in steps:
        at += wait
        payload: dict[str, object] = {"status": status}
        if with_request_id and request_id is not None:
            payload["requestId"] = request_id
        station.timers.after(at, _sender(station, action, payload))
    if done is not None:
        station.timers.after(at + 1.0, done)


def _sender(station: "Station", action: str, payload: dict[str, object]) -> Callable[[], None]:
    def send() -> None:
        # Kept while offline: the CSMS must learn how the update ended.
        station.protocol.call(action, lambda: dict(payload), queueable=True)

    return send
