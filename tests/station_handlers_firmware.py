"""Stations that update their firmware and upload logs, played by the ``ocpp`` package.

On UpdateFirmware (or 1.6 SignedUpdateFirmware) a station really downloads the image from
the URL it was sent, checks its SHA-256 against what the test expects, reports
Downloading, Downloaded, Installing and Installed, and keeps the new version for its
next boot (the test reconnects it). Sent a signature and signing certificate, it verifies
the signature over the file it downloaded (SignatureVerified, or InvalidSignature and no
install). On GetDiagnostics / GetLog it uploads a log file
with HTTP PUT to the location it was given and reports Uploading / Uploaded.
"""

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import ocpp.v16
import ocpp.v21
import ocpp.v201
from ocpp.routing import on
from websockets.asyncio.client import connect

from tests.firmware_signing import signature_holds
from tests.stations import SUBPROTOCOL

LOG = b"2026-03-02T01:00:00Z boot ok\n" * 100
MODULES = {"1.6": ocpp.v16, "2.0.1": ocpp.v201, "2.1": ocpp.v21}


@dataclass
class Device:
    """What survives a reboot: the firmware it runs, what it got, what it did."""

    version: str
    firmware: str = "1.0.0"
    pending: str | None = None  # the version it installs, running after its next boot
    expected_sha256: str = ""
    target_version: str = ""
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    downloaded: list[bytes] = field(default_factory=list)
    installed: asyncio.Event = field(default_factory=asyncio.Event)
    uploaded: asyncio.Event = field(default_factory=asyncio.Event)
    failures: list[str] = field(default_factory=list)
    verified: list[bool] = field(default_factory=list)  # each signature check's verdict


class _FirmwareStation:
    device: Device
    tasks: set["asyncio.Task[None]"]

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _status(self, status: str, request_id: int | None, *, signed: bool = False) -> Any:
        module = MODULES[self.device.version]
        if self.device.version == "1.6":
            if signed:
                return module.call.SignedFirmwareStatusNotification(
                    status=status, request_id=request_id
                )
            return module.call.FirmwareStatusNotification(status=status)
        return module.call.FirmwareStatusNotification(status=status, request_id=request_id)

    async def _update(
        self,
        location: str,
        request_id: int | None,
        signed: bool,
        signature: tuple[str, str] | None = None,
    ) -> None:
        """Download, verify, install; ``signature``: (signature, signing certificate)."""
        try:
            await self.call(self._status("Downloading", request_id, signed=signed))  # type: ignore[attr-defined]
            async with httpx.AsyncClient(timeout=30) as http:
                response = await http.get(location)
            image = response.content
            if response.status_code != 200 or hashlib.sha256(image).hexdigest() != (
                self.device.expected_sha256
            ):
                self.device.failures.append(f"download {response.status_code}")
                await self.call(self._status("DownloadFailed", request_id, signed=signed))  # type: ignore[attr-defined]
                return
            self.device.downloaded.append(image)
            await self.call(self._status("Downloaded", request_id, signed=signed))  # type: ignore[attr-defined]
            if signature is not None:
                verdict = signature_holds(image, *signature)
                self.device.verified.append(verdict)
                status = "SignatureVerified" if verdict else "InvalidSignature"
                await self.call(self._status(status, request_id, signed=signed))  # type: ignore[attr-defined]
                if not verdict:
                    return
            for status in ("Installing", "Installed"):
                await self.call(self._status(status, request_id, signed=signed))  # type: ignore[attr-defined]
            self.device.pending = self.device.target_version
            self.device.installed.set()
        except Exception as exc:  # noqa: BLE001 - the test reads the failure
            self.device.failures.append(repr(exc))

    async def _upload(self, location: str, request_id: int | None, diagnostics: bool) -> None:
        module = MODULES[self.device.version]

        def status(value: str) -> Any:
            if diagnostics:
                return module.call.DiagnosticsStatusNotification(status=value)
            return module.call.LogStatusNotification(status=value, request_id=request_id)

        try:
            await self.call(status("Uploading"))  # type: ignore[attr-defined]
            async with httpx.AsyncClient(timeout=30) as http:
                response = await http.put(f"{location}/station.log", content=LOG)
            if response.status_code != 201:
                self.device.failures.append(f"upload {response.status_code} {response.text}")
                await self.call(status("UploadFailed" if diagnostics else "UploadFailure"))  # type: ignore[attr-defined]
                return
            await self.call(status("Uploaded"))  # type: ignore[attr-defined]
            self.device.uploaded.set()
        except Exception as exc:  # noqa: BLE001 - the test reads the failure
            self.device.failures.append(repr(exc))


class Firmware16(ocpp.v16.ChargePoint, _FirmwareStation):  # type: ignore[misc]
    @on("UpdateFirmware")  # type: ignore[untyped-decorator]
    def on_update_firmware(self, location: str, retrieve_date: str, **rest: Any) -> Any:
        self.device.received.append(("UpdateFirmware", {"location": location, **rest}))
        self._spawn(self._update(location, None, signed=False))
        return ocpp.v16.call_result.UpdateFirmware()

    @on("SignedUpdateFirmware")  # type: ignore[untyped-decorator]
    def on_signed_update(self, request_id: int, firmware: dict[str, Any], **rest: Any) -> Any:
        self.device.received.append(("SignedUpdateFirmware", {"firmware": firmware, **rest}))
        self._spawn(
            self._update(
                firmware["location"],
                request_id,
                signed=True,
                signature=(firmware["signature"], firmware["signing_certificate"]),
            )
        )
        return ocpp.v16.call_result.SignedUpdateFirmware(status="Accepted")

    @on("GetDiagnostics")  # type: ignore[untyped-decorator]
    def on_get_diagnostics(self, location: str, **rest: Any) -> Any:
        self.device.received.append(("GetDiagnostics", {"location": location, **rest}))
        self._spawn(self._upload(location, None, diagnostics=True))
        return ocpp.v16.call_result.GetDiagnostics(file_name="station.log")

    @on("TriggerMessage")  # type: ignore[untyped-decorator]
    def on_trigger(self, requested_message: str, **rest: Any) -> Any:
        self.device.received.append(("TriggerMessage", {"requested_message": requested_message}))
        return ocpp.v16.call_result.TriggerMessage(status="Accepted")


class _Firmware2x(_FirmwareStation):
    def _on_update(self, request_id: int, firmware: dict[str, Any], **rest: Any) -> None:
        self.device.received.append(("UpdateFirmware", {"request_id": request_id, **firmware}))
        signature, certificate = firmware.get("signature"), firmware.get("signing_certificate")
        self._spawn(
            self._update(
                firmware["location"],
                request_id,
                signed=False,
                signature=(signature, certificate) if signature and certificate else None,
            )
        )

    def _on_get_log(self, log_type: str, request_id: int, log: dict[str, Any]) -> None:
        self.device.received.append(("GetLog", {"log_type": log_type, "request_id": request_id}))
        self._spawn(self._upload(log["remote_location"], request_id, diagnostics=False))


class Firmware201(ocpp.v201.ChargePoint, _Firmware2x):  # type: ignore[misc]
    @on("UpdateFirmware")  # type: ignore[untyped-decorator]
    def on_update_firmware(self, request_id: int, firmware: dict[str, Any], **rest: Any) -> Any:
        self._on_update(request_id, firmware, **rest)
        return ocpp.v201.call_result.UpdateFirmware(status="Accepted")

    @on("GetLog")  # type: ignore[untyped-decorator]
    def on_get_log(self, log_type: str, request_id: int, log: dict[str, Any], **_: Any) -> Any:
        self._on_get_log(log_type, request_id, log)
        return ocpp.v201.call_result.GetLog(status="Accepted", filename="station.log")


class Firmware21(ocpp.v21.ChargePoint, _Firmware2x):  # type: ignore[misc]
    @on("UpdateFirmware")  # type: ignore[untyped-decorator]
    def on_update_firmware(self, request_id: int, firmware: dict[str, Any], **rest: Any) -> Any:
        self._on_update(request_id, firmware, **rest)
        return ocpp.v21.call_result.UpdateFirmware(status="Accepted")

    @on("GetLog")  # type: ignore[untyped-decorator]
    def on_get_log(self, log_type: str, request_id: int, log: dict[str, Any], **_: Any) -> Any:
        self._on_get_log(log_type, request_id, log)
        return ocpp.v21.call_result.GetLog(status="Accepted", filename="station.log")


CLASSES: dict[str, type[Firmware16] | type[Firmware201] | type[Firmware21]] = {
    "1.6": Firmware16,
    "2.0.1": Firmware201,
    "2.1": Firmware21,
}


def boot_call(device: Device, reason: str = "PowerUp") -> Any:
    """A BootNotification reporting the firmware the device runs now."""
    module = MODULES[device.version]
    if device.version == "1.6":
        return module.call.BootNotification(
            charge_point_vendor="ACME", charge_point_model="AC22", firmware_version=device.firmware
        )
    return module.call.BootNotification(
        charging_station={
            "vendor_name": "ACME",
            "model": "AC22",
            "firmware_version": device.firmware,
        },
        reason=reason,
    )


@asynccontextmanager
async def firmware_station(
    url: str, station_id: str, device: Device
) -> AsyncIterator[Firmware16 | Firmware201 | Firmware21]:
    """A connected station of ``device.version``; on entry it runs what it installed."""
    if device.pending is not None:
        device.firmware, device.pending = device.pending, None
    async with connect(
        f"{url}/ocpp/{station_id}",
        subprotocols=[SUBPROTOCOL[device.version]],  # type: ignore[list-item]
        open_timeout=10,
    ) as websocket:
        client = CLASSES[device.version](station_id, websocket)
        client.device, client.tasks = device, set()
        runner = asyncio.create_task(client.start())
        try:
            yield client
        finally:
            for task in (*client.tasks, runner):
                task.cancel()
            await asyncio.gather(runner, *client.tasks, return_exceptions=True)
