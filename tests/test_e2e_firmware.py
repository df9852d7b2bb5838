"""Firmware and logs end to end: REST → firmware service → Redis → gateway → station, and
the station's statuses, downloads, uploads and next boot back, per OCPP version.

Real ``csms`` processes (two gateways, two sessions replicas, a firmware service) on real
Kafka, Redis and PostgreSQL; stations played by the ``ocpp`` package's ChargePoint, which
really download the image over HTTP and upload their log with HTTP PUT.
"""

import asyncio
import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from csms_core import topics
from tests.cluster import Component, Infra
from tests.cluster_firmware import firmware, reset_firmware
from tests.conftest import Cluster
from tests.firmware_signing import rsa_signer
from tests.station_handlers_firmware import Device, boot_call, firmware_station
from tests.topic_reader import read_topic
from tests.waiting import eventually

pytestmark = pytest.mark.integration

START_TIMEOUT_S = 240.0
WAIT_S = 60.0
IMAGE = b"ACME AC22 firmware 2.0.0\n" * 4000


@pytest.fixture(scope="module")
def firmware_cluster(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Cluster, Component]]:
    """Two gateways, two sessions replicas and one firmware service of their own."""
    reset_firmware(infra)
    log_dir = tmp_path_factory.mktemp("logs")
    csms = Cluster(infra, log_dir)
    component = firmware(infra, csms.group, "firmware", log_dir)
    try:
        # With more patience than Cluster.start: these processes share the CPU with others.
        csms.start_with(component, timeout_s=START_TIMEOUT_S)
        yield csms, component
    finally:
        csms.stop(component)


def firmware_api(component: Component, admin: dict[str, str]) -> httpx.AsyncClient:
    """The firmware replica's REST API, as an admin."""
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{component.port}/api/v1", timeout=30, headers=admin
    )


async def register_and_boot(
    csms: Cluster, api: httpx.AsyncClient, station_id: str, client: Any, device: Device
) -> None:
    async with httpx.AsyncClient(
        base_url=csms.api_url(), timeout=30, headers=csms.admin
    ) as sessions:
        response = await sessions.put(f"/stations/{station_id}", json={})
        assert response.status_code in (200, 201), response.text
    answer = await client.call(boot_call(device))
    assert answer.status in ("Accepted", "Pending")

    async def known() -> bool:
        response = await api.get(f"/firmware/stations/{station_id}")
        return response.status_code == 200 and response.json()["online"]

    await eventually(known, timeout_s=WAIT_S)


async def image_id(api: httpx.AsyncClient, version: str = "2.0.0", **signed: str) -> str:
    """The ACME image of ``version`` (added if the catalogue has none yet)."""
    listed = (await api.get("/firmware/images", params={"vendor": "ACME"})).json()
    for item in listed["items"]:
        if item["version"] == version:
            found: str = item["image_id"]
            return found
    response = await api.post(
        "/firmware/images",
        data={
            "vendor": "ACME",
            "models": "AC22",
            "version": version,
            "sha256": hashlib.sha256(IMAGE).hexdigest(),
            **signed,
        },
        files={"file": (f"acme-{version}.bin", IMAGE)},
    )
    assert response.status_code == 201, response.text
    created: str = response.json()["image_id"]
    return created


@pytest.mark.parametrize(
    ("case", "version"),
    [("tc_044_1", "1.6"), ("tc_l_01", "2.0.1"), ("tc_l_01", "2.1")],
)
async def test_download_install_and_confirmed_by_the_next_boot(
    firmware_cluster: tuple[Cluster, Component], case: str, version: str
) -> None:
    csms, component = firmware_cluster
    station_id = f"FW-{uuid.uuid4().hex[:10]}"
    device = Device(
        version, expected_sha256=hashlib.sha256(IMAGE).hexdigest(), target_version="2.0.0"
    )
    async with firmware_api(component, csms.admin) as api:
        async with firmware_station(csms.ocpp_url(0), station_id, device) as client:
            await register_and_boot(csms, api, station_id, client, device)
            image = await image_id(api)
            response = await api.post(
                "/firmware/campaigns",
                json={"image_id": image, "target": {"station_ids": [station_id]}},
            )
            assert response.status_code == 201, response.text
            campaign_id = response.json()["campaign_id"]
            await asyncio.wait_for(device.installed.wait(), WAIT_S)
            assert device.failures == []
            assert device.downloaded == [IMAGE]
            [(action, payload)] = device.received
            assert action == "UpdateFirmware"
            assert ("request_id" in payload) == (version != "1.6")

            async def installing() -> bool:
                rows = (await api.get(f"/firmware/campaigns/{campaign_id}/stations")).json()
                state: str = rows["items"][0]["state"]
                return state == "installing"

            await eventually(installing, timeout_s=WAIT_S)
        # The station reboots into the new firmware: only its boot completes the campaign.
        async with firmware_station(csms.ocpp_url(1), station_id, device) as client:
            await client.call(boot_call(device, reason="FirmwareUpdate"))

            async def completed() -> dict[str, Any] | None:
                body: dict[str, Any] = (await api.get(f"/firmware/campaigns/{campaign_id}")).json()
                return body if body["state"] == "completed" else None

            body = await eventually(completed, timeout_s=WAIT_S)
            assert body["counts"]["succeeded"] == 1
    events = await read_topic(csms.infra.kafka_bootstrap, csms.topic(topics.FIRMWARE), station_id)
    states = [e.data["state"] for e in events if e.type == "firmware.station.state_changed"]
    # The answer and the station's first status travel on different topics: when the
    # Downloading is read first, the row never goes back to "sent".
    assert [state for state in states if state != "sent"] == [
        "dispatching",
        "downloading",
        "downloaded",
        "installing",
        "succeeded",
    ]
    assert states.count("sent") <= 1
    assert "sent" not in states or states.index("sent") == 1


@pytest.mark.parametrize(
    ("case", "version", "action"),
    [
        ("tc_080", "1.6", "SignedUpdateFirmware"),
        ("tc_l_01", "2.0.1", "UpdateFirmware"),
        ("tc_l_01", "2.1", "UpdateFirmware"),
    ],
)
async def test_a_signed_update_verified_by_the_station(
    firmware_cluster: tuple[Cluster, Component], case: str, version: str, action: str
) -> None:
    """The image's signature and signing certificate reach the station as uploaded (1.6
    by the security whitepaper's SignedUpdateFirmware, 2.x in UpdateFirmware's firmware);
    the station verifies the signature over the file it downloaded before it installs."""
    csms, component = firmware_cluster
    signer = rsa_signer()
    station_id = f"FWS-{uuid.uuid4().hex[:10]}"
    device = Device(
        version, expected_sha256=hashlib.sha256(IMAGE).hexdigest(), target_version="2.1.0"
    )
    async with firmware_api(component, csms.admin) as api:
        image = await image_id(
            api,
            "2.1.0",
            signature=signer.sign(IMAGE),
            signing_certificate=signer.certificate_pem,
        )
        async with firmware_station(csms.ocpp_url(0), station_id, device) as client:
            await register_and_boot(csms, api, station_id, client, device)
            response = await api.post(
                "/firmware/campaigns",
                json={"image_id": image, "target": {"station_ids": [station_id]}},
            )
            assert response.status_code == 201, response.text
            campaign_id = response.json()["campaign_id"]
            await asyncio.wait_for(device.installed.wait(), WAIT_S)
            assert device.failures == [] and device.verified == [True]
            [(sent, payload)] = device.received
            assert sent == action
            firmware = payload.get("firmware", payload)
            assert firmware["signing_certificate"] == signer.certificate_pem
        async with firmware_station(csms.ocpp_url(1), station_id, device) as client:
            await client.call(boot_call(device, reason="FirmwareUpdate"))

            async def completed() -> dict[str, Any] | None:
                body: dict[str, Any] = (await api.get(f"/firmware/campaigns/{campaign_id}")).json()
                return body if body["state"] == "completed" else None

            body = await eventually(completed, timeout_s=WAIT_S)
            assert body["counts"]["succeeded"] == 1
    events = await read_topic(csms.infra.kafka_bootstrap, csms.topic(topics.FIRMWARE), station_id)
    reported = [e.data["status"] for e in events if e.type == "firmware.status.reported"]
    assert reported == ["Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed"]


@pytest.mark.parametrize(
    ("case", "version", "action"),
    [
        ("tc_045_1", "1.6", "GetDiagnostics"),
        ("tc_n_25", "2.0.1", "GetLog"),
        ("tc_n_25", "2.1", "GetLog"),
    ],
)
async def test_a_log_is_uploaded_to_the_csms_and_downloadable(
    firmware_cluster: tuple[Cluster, Component], case: str, version: str, action: str
) -> None:
    csms, component = firmware_cluster
    station_id = f"LOG-{uuid.uuid4().hex[:10]}"
    device = Device(version)
    async with (
        firmware_api(component, csms.admin) as api,
        firmware_station(csms.ocpp_url(0), station_id, device) as client,
    ):
        await register_and_boot(csms, api, station_id, client, device)
        response = await api.post(f"/firmware/stations/{station_id}/logs", json={})
        assert response.status_code == 201, response.text
        request_id = response.json()["request_id"]
        await asyncio.wait_for(device.uploaded.wait(), WAIT_S)
        assert device.failures == []
        assert device.received[0][0] == action

        async def uploaded() -> dict[str, Any] | None:
            body: dict[str, Any] = (await api.get(f"/firmware/logs/{request_id}")).json()
            return (
                body if body["state"] == "uploaded" and body["ocpp_status"] == "Uploaded" else None
            )

        body = await eventually(uploaded, timeout_s=WAIT_S)
        assert body["file"]["size"] == len(device_log())
        file = await api.get(f"/firmware/logs/{request_id}/file")
        assert file.content == device_log()


def device_log() -> bytes:
    from tests.station_handlers_firmware import LOG

    return LOG


async def test_bad_requests_get_problem_json(firmware_cluster: tuple[Cluster, Component]) -> None:
    csms, component = firmware_cluster
    async with firmware_api(component, csms.admin) as api:
        wrong = await api.post(
            "/firmware/images",
            data={"vendor": "ACME", "models": "AC22", "version": "9.9.9", "sha256": "0" * 64},
            files={"file": ("x.bin", b"not the checksummed bytes")},
        )
        assert wrong.status_code == 422
        assert wrong.headers["content-type"] == "application/problem+json"
        assert wrong.json()["type"] == "urn:csms:problem:checksum-mismatch"
        unknown = await api.post(
            "/firmware/campaigns", json={"image_id": "nope", "target": {"model": "AC22"}}
        )
        assert unknown.json()["type"] == "urn:csms:problem:unknown-image"
        missing = await api.get("/firmware/campaigns/nope")
        assert missing.status_code == 404
        assert missing.json()["type"] == "urn:csms:problem:unknown-campaign"
    async with firmware_api(component, {}) as anonymous:
        refused = await anonymous.get("/firmware/campaigns")
        assert refused.status_code == 401
        assert refused.json()["type"] == "urn:csms:problem:unauthenticated"
