"""Local controllers (2.0.1 L03/L04) and asking a station for its firmware status."""

from pathlib import Path

from firmware_harness import running_firmware, settings_for_tests
from test_firmware_campaigns import assert_problem

from csms_ocpp import OcppVersion


async def test_tc_l_17_publish_firmware_published(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.boot("LC", "1.0.0")
        image = await harness.add_image()
        await harness.settle()
        response = await harness.api.post(
            "/firmware/stations/LC/publications", json={"image_id": image["image_id"]}
        )
        assert response.status_code == 201, response.text
        publication = response.json()
        [command] = harness.stations.sent("LC", "PublishFirmware")
        assert command.payload["checksum"] == image["md5"]
        assert command.payload["requestId"] == publication["request_id"]
        for status in ("Downloading", "Downloaded", "ChecksumVerified", "Published"):
            payload = {"status": status, "requestId": publication["request_id"]}
            if status == "Published":
                payload["location"] = ["http://lc.local/fw.bin", "ftp://lc.local/fw.bin"]
            await harness.call("LC", "PublishFirmwareStatusNotification", payload)
        await harness.settle()
        await harness.service.outbox.flush()
        changes = harness.events("firmware.publication.status_changed", "LC")
        assert [e.data["status"] for e in changes] == [
            "Downloading",
            "Downloaded",
            "ChecksumVerified",
            "Published",
        ]
        assert changes[-1].data["locations"] == ["http://lc.local/fw.bin", "ftp://lc.local/fw.bin"]


async def test_tc_l_21_22_23_unpublish(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.boot("LC", "1.0.0")
        image = await harness.add_image()
        await harness.settle()
        url = f"/firmware/stations/LC/publications/{image['image_id']}"
        assert (await harness.api.delete(url)).json() == {
            "action": "UnpublishFirmware",
            "status": "Unpublished",
        }
        for status in ("NoFirmware", "DownloadOngoing"):
            harness.stations.answer("LC", "UnpublishFirmware", {"status": status})
            assert (await harness.api.delete(url)).json()["status"] == status
        assert harness.stations.sent("LC", "UnpublishFirmware")[0].payload == {
            "checksum": image["md5"]
        }


async def test_publish_is_no_1_6_message_and_trigger_status(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.boot("OLD", "1.0.0", version=OcppVersion.V16)
        image = await harness.add_image()
        await harness.settle()
        refused = await harness.api.post(
            "/firmware/stations/OLD/publications", json={"image_id": image["image_id"]}
        )
        assert_problem(refused, 422, "not-in-this-ocpp-version")
        unknown_image = await harness.api.post(
            "/firmware/stations/OLD/publications", json={"image_id": "nope"}
        )
        assert_problem(unknown_image, 404, "unknown-image")
        triggered = await harness.api.post("/firmware/stations/OLD/firmware-status")
        assert triggered.json() == {"action": "TriggerMessage", "status": "Accepted"}
        assert_problem(
            await harness.api.post("/firmware/stations/NOPE/firmware-status"),
            404,
            "unknown-station",
        )
        await harness.status("OLD", "Idle")  # the trigger's answer: recorded, nothing else
        await harness.settle()
        await harness.service.outbox.flush()
        assert [e.data["status"] for e in harness.events("firmware.status.reported", "OLD")] == [
            "Idle"
        ]
