"""REST: topology CRUD, and bad input rejected with a clear problem+json."""

from typing import Any

import httpx
import pytest

from csms_api.roles import Role
from csms_core.identity import site_of
from tests.kits.api import bearer_headers
from tests.kits.smartcharging import Harness


def assert_problem(
    response: httpx.Response, status: int, kind: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    if kind is not None:
        assert body["type"] == f"urn:csms:problem:{kind}"
    return body


async def test_site_group_station_crud(api: httpx.AsyncClient) -> None:
    assert (await api.put("/sites/s1", json={"limit_kw": 69, "name": "Depot"})).status_code == 201
    assert (await api.put("/sites/s1", json={"limit_a": 100})).status_code == 200
    assert (await api.put("/sites/s1/groups/g1", json={"limit_a": 63})).status_code == 201
    body = {"parent_group_id": "g1", "limit_a": 32}
    assert (await api.put("/sites/s1/groups/g2", json=body)).status_code == 201
    station = {
        "group_id": "g2",
        "evses": [{"evse_id": 1, "phases": 1, "phase_rotation": "STR", "max_a": 16}],
    }
    response = await api.put("/sites/s1/stations/CP-1", json=station)
    assert response.status_code == 201, response.text
    assert response.json()["evses"][0]["phase_rotation"] == "STR"
    assert [s["station_id"] for s in (await api.get("/sites/s1/stations")).json()] == ["CP-1"]
    assert len((await api.get("/sites/s1/groups")).json()) == 2
    allocation = (await api.get("/sites/s1/allocation")).json()
    assert allocation["site"]["limit_a"] == [100.0, 100.0, 100.0]
    load = await api.put("/sites/s1/load", json={"load_a": [10, 20, 30]})
    assert load.status_code == 200, load.text
    allocation = (await api.get("/sites/s1/allocation")).json()
    assert allocation["site"]["available_a"] == [90.0, 80.0, 70.0]
    assert_problem(await api.delete("/sites/s1"), 409, "site-in-use")
    assert (await api.delete("/sites/s1/stations/CP-1")).status_code == 204
    assert_problem(await api.delete("/sites/s1/groups/g1"), 409, "group-in-use")
    assert (await api.delete("/sites/s1/groups/g2")).status_code == 204
    assert (await api.delete("/sites/s1")).status_code == 204


@pytest.mark.parametrize(
    "body",
    [{"limit_a": -1}, {"limit_kw": -5}, {"phases": 2}, {"voltage_v": 0}, {"unknown": 1}],
)
async def test_bad_site_is_rejected(api: httpx.AsyncClient, body: dict[str, Any]) -> None:
    assert_problem(await api.put("/sites/s1", json=body), 422, "invalid-request")


async def test_limit_on_an_unknown_site(api: httpx.AsyncClient) -> None:
    response = await api.post("/sites/nowhere/limit-override", json={"limit_a": 10})
    body = assert_problem(response, 404, "unknown-site")
    assert body["detail"] == "no site nowhere"
    assert_problem(await api.put("/sites/nowhere/load", json={"load_a": 5}), 404, "unknown-site")
    assert_problem(await api.get("/sites/nowhere/allocation"), 404, "unknown-site")


async def test_group_cycle_is_rejected(api: httpx.AsyncClient) -> None:
    await api.put("/sites/s1", json={"limit_a": 100})
    await api.put("/sites/s1/groups/a", json={})
    await api.put("/sites/s1/groups/b", json={"parent_group_id": "a"})
    response = await api.put("/sites/s1/groups/a", json={"parent_group_id": "b"})
    body = assert_problem(response, 422, "group-cycle")
    assert body["detail"] == "group cycle: a → b → a"
    assert_problem(
        await api.put("/sites/s1/groups/c", json={"parent_group_id": "c"}), 422, "group-cycle"
    )


async def test_station_in_two_sites_is_rejected(api: httpx.AsyncClient) -> None:
    await api.put("/sites/s1", json={"limit_a": 100})
    await api.put("/sites/s2", json={"limit_a": 100})
    assert (await api.put("/sites/s1/stations/CP-1", json={})).status_code == 201
    response = await api.put("/sites/s2/stations/CP-1", json={})
    body = assert_problem(response, 409, "station-in-other-site")
    assert "already on site s1" in body["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"limit_a": 10, "limit_kw": 5},
        {},
        {"limit_a": -3},
        {"limit_a": 10, "until": "2026-01-01T00:00:00"},  # no offset
    ],
)
async def test_bad_override_is_rejected(api: httpx.AsyncClient, body: dict[str, Any]) -> None:
    await api.put("/sites/s1", json={"limit_a": 100})
    assert_problem(await api.post("/sites/s1/limit-override", json=body), 422, "invalid-request")


@pytest.mark.parametrize(
    "body",
    [
        {"start": "17:00", "end": "21:00"},
        {"start": "25:00", "end": "21:00", "limit_a": 5},
        {"start": "17:00", "end": "21:00", "limit_a": 5, "days": [7]},
        {"start": "17:00", "end": "21:00", "limit_a": 5, "timezone": "Mars/Olympus"},
    ],
)
async def test_bad_schedule_is_rejected(api: httpx.AsyncClient, body: dict[str, Any]) -> None:
    await api.put("/sites/s1", json={"limit_a": 100})
    assert_problem(await api.post("/sites/s1/schedules", json=body), 422, "invalid-request")


async def test_bad_evse_rating_is_rejected(api: httpx.AsyncClient) -> None:
    await api.put("/sites/s1", json={"limit_a": 100})
    bad_range: dict[str, Any] = {"evses": [{"evse_id": 1, "min_a": 20, "max_a": 16}]}
    response = await api.put("/sites/s1/stations/CP-1", json=bad_range)
    assert_problem(response, 422, "invalid-request")
    bad_rotation: dict[str, Any] = {"evses": [{"evse_id": 1, "phase_rotation": "XYZ"}]}
    response = await api.put("/sites/s1/stations/CP-1", json=bad_rotation)
    assert_problem(response, 422, "invalid-request")


async def test_composite_schedule_of_an_offline_station(api: httpx.AsyncClient) -> None:
    response = await api.get("/stations/CP-404/composite-schedule", params={"evse_id": 1})
    assert_problem(response, 409, "station-offline")


async def test_unknown_route_is_a_problem(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get("/nothing-here"), 404)


async def test_assigning_a_station_writes_the_station_directory(
    api: httpx.AsyncClient, harness: Harness
) -> None:
    assert (await api.put("/sites/s1", json={"limit_a": 100})).status_code == 201
    assert (await api.put("/sites/s1/stations/CP-1", json={})).status_code == 201
    async with harness.service.factory() as session:
        assert await site_of(session, "CP-1") == "s1"

    assert (await api.delete("/sites/s1/stations/CP-1")).status_code == 204
    async with harness.service.factory() as session:
        assert await site_of(session, "CP-1") is None


async def test_a_site_limited_key_sees_and_changes_only_its_sites(
    api: httpx.AsyncClient, harness: Harness
) -> None:
    for site_id in ("s1", "s2"):
        assert (await api.put(f"/sites/{site_id}", json={"limit_a": 100})).status_code == 201
    assert (await api.put("/sites/s2/stations/CP-2", json={})).status_code == 201
    limited = await bearer_headers(harness.service.engine, Role.OPERATOR, sites=["s1"])

    listed = await api.get("/sites", headers=limited)
    assert [site["site_id"] for site in listed.json()] == ["s1"]
    assert_problem(await api.get("/sites/s2", headers=limited), 404, "unknown-site")
    zero = await api.post("/sites/s2/limit-override", json={"limit_a": 0}, headers=limited)
    assert_problem(zero, 404, "unknown-site")
    assert_problem(await api.put("/sites/s3", json={"limit_a": 1}, headers=limited), 403)
    taken = await api.put("/sites/s1/stations/CP-2", json={}, headers=limited)
    assert "another site" in assert_problem(taken, 409)["detail"]
    limits = await api.get("/stations/CP-2/charging-limits", headers=limited)
    assert_problem(limits, 404, "unknown-station")


async def test_a_viewer_cannot_change_a_limit(api: httpx.AsyncClient, harness: Harness) -> None:
    assert (await api.put("/sites/s1", json={"limit_a": 100})).status_code == 201
    viewer = await bearer_headers(harness.service.engine, Role.VIEWER)

    response = await api.post("/sites/s1/limit-override", json={"limit_a": 0}, headers=viewer)

    assert_problem(response, 403, "forbidden")
    assert (await api.get("/sites/s1/allocation", headers=viewer)).json()["site"]["limit_a"] == [
        100.0
    ] * 3


async def test_an_id_past_64_bits_is_422_not_a_database_error(api: httpx.AsyncClient) -> None:
    assert (await api.put("/sites/depot-1", json={"limit_a": 100})).status_code == 201
    response = await api.delete("/sites/depot-1/schedules/32589158477190044730")
    assert_problem(response, 422)
