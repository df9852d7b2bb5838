"""REST: stations, and the problem+json shape of every error."""

import httpx
import pytest

from csms_core.identity import verify_password
from csms_ocpp import OcppVersion
from tests.kits.sessions import Harness, assert_problem


async def test_register_then_get_and_list(api: httpx.AsyncClient, sessions: Harness) -> None:
    password = "0123456789abcdef"
    response = await api.put("/api/v1/stations/CP-1", json={"password": password})

    assert response.status_code == 200, response.text
    assert response.json()["registered"] is True
    identity = await sessions.service.identities.get("CP-1")
    assert identity is not None
    assert identity.password_hash is not None
    assert verify_password(password, identity.password_hash)

    detail = (await api.get("/api/v1/stations/CP-1")).json()
    assert detail["station_id"] == "CP-1"
    assert detail["connectors"] == []
    listed = (await api.get("/api/v1/stations")).json()
    assert listed["total"] == 1
    assert [s["station_id"] for s in listed["items"]] == ["CP-1"]
    assert (listed["limit"], listed["offset"]) == (50, 0)


async def test_register_lenient_keeps_password(api: httpx.AsyncClient, sessions: Harness) -> None:
    await api.put("/api/v1/stations/CP-1", json={"password": "0123456789abcdef"})
    await api.put("/api/v1/stations/CP-1", json={"lenient": True})

    identity = await sessions.service.identities.get("CP-1")
    assert identity is not None
    assert identity.lenient is True
    assert identity.password_hash is not None


async def test_a_stations_security_profile_is_recorded_for_the_handshake(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    body = {"password": "0123456789abcdef", "security_profile": 2}
    assert (await api.put("/api/v1/stations/CP-1", json=body)).status_code == 200
    await api.put("/api/v1/stations/CP-1", json={"lenient": True})  # the profile stays

    identity = await sessions.service.identities.get("CP-1")
    assert identity is not None
    assert identity.security_profile == 2


async def test_a_password_profile_without_a_password_is_refused(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    response = await api.put("/api/v1/stations/CP-1", json={"security_profile": 1})
    assert_problem(response, 422)
    assert await sessions.service.identities.get("CP-1") is None
    too_high = await api.put("/api/v1/stations/CP-1", json={"security_profile": 4})
    assert_problem(too_high, 422)


async def test_station_detail_has_connectors(api: httpx.AsyncClient, sessions: Harness) -> None:
    event = await sessions.call(
        "CP-1",
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
    )
    await sessions.processed(event)

    [connector] = (await api.get("/api/v1/stations/CP-1")).json()["connectors"]

    assert connector["evse_id"] == 1
    assert connector["connector_id"] == 1
    assert connector["status"] == "Available"
    assert connector["ocpp_status"] == "Available"


async def test_list_paginates_and_filters_online(api: httpx.AsyncClient, sessions: Harness) -> None:
    for station_id in ("CP-1", "CP-2", "CP-3"):
        await api.put(f"/api/v1/stations/{station_id}", json={})
    await sessions.processed(await sessions.connect("CP-2", "conn-1", OcppVersion.V201))

    page = (await api.get("/api/v1/stations", params={"limit": 2, "offset": 1})).json()
    online = (await api.get("/api/v1/stations", params={"online": True})).json()
    offline = (await api.get("/api/v1/stations", params={"online": False})).json()

    assert ([s["station_id"] for s in page["items"]], page["total"]) == (["CP-2", "CP-3"], 3)
    assert [s["station_id"] for s in online["items"]] == ["CP-2"]
    assert online["items"][0]["online"] is True
    assert offline["total"] == 2


async def test_delete_station(api: httpx.AsyncClient, sessions: Harness) -> None:
    await api.put("/api/v1/stations/CP-1", json={"password": "0123456789abcdef"})

    response = await api.delete("/api/v1/stations/CP-1")

    assert response.status_code == 204
    assert_problem(await api.get("/api/v1/stations/CP-1"), 404)
    assert await sessions.service.identities.get("CP-1") is None
    assert_problem(await api.delete("/api/v1/stations/CP-1"), 404)


async def test_unknown_station_is_404_problem(api: httpx.AsyncClient) -> None:
    body = assert_problem(await api.get("/api/v1/stations/CP-404"), 404)

    assert body["type"] == "urn:csms:problem:unknown-station"
    assert body["instance"] == "/api/v1/stations/CP-404"


async def test_password_too_short_is_422_problem(api: httpx.AsyncClient) -> None:
    body = assert_problem(await api.put("/api/v1/stations/CP-1", json={"password": "short"}), 422)

    assert "password" in str(body["detail"])
    assert_problem(await api.get("/api/v1/stations/CP-1"), 404)


async def test_password_too_long_and_unknown_fields_are_422(api: httpx.AsyncClient) -> None:
    assert_problem(await api.put("/api/v1/stations/CP-1", json={"password": "x" * 41}), 422)
    assert_problem(await api.put("/api/v1/stations/CP-1", json={"secret": "x"}), 422)
    assert_problem(await api.put("/api/v1/stations/CP-1", content=b"not json"), 422)


@pytest.mark.parametrize(
    "station_id", ["x" * 49, "CP%201", "CP%2541", "CP%3Cscript%3E", "CP%C3%A9"]
)
async def test_bad_station_id_is_422_problem(api: httpx.AsyncClient, station_id: str) -> None:
    body = assert_problem(await api.put(f"/api/v1/stations/{station_id}", json={}), 422)

    assert body["type"] == "urn:csms:problem:invalid-station-id"


async def test_bad_pagination_is_422_problem(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get("/api/v1/stations", params={"limit": 0}), 422)
    assert_problem(await api.get("/api/v1/stations", params={"limit": 501}), 422)
    assert_problem(await api.get("/api/v1/stations", params={"offset": -1}), 422)


async def test_unknown_route_and_method_are_problems(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get("/api/v1/nowhere"), 404)
    assert_problem(await api.patch("/api/v1/stations/CP-1", json={}), 405)


async def test_health_and_metrics(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    metrics = await api.get("/metrics")
    assert metrics.status_code == 200
    assert "csms_sessions_events_total" in metrics.text


async def test_openapi_documents_the_routes(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()

    assert spec["paths"]["/api/v1/stations/{station_id}"]["put"]["summary"] == (
        "Register or update a station, its credentials and its security profile."
    )
    assert "/api/v1/stations/{station_id}/commands/reset" in spec["paths"]
