"""Diagnostics and logs: GetDiagnostics / GetLog per version, uploads over HTTP and FTP."""

import asyncio
import ftplib
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

from firmware_harness import Harness, running_firmware, settings_for_tests
from sqlalchemy import update
from test_firmware_campaigns import assert_problem

from csms_core.db import transaction
from csms_firmware.db import utc_now
from csms_firmware.logs.models import LogRequest
from csms_ocpp import OcppVersion
from tests.cluster import free_port

LOG = b"2026-03-02T01:00:00Z boot ok\n" * 200


async def ask(harness: Harness, station_id: str, **body: Any) -> dict[str, Any]:
    response = await harness.api.post(f"/firmware/stations/{station_id}/logs", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def upload_path(location: str) -> str:
    return location.removeprefix("http://files.test")


async def test_tc_045_1_get_diagnostics_upload_by_http_put(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.boot("A", version=OcppVersion.V16)
        await harness.settle()
        created = await ask(harness, "A")
        assert (created["action"], created["state"], created["filename"]) == (
            "GetDiagnostics",
            "accepted",
            "diagnostics.zip",
        )
        [command] = harness.stations.sent("A", "GetDiagnostics")
        assert set(command.payload) == {"location"}
        await harness.call("A", "DiagnosticsStatusNotification", {"status": "Uploading"})
        url = upload_path(command.payload["location"]) + "/diag.zip"
        put = await harness.station_http.put(url, content=LOG)
        assert put.status_code == 201, put.text
        assert put.json()["size"] == len(LOG)
        await harness.call("A", "DiagnosticsStatusNotification", {"status": "Uploaded"})
        await harness.call("A", "DiagnosticsStatusNotification", {"status": "Uploaded"})  # a repeat
        await harness.settle()
        await harness.service.outbox.flush()
        listed = (await harness.api.get("/firmware/logs", params={"station_id": "A"})).json()
        [entry] = listed["items"]
        assert entry["state"] == "uploaded" and entry["file"]["filename"] == "diag.zip"
        file = await harness.api.get(f"/firmware/logs/{entry['request_id']}/file")
        assert file.status_code == 200 and file.content == LOG
        statuses = [e.data["status"] for e in harness.events("firmware.log.status_changed", "A")]
        assert statuses == ["Uploading", "Uploaded"]
        [received] = harness.events("firmware.log.received", "A")
        assert received.data["size"] == len(LOG) and received.data["protocol"] == "http"
        second = await harness.station_http.put(url, content=LOG)
        assert_problem(second, 409, "already-uploaded")


async def test_tc_045_2_upload_failed(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.boot("A", version=OcppVersion.V16)
        await harness.settle()
        created = await ask(harness, "A")
        await harness.call("A", "DiagnosticsStatusNotification", {"status": "UploadFailed"})
        await harness.settle()
        body = (await harness.api.get(f"/firmware/logs/{created['request_id']}")).json()
        assert (body["state"], body["ocpp_status"], body["file"]) == (
            "failed",
            "UploadFailed",
            None,
        )
        assert_problem(
            await harness.api.get(f"/firmware/logs/{created['request_id']}/file"),
            404,
            "no-log-file",
        )


async def test_tc_n_25_and_tc_n_35_get_log_by_multipart_post(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.boot("B", version=OcppVersion.V201)
        await harness.settle()
        for log_type in ("DiagnosticsLog", "SecurityLog"):
            created = await ask(harness, "B", log_type=log_type)
            command = harness.stations.sent("B", "GetLog")[-1]
            assert command.payload["logType"] == log_type
            assert command.payload["requestId"] == created["request_id"]
            url = upload_path(command.payload["log"]["remoteLocation"])
            posted = await harness.station_http.post(
                url, files={"uploadFile": (f"{log_type}.log", LOG)}
            )
            assert posted.status_code == 201, posted.text
            await harness.call(
                "B",
                "LogStatusNotification",
                {"status": "Uploaded", "requestId": created["request_id"]},
            )
            await harness.settle()
            body = (await harness.api.get(f"/firmware/logs/{created['request_id']}")).json()
            assert body["state"] == "uploaded" and body["file"]["filename"] == f"{log_type}.log"


async def test_tc_n_34_rejected_tc_n_36_second_request_and_tc_079(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.boot("B", version=OcppVersion.V201)
        await harness.boot("S", version=OcppVersion.V16)
        await harness.settle()
        harness.stations.answer("B", "GetLog", {"status": "Rejected"})
        rejected = await ask(harness, "B")
        assert rejected["state"] == "rejected"
        harness.stations.answer("B", "GetLog", {"status": "AcceptedCanceled", "filename": "x.log"})
        second = await ask(harness, "B")
        assert (second["state"], second["ocpp_status"]) == ("accepted", "AcceptedCanceled")
        security = await ask(harness, "S", log_type="SecurityLog")  # 1.6 security whitepaper GetLog
        assert security["action"] == "GetLog"
        too_new = await harness.api.post(
            "/firmware/stations/B/logs", json={"log_type": "DataCollectorLog"}
        )
        assert_problem(too_new, 422, "not-in-this-ocpp-version")
        await harness.boot("N", version=OcppVersion.V21)
        await harness.settle()
        assert (await ask(harness, "N", log_type="DataCollectorLog"))["action"] == "GetLog"


async def test_uploads_refused_clearly(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path, max_log_bytes=1000)
    async with running_firmware(settings) as harness:
        await harness.boot("B")
        await harness.settle()
        await ask(harness, "B")
        location = harness.stations.sent("B", "GetLog")[-1].payload["log"]["remoteLocation"]
        url = upload_path(location)
        put = await harness.station_http.put(url, content=b"x" * 5000)
        assert_problem(put, 413, "log-too-large")
        unknown = await harness.station_http.put("/firmware/uploads/not-a-token", content=b"x")
        assert_problem(unknown, 404, "unknown-upload")
        async with transaction(harness.service.factory) as session:
            await session.exec(update(LogRequest).values(expires_at=utc_now() - timedelta(1)))
        late = await harness.station_http.put(url, content=b"late")
        assert_problem(late, 410, "upload-expired")
        offline = await harness.api.post("/firmware/stations/GHOST/logs", json={})
        assert_problem(offline, 404, "unknown-station")
        await harness.disconnect("B")
        assert_problem(
            await harness.api.post("/firmware/stations/B/logs", json={}), 409, "station-offline"
        )
        no_ftp = await harness.api.post("/firmware/stations/B/logs", json={"protocol": "ftp"})
        assert no_ftp.status_code in (409, 422)


async def test_diagnostics_upload_by_ftp(tmp_path: Path) -> None:
    port = free_port()
    async with running_firmware(settings_for_tests(tmp_path, ftp_port=port)) as harness:
        await harness.boot("A", version=OcppVersion.V16)
        await harness.settle()
        created = await ask(harness, "A", protocol="ftp")
        location = harness.stations.sent("A", "GetDiagnostics")[-1].payload["location"]
        assert location.startswith("ftp://") and location.endswith(f"@127.0.0.1:{port}/")
        user = location.removeprefix("ftp://").split(":")[0]

        def upload(user: str) -> None:
            with ftplib.FTP() as ftp:  # noqa: S321 - what 1.6 chargers speak
                ftp.connect("127.0.0.1", port, timeout=10)
                ftp.login(user, "upload")
                ftp.storbinary("STOR diagnostics.zip", io.BytesIO(LOG))

        await asyncio.to_thread(upload, user)
        body = (await harness.api.get(f"/firmware/logs/{created['request_id']}")).json()
        assert body["file"]["protocol"] == "ftp" and body["file"]["size"] == len(LOG)

        def refused() -> str:
            try:
                upload("wrong-token")
            except ftplib.error_perm as exc:
                return str(exc)
            return "accepted"

        assert (await asyncio.to_thread(refused)).startswith("530")
