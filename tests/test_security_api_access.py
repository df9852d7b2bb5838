"""The security service's REST routes need a bearer token and the right role, and a
site-limited token sees only its sites' stations (docs/station-security.md, "REST")."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from csms_api.roles import Role
from csms_core.db import session_factory
from csms_core.identity import assign_site
from csms_security.db import utc_now
from csms_security.events.classification import Severity
from csms_security.events.models import EventSource, SecurityEvent
from tests.security_harness import Csms, running_csms

READS = [
    "/certificates/ca",
    "/certificates",
    "/security-events",
    "/stations/CP-1/certificates",
    "/stations/CP-1/certificates/signing-requests",
    "/stations/CP-1/certificates/installed",
    "/stations/CP-1/security-events",
    "/stations/CP-1/security-profile",
]
ADMIN_WRITES = [
    ("post", "/stations/CP-1/certificates/renew", {}),
    ("post", "/stations/CP-1/certificates/installed", {"certificate_type": "CSMSRootCertificate"}),
    ("post", "/stations/CP-1/certificates/installed/refresh", {}),
    ("delete", "/stations/CP-1/certificates/installed/abcdef", None),
    ("post", "/stations/CP-1/security-profile/upgrades", {"target_profile": 2}),
]  # fmt: skip


@pytest.fixture
async def csms(tmp_path: Path) -> AsyncIterator[Csms]:
    async with running_csms(tmp_path, tls=False) as running:
        yield running


async def test_every_route_needs_a_token(csms: Csms) -> None:
    async with await csms.client(Role.ADMIN) as client:
        client.headers.pop("Authorization")
        for path in READS:
            response = await client.get(path)
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"].startswith("Bearer")
        for method, path, body in ADMIN_WRITES:
            response = await client.request(method, path, json=body)
            assert response.status_code == 401, path


async def test_a_viewer_reads_and_may_not_change_anything(csms: Csms) -> None:
    async with await csms.client(Role.VIEWER) as viewer:
        assert (await viewer.get("/certificates/ca")).status_code == 200
        assert (await viewer.get("/security-events")).status_code == 200
        for method, path, body in ADMIN_WRITES:
            response = await viewer.request(method, path, json=body)
            assert response.status_code == 403, path
            assert response.headers["content-type"] == "application/problem+json"
    async with await csms.client(Role.OPERATOR) as operator:
        upgrade = await operator.post(
            "/stations/CP-1/security-profile/upgrades", json={"target_profile": 2}
        )
        assert upgrade.status_code == 403  # certificates and profiles are the admin's


async def test_a_site_limited_token_sees_its_sites_stations_only(csms: Csms) -> None:
    assert csms.engine is not None
    factory = session_factory(csms.engine)
    async with factory() as session, session.begin():
        await assign_site(session, "CP-MINE", "depot-1")
        await assign_site(session, "CP-OTHER", "depot-2")
        for station_id in ("CP-MINE", "CP-OTHER"):
            session.add(
                SecurityEvent(
                    id=f"event-{station_id}",
                    station_id=station_id,
                    type="TamperDetectionActivated",
                    name_2x="TamperDetectionActivated",
                    name_16="TamperDetectionActivated",
                    severity=Severity.CRITICAL,
                    critical=True,
                    source=EventSource.STATION,
                    ocpp_version="2.0.1",
                    timestamp=utc_now(),
                )
            )
    async with await csms.client(Role.ADMIN, sites=["depot-1"]) as limited:
        fleet = (await limited.get("/security-events")).json()
        assert [item["station_id"] for item in fleet["items"]] == ["CP-MINE"]
        assert (await limited.get("/stations/CP-MINE/security-events")).status_code == 200
        other = await limited.get("/stations/CP-OTHER/security-events")
        assert other.status_code == 404
        assert other.json()["type"] == "urn:csms:problem:unknown-station"
        upgrade = await limited.post(
            "/stations/CP-OTHER/security-profile/upgrades", json={"target_profile": 2}
        )
        assert upgrade.status_code == 404
    everything = (await csms.api.get("/security-events")).json()
    assert sorted(item["station_id"] for item in everything["items"]) == ["CP-MINE", "CP-OTHER"]
