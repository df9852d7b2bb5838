"""REST of the sessions service as callers with too little: a viewer sending commands, a
site-limited key reaching for another site's stations and sessions, partners."""

import httpx
import pytest

from csms_api.roles import Role
from csms_core.identity import assign_site
from csms_ocpp import OcppVersion
from tests.kits.api import bearer_headers
from tests.kits.sessions import Harness, assert_problem
from tests.kits.transactions import send


@pytest.fixture
async def two_sites(api: httpx.AsyncClient, sessions: Harness) -> None:
    """CP-A on site-a, CP-B on site-b, each with a session; CP-C on no site."""
    for station_id in ("CP-A", "CP-B", "CP-C"):
        assert (await api.put(f"/api/v1/stations/{station_id}", json={})).status_code == 200
    async with sessions.service.factory() as session, session.begin():
        await assign_site(session, "CP-A", "site-a")
        await assign_site(session, "CP-B", "site-b")
    for station_id in ("CP-A", "CP-B"):
        start = {
            "connectorId": 1,
            "idTag": "TAG",
            "meterStart": 0,
            "timestamp": "2025-01-01T10:00:00Z",
        }
        await send(sessions, "StartTransaction", start, OcppVersion.V16, station_id)


async def _as(
    api: httpx.AsyncClient, sessions: Harness, role: Role, *sites: str
) -> httpx.AsyncClient:
    headers = await bearer_headers(sessions.service.engine, role, sites=list(sites) or None)
    api.headers.update(headers)
    return api


async def test_a_viewer_reads_but_gets_403_on_a_command(
    api: httpx.AsyncClient, sessions: Harness, two_sites: None
) -> None:
    viewer = await _as(api, sessions, Role.VIEWER)

    assert (await viewer.get("/api/v1/stations/CP-A")).status_code == 200
    body = assert_problem(
        await viewer.post("/api/v1/stations/CP-A/commands/reset", json={"type": "soft"}), 403
    )
    assert body["required_role"] == "operator"


async def test_an_operator_gets_403_on_raw_calls_and_credentials(
    api: httpx.AsyncClient, sessions: Harness, two_sites: None
) -> None:
    operator = await _as(api, sessions, Role.OPERATOR)

    raw = {"action": "UpdateFirmware", "payload": {}}
    assert_problem(await operator.post("/api/v1/stations/CP-A/commands/raw", json=raw), 403)
    password = {"password": "0123456789abcdef0123"}
    assert_problem(await operator.put("/api/v1/stations/CP-A", json=password), 403)
    identity = await sessions.service.identities.get("CP-A")
    assert identity is not None
    assert identity.password_hash is None  # nothing was written


async def test_a_site_limited_key_sees_only_its_sites_stations_and_sessions(
    api: httpx.AsyncClient, sessions: Harness, two_sites: None
) -> None:
    limited = await _as(api, sessions, Role.OPERATOR, "site-a")

    listed = (await limited.get("/api/v1/stations")).json()
    assert [s["station_id"] for s in listed["items"]] == ["CP-A"]
    assert listed["total"] == 1
    for path in (
        "/api/v1/stations/CP-B",
        "/api/v1/stations/CP-C",
        "/api/v1/stations/CP-B/sessions",
    ):
        assert assert_problem(await limited.get(path), 404)["type"].endswith("unknown-station")
    command = await limited.post("/api/v1/stations/CP-B/commands/reset", json={"type": "soft"})
    assert_problem(command, 404)
    own = (await limited.get("/api/v1/sessions")).json()
    assert {s["station_id"] for s in own["items"]} == {"CP-A"}
    everyone = (await _as(api, sessions, Role.ADMIN)).get("/api/v1/sessions")
    other = next(s for s in (await everyone).json()["items"] if s["station_id"] == "CP-B")
    limited = await _as(api, sessions, Role.OPERATOR, "site-a")
    hidden = await limited.get(f"/api/v1/sessions/{other['session_id']}")
    assert assert_problem(hidden, 404)["type"].endswith("unknown-session")
    meter = await limited.get(f"/api/v1/sessions/{other['session_id']}/meter-values")
    assert_problem(meter, 404)


async def test_a_site_limited_operator_cannot_change_network_wide_tokens(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    limited = await _as(api, sessions, Role.OPERATOR, "site-a")

    token = {"type": "ISO14443", "status": "Accepted"}
    response = await limited.put("/api/v1/id-tokens/TAG-1", json=token)

    assert_problem(response, 403)
    assert (await limited.get("/api/v1/id-tokens/TAG-1")).status_code == 404


async def test_a_partner_reads_stations_and_sessions_but_not_tokens(
    api: httpx.AsyncClient, sessions: Harness, two_sites: None
) -> None:
    partner = await _as(api, sessions, Role.PARTNER)

    assert (await partner.get("/api/v1/stations")).json()["total"] == 3
    assert (await partner.get("/api/v1/sessions")).json()["total"] == 2
    assert_problem(await partner.get("/api/v1/id-tokens"), 403)
    assert_problem(await partner.get("/api/v1/stations/CP-A/configuration"), 403)


async def test_paging_past_any_real_offset_is_422_not_a_database_error(
    api: httpx.AsyncClient,
) -> None:
    response = await api.get("/api/v1/stations", params={"offset": 132677671060219674624})
    assert_problem(response, 422)
