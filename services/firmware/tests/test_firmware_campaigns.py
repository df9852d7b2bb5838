"""Campaigns end to end on the embedded bus: per-version messages, statuses, boots, events."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from firmware_harness import Harness, running_firmware, settings_for_tests

from csms_firmware.db import utc_now
from csms_ocpp import OcppVersion, schemas
from tests.firmware_signing import rsa_signer, signature_holds


def assert_problem(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == f"urn:csms:problem:{kind}"
    return body


async def campaign(harness: Harness, image_id: str, **body: Any) -> dict[str, Any]:
    await harness.settle()  # the boots are in
    response = await harness.api.post("/firmware/campaigns", json={"image_id": image_id, **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def read(harness: Harness, campaign_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await harness.api.get(f"/firmware/campaigns/{campaign_id}")).json()
    return body


async def test_tc_044_1_and_tc_l_01_update_every_version_done_at_boot(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        for station_id, version in (
            ("A", OcppVersion.V16),
            ("B", OcppVersion.V201),
            ("C", OcppVersion.V21),
        ):
            await harness.boot(station_id, "1.0.0", version=version)
        image = await harness.add_image()
        created = await campaign(harness, image["image_id"], target={"model": "AC22"})
        assert created["state"] == "running"
        assert created["counts"]["pending"] == 3
        await harness.plan()

        sent = {c.station_id: c for c in harness.stations.sent()}
        assert sent["A"].action == "UpdateFirmware" and "requestId" not in sent["A"].payload
        assert sent["A"].payload["location"].startswith("http://files.test/firmware/files/")
        assert sent["B"].payload["requestId"] != sent["C"].payload["requestId"]
        for station_id, command in sent.items():
            assert (
                schemas.validate(harness.versions[station_id], command.action, command.payload)
                is None
            )

        request_b = sent["B"].payload["requestId"]
        for status in ("Downloading", "Downloaded", "Installing", "Installed"):
            await harness.status("A", status)
            await harness.status("B", status, request_b)
        await harness.status("B", "Installed", request_b)  # a repeat changes nothing
        await harness.settle()
        rows = (
            await harness.api.get(f"/firmware/campaigns/{created['campaign_id']}/stations")
        ).json()
        states = {row["station_id"]: row["state"] for row in rows["items"]}
        assert states == {"A": "installing", "B": "installing", "C": "sent"}

        await harness.boot("A", "2.0.0")
        await harness.boot("B", "2.0.0")
        await harness.plan()
        view = await read(harness, created["campaign_id"])
        assert view["counts"]["succeeded"] == 2
        assert view["state"] == "running"

        await harness.boot("C", "2.0.0")
        await harness.plan()
        view = await read(harness, created["campaign_id"])
        assert view["state"] == "completed", view
        reported = [
            e.data["status"]
            for e in harness.events("firmware.status.reported")
            if e.station_id == "B"
        ]
        assert reported == ["Downloading", "Downloaded", "Installing", "Installed"]
        states_b = [
            e.data["state"]
            for e in harness.events("firmware.station.state_changed")
            if e.station_id == "B"
        ]
        assert states_b == [
            "dispatching",
            "sent",
            "downloading",
            "downloaded",
            "installing",
            "succeeded",
        ]
        assert [e.data["state"] for e in harness.events("firmware.campaign.state_changed")] == [
            "running",
            "completed",
        ]


async def rows(harness: Harness, campaign_id: str) -> dict[str, dict[str, Any]]:
    body = (await harness.api.get(f"/firmware/campaigns/{campaign_id}/stations")).json()
    return {row["station_id"]: row for row in body["items"]}


async def test_bad_campaigns_are_refused_clearly(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.boot("CP-1", "1.0.0")
        await harness.boot("CP-X", "1.0.0", model="OTHER")
        image = await harness.add_image()
        await harness.settle()
        post = harness.api.post
        unknown = await post(
            "/firmware/campaigns", json={"image_id": "nope", "target": {"model": "AC22"}}
        )
        assert_problem(unknown, 404, "unknown-image")
        image_id = image["image_id"]
        nothing = await post(
            "/firmware/campaigns", json={"image_id": image_id, "target": {"site_id": "nowhere"}}
        )
        assert_problem(nothing, 422, "empty-target")
        never = await post(
            "/firmware/campaigns",
            json={
                "image_id": image_id,
                "target": {"model": "AC22"},
                "plan": {"window": {"start": "02:00", "end": "02:00"}},
            },
        )
        assert_problem(never, 422, "window-never-opens")
        weekend_only = await post(
            "/firmware/campaigns",
            json={
                "image_id": image_id,
                "target": {"model": "AC22"},
                "plan": {"window": {"start": "01:00", "end": "02:00", "days": []}},
            },
        )
        assert_problem(weekend_only, 422, "window-never-opens")
        strangers = await post(
            "/firmware/campaigns", json={"image_id": image_id, "target": {"station_ids": ["GHOST"]}}
        )
        assert_problem(strangers, 422, "unknown-stations")
        misfit = await post(
            "/firmware/campaigns", json={"image_id": image_id, "target": {"station_ids": ["CP-X"]}}
        )
        assert_problem(misfit, 422, "incompatible-stations")
        no_target = await post("/firmware/campaigns", json={"image_id": image_id, "target": {}})
        assert_problem(no_target, 422, "invalid-request")
        # A fleet named by id passes the apps' 1 MiB body limit (each id read, and unknown).
        fleet = [f"CP-{index:08d}-{'x' * 16}" for index in range(60_000)]
        many = await post(
            "/firmware/campaigns", json={"image_id": image_id, "target": {"station_ids": fleet}}
        )
        assert_problem(many, 422, "unknown-stations")
        too_many = await post(
            "/firmware/campaigns",
            json={"image_id": image_id, "target": {"station_ids": fleet * 5}},
        )
        assert_problem(too_many, 413, "body-too-large")
        first = await campaign(harness, image_id, target={"station_ids": ["CP-1"]})
        second = await post(
            "/firmware/campaigns", json={"image_id": image_id, "target": {"model": "AC22"}}
        )
        body = assert_problem(second, 409, "station-in-campaign")
        assert body["stations"] == {"CP-1": first["campaign_id"]}
        assert_problem(await harness.api.get("/firmware/campaigns/nope"), 404, "unknown-campaign")
        assert_problem(await post("/firmware/campaigns/nope/pause"), 404, "unknown-campaign")
        assert_problem(
            await post(f"/firmware/campaigns/{first['campaign_id']}/resume"), 409, "campaign-state"
        )
        in_use = await harness.api.delete(f"/firmware/images/{image_id}")
        assert_problem(in_use, 409, "image-in-use")


async def test_tc_044_2_download_failed_is_retried_then_fails(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.boot("A", "1.0.0", version=OcppVersion.V16)
        image = await harness.add_image()
        created = await campaign(
            harness,
            image["image_id"],
            target={"station_ids": ["A"]},
            plan={"retries": 1, "retry_delay_s": 0},
        )
        await harness.plan()
        await harness.status("A", "Downloading")
        await harness.status("A", "DownloadFailed")
        await harness.settle()
        row = (await rows(harness, created["campaign_id"]))["A"]
        assert row["state"] == "pending" and row["reason"] == "attempt 1: DownloadFailed"
        await harness.plan()
        assert len(harness.stations.sent("A", "UpdateFirmware")) == 2
        await harness.status("A", "Downloading")
        await harness.status("A", "DownloadFailed")
        await harness.plan()
        row = (await rows(harness, created["campaign_id"]))["A"]
        assert (row["state"], row["attempt"]) == ("failed", 2)
        assert (await read(harness, created["campaign_id"]))["state"] == "completed"


async def test_tc_044_3_and_tc_l_09_installation_failed(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.boot("B", "1.0.0")
        image = await harness.add_image()
        created = await campaign(
            harness, image["image_id"], target={"model": "AC22"}, plan={"retries": 0}
        )
        await harness.plan()
        request_id = harness.stations.sent("B")[0].payload["requestId"]
        for status in ("Downloading", "Downloaded", "Installing", "InstallationFailed"):
            await harness.status("B", status, request_id)
        await harness.plan()
        row = (await rows(harness, created["campaign_id"]))["B"]
        assert (row["state"], row["reason"], row["ocpp_status"]) == (
            "failed",
            "InstallationFailed",
            "InstallationFailed",
        )


async def test_tc_l_06_invalid_signature_and_tc_l_08_verification_are_not_retried(
    tmp_path: Path,
) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.boot("B", "1.0.0")
        await harness.boot("C", "1.0.0")
        signer, content = rsa_signer(), b"firmware-2.0.0" * 100
        image = await harness.add_image(
            content, signature=signer.sign(content), signing_certificate=signer.certificate_pem
        )
        created = await campaign(
            harness, image["image_id"], target={"model": "AC22"}, plan={"retries": 3}
        )
        await harness.plan()
        sent = {c.station_id: c.payload for c in harness.stations.sent()}
        assert signature_holds(content, sent["B"]["firmware"]["signature"], signer.certificate_pem)
        assert sent["B"]["firmware"]["signingCertificate"] == signer.certificate_pem
        await harness.status("B", "InvalidSignature", sent["B"]["requestId"])
        await harness.status("C", "InstallVerificationFailed", sent["C"]["requestId"])
        await harness.plan()
        states = {k: v["state"] for k, v in (await rows(harness, created["campaign_id"])).items()}
        assert states == {"B": "failed", "C": "failed"}


async def test_tc_080_signed_update_on_1_6_and_fallback_without_the_extension(
    tmp_path: Path,
) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.boot("S", "1.0.0", version=OcppVersion.V16)
        await harness.boot("P", "1.0.0", version=OcppVersion.V16)
        harness.stations.answer("P", "SignedUpdateFirmware", "NotImplemented")
        signer, content = rsa_signer(), b"firmware-2.0.0" * 100
        image = await harness.add_image(
            content, signature=signer.sign(content), signing_certificate=signer.certificate_pem
        )
        await campaign(harness, image["image_id"], target={"model": "AC22"})
        await harness.plan()
        [signed] = harness.stations.sent("S")
        assert signed.action == "SignedUpdateFirmware"
        assert {"requestId", "firmware"} <= set(signed.payload)
        assert signed.payload["firmware"]["signingCertificate"] == signer.certificate_pem
        assert [c.action for c in harness.stations.sent("P")] == [
            "SignedUpdateFirmware",
            "UpdateFirmware",
        ]
        await harness.call(
            "S",
            "SignedFirmwareStatusNotification",
            {"status": "SignatureVerified", "requestId": signed.payload["requestId"]},
        )
        await harness.settle()
        states = [e.data["state"] for e in harness.events("firmware.station.state_changed", "S")]
        assert states[-1] == "downloaded"


async def test_tc_l_04_05_refused_certificates_and_tc_l_10_accepted_canceled(
    tmp_path: Path,
) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        for station_id in ("R", "I", "K"):
            await harness.boot(station_id, "1.0.0")
        harness.stations.answer("R", "UpdateFirmware", {"status": "RevokedCertificate"})
        harness.stations.answer("I", "UpdateFirmware", {"status": "InvalidCertificate"})
        harness.stations.answer("K", "UpdateFirmware", {"status": "AcceptedCanceled"})
        image = await harness.add_image()
        created = await campaign(
            harness, image["image_id"], target={"model": "AC22"}, plan={"retries": 2}
        )
        await harness.plan()
        found = await rows(harness, created["campaign_id"])
        assert {k: (v["state"], v["ocpp_status"]) for k, v in found.items()} == {
            "R": ("failed", "RevokedCertificate"),
            "I": ("failed", "InvalidCertificate"),
            "K": ("sent", "AcceptedCanceled"),
        }


async def test_a_rejected_update_is_retried_and_an_offline_station_waits(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.boot("J", "1.0.0")
        await harness.boot("O", "1.0.0")
        harness.stations.answer("J", "UpdateFirmware", {"status": "Rejected"})
        await harness.disconnect("O")
        image = await harness.add_image()
        created = await campaign(
            harness,
            image["image_id"],
            target={"model": "AC22"},
            plan={"retries": 1, "retry_delay_s": 0},
        )
        await harness.plan()
        assert harness.stations.sent("O") == []
        found = await rows(harness, created["campaign_id"])
        assert found["J"]["state"] == "pending" and found["O"]["state"] == "pending"
        await harness.connect("O")
        await harness.plan()
        assert [c.action for c in harness.stations.sent("O")] == ["UpdateFirmware"]
        found = await rows(harness, created["campaign_id"])
        assert found["J"]["state"] == "failed" and found["O"]["state"] == "sent"


async def test_a_trigger_answer_without_request_id_and_silence(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.boot("B", "1.0.0")
        image = await harness.add_image()
        created = await campaign(
            harness,
            image["image_id"],
            target={"model": "AC22"},
            plan={"silence_timeout_s": 600, "retries": 0},
        )
        await harness.plan()
        sent_at = utc_now()
        await harness.service.runner.round(sent_at + timedelta(seconds=350))  # half: asked
        assert [c.payload for c in harness.stations.sent("B", "TriggerMessage")] == [
            {"requestedMessage": "FirmwareStatusNotification"}
        ]
        # The trigger's answer: no requestId (L01.FR.20).
        spoke = sent_at + timedelta(seconds=360)
        await harness.status("B", "Downloading", received_at=spoke)
        await harness.settle()
        assert (await rows(harness, created["campaign_id"]))["B"]["state"] == "downloading"
        await harness.service.runner.round(spoke + timedelta(seconds=599))
        assert (await rows(harness, created["campaign_id"]))["B"]["state"] == "downloading"
        await harness.service.runner.round(spoke + timedelta(seconds=601))
        row = (await rows(harness, created["campaign_id"]))["B"]
        assert row["state"] == "failed" and "no word" in row["reason"]


async def test_threshold_pauses_resume_goes_on_cancel_frees(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        for index in range(6):
            await harness.boot(f"T{index}", "1.0.0")
        image = await harness.add_image()
        created = await campaign(
            harness,
            image["image_id"],
            target={"model": "AC22"},
            plan={"wave_size": 2, "retries": 0, "failure_threshold": {"count": 1}},
        )
        campaign_id = created["campaign_id"]
        await harness.plan()
        first = [c.station_id for c in harness.stations.sent()]
        assert first == ["T0", "T1"]
        await harness.status(
            "T0", "DownloadFailed", harness.stations.sent("T0")[0].payload["requestId"]
        )
        await harness.boot("T1", "2.0.0")
        await harness.plan()
        view = await read(harness, campaign_id)
        assert (view["state"], view["state_reason"]) == ("paused", "failure threshold reached")
        assert len(harness.stations.sent()) == 2
        resumed = await harness.api.post(f"/firmware/campaigns/{campaign_id}/resume")
        assert resumed.status_code == 200, resumed.text
        await harness.plan()
        assert [c.station_id for c in harness.stations.sent()][2:] == ["T2", "T3"]
        paused = await harness.api.post(f"/firmware/campaigns/{campaign_id}/pause")
        assert paused.json()["state"] == "paused"
        cancelled = await harness.api.post(f"/firmware/campaigns/{campaign_id}/cancel")
        assert cancelled.json()["counts"]["cancelled"] == 4
        again = await campaign(harness, image["image_id"], target={"station_ids": ["T4", "T5"]})
        assert again["state"] == "running"
