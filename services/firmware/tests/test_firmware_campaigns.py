"""Campaigns end to end on the embedded bus: per-version messages, statuses, boots, events."""

from typing import Any

import httpx
from firmware_harness import Harness

from csms_ocpp import OcppVersion, schemas


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


async def test_tc_044_1_and_tc_l_01_update_every_version_done_at_boot(harness: Harness) -> None:
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
            schemas.validate(harness.versions[station_id], command.action, command.payload) is None
        )

    request_b = sent["B"].payload["requestId"]
    for status in ("Downloading", "Downloaded", "Installing", "Installed"):
        await harness.status("A", status)
        await harness.status("B", status, request_b)
    await harness.status("B", "Installed", request_b)  # a repeat changes nothing
    await harness.settle()
    rows = (await harness.api.get(f"/firmware/campaigns/{created['campaign_id']}/stations")).json()
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
        e.data["status"] for e in harness.events("firmware.status.reported") if e.station_id == "B"
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
