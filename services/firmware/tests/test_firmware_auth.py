"""REST access to the firmware service: a bearer token on every /api/v1 route, reads for
viewers, writes for admins, site-limited tokens kept to their sites' stations; the station
file endpoints (image downloads, log uploads) need only their URL's token."""

import re
from pathlib import Path

from firmware_harness import Harness, running_firmware, settings_for_tests
from test_firmware_campaigns import assert_problem, campaign

from csms_api.roles import Role
from csms_core.db import transaction
from csms_core.identity import assign_site
from csms_firmware.app import create_app
from csms_ocpp import OcppVersion
from tests.kits.api import bearer_headers

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def api_routes(harness: Harness) -> list[tuple[str, str]]:
    """(method, example path) of every /api/v1 operation the firmware app serves."""
    spec = create_app(harness.service).openapi()
    return sorted(
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, item in spec["paths"].items()
        if path.startswith("/api/v1/")
        for method in item
    )


async def test_every_route_refuses_a_request_without_a_token(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        routes = api_routes(harness)
        assert len(routes) >= 25  # catalogue, campaigns, stations, sites, publications, logs
        for method, path in routes:
            body: dict[str, str] | None = {} if method in WRITES - {"DELETE"} else None
            response = await harness.station_http.request(method, path, json=body)
            problem = assert_problem(response, 401, "unauthenticated")
            assert response.headers["www-authenticate"].startswith("Bearer"), path
            assert "Bearer" in problem["detail"], path
        spec = create_app(harness.service).openapi()
        roles = {
            (method.upper(), path): operation["x-required-role"]
            for path, item in spec["paths"].items()
            if path.startswith("/api/v1/firmware")
            for method, operation in item.items()
        }
        assert set(roles.values()) == {"viewer", "admin"}
        assert all(role == "admin" for (method, _), role in roles.items() if method in WRITES)
        assert all(role == "viewer" for (method, _), role in roles.items() if method == "GET")


async def test_a_viewer_reads_and_may_not_write(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.boot("A")
        await harness.settle()
        viewer = await bearer_headers(harness.service.engine, Role.VIEWER)
        operator = await bearer_headers(harness.service.engine, Role.OPERATOR)
        for method, path in api_routes(harness):
            path = path.replace("/stations/1", "/stations/A")
            body: dict[str, str] | None = {} if method in WRITES - {"DELETE"} else None
            response = await harness.station_http.request(method, path, json=body, headers=viewer)
            if method in WRITES:
                assert_problem(response, 403, "forbidden")
                refused = await harness.station_http.request(
                    method, path, json=body, headers=operator
                )
                assert_problem(refused, 403, "forbidden")
            else:
                assert response.status_code in (200, 404), f"{method} {path}: {response.text}"
        listed = await harness.station_http.get("/api/v1/firmware/stations", headers=viewer)
        assert [s["station_id"] for s in listed.json()["items"]] == ["A"]


async def test_the_station_file_endpoints_need_no_bearer_token(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.boot("A")
        image = await harness.add_image(b"image" * 100)
        await campaign(harness, image["image_id"], target={"station_ids": ["A"]})
        await harness.plan()
        [update] = harness.stations.sent("A", "UpdateFirmware")
        location = update.payload["firmware"]["location"].removeprefix("http://files.test")
        downloaded = await harness.station_http.get(location)
        assert downloaded.status_code == 200 and downloaded.content == b"image" * 100
        created = await harness.api.post("/firmware/stations/A/logs", json={})
        assert created.status_code == 201, created.text
        [get_log] = harness.stations.sent("A", "GetLog")
        upload = get_log.payload["log"]["remoteLocation"].removeprefix("http://files.test")
        put = await harness.station_http.put(upload, content=b"log")
        assert put.status_code == 201, put.text


async def test_a_site_limited_token_sees_and_changes_its_sites_stations_only(
    tmp_path: Path,
) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.boot("A", version=OcppVersion.V201)
        await harness.boot("B", version=OcppVersion.V201)
        async with transaction(harness.service.factory) as session:
            await assign_site(session, "A", "depot-1")
        engine = harness.service.engine
        viewer = await bearer_headers(engine, Role.VIEWER, sites=["depot-1"])
        admin = await bearer_headers(engine, Role.ADMIN, sites=["depot-1"])
        http = harness.station_http
        image = await harness.add_image()
        await harness.settle()

        listed = (await http.get("/api/v1/firmware/stations", headers=viewer)).json()
        assert [s["station_id"] for s in listed["items"]] == ["A"]
        outdated = (await http.get("/api/v1/firmware/outdated", headers=viewer)).json()
        assert [s["station_id"] for s in outdated["items"]] == ["A"]
        assert (await http.get("/api/v1/firmware/stations/A", headers=viewer)).status_code == 200
        hidden = await http.get("/api/v1/firmware/stations/B", headers=viewer)
        assert_problem(hidden, 404, "unknown-station")
        for path in (
            "/api/v1/firmware/stations/B/logs",
            "/api/v1/firmware/stations/B/publications",
        ):
            body = {"image_id": image["image_id"]} if path.endswith("publications") else {}
            assert_problem(await http.post(path, json=body, headers=admin), 404, "unknown-station")
        refused = await http.post(
            "/api/v1/firmware/images", files={"file": ("x.bin", b"x")}, headers=admin
        )
        assert_problem(refused, 403, "forbidden-for-site-limited")

        everyone = await campaign(harness, image["image_id"], target={"model": "AC22"})
        assert everyone["counts"]["pending"] == 2
        assert_problem(
            await http.get(f"/api/v1/firmware/campaigns/{everyone['campaign_id']}", headers=viewer),
            404,
            "unknown-campaign",
        )
        paused = await http.post(
            f"/api/v1/firmware/campaigns/{everyone['campaign_id']}/pause", headers=admin
        )
        assert_problem(paused, 404, "unknown-campaign")
        cancelled = await harness.api.post(f"/firmware/campaigns/{everyone['campaign_id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text

        own = await http.post(
            "/api/v1/firmware/campaigns",
            json={"image_id": image["image_id"], "target": {"model": "AC22"}},
            headers=admin,
        )
        assert own.status_code == 201, own.text
        assert own.json()["counts"]["pending"] == 1
        mine = (await http.get("/api/v1/firmware/campaigns", headers=viewer)).json()
        assert [c["campaign_id"] for c in mine["items"]] == [own.json()["campaign_id"]]
        stations = await http.get(
            f"/api/v1/firmware/campaigns/{own.json()['campaign_id']}/stations", headers=viewer
        )
        assert [s["station_id"] for s in stations.json()["items"]] == ["A"]
        explicit = await http.post(
            "/api/v1/firmware/campaigns",
            json={"image_id": image["image_id"], "target": {"station_ids": ["B"]}},
            headers=admin,
        )
        assert_problem(explicit, 422, "unknown-stations")

        log_of_b = await harness.api.post("/firmware/stations/B/logs", json={})
        assert log_of_b.status_code == 201, log_of_b.text
        logs = (await http.get("/api/v1/firmware/logs", headers=viewer)).json()
        assert logs["items"] == []
        request_id = log_of_b.json()["request_id"]
        for path in (
            f"/api/v1/firmware/logs/{request_id}",
            f"/api/v1/firmware/logs/{request_id}/file",
        ):
            assert_problem(await http.get(path, headers=viewer), 404, "unknown-log-request")
