"""Who may use billing's REST API: tariffs are admin to write, partners and viewers read
CDRs, tariffs and costs; a site-limited token sees its sites' stations only."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from csms_api.roles import Role
from csms_core.db import transaction
from csms_core.identity import assign_site
from tests.billing_harness import BillingHarness, ended, started
from tests.kits.api import bearer_headers

TARIFF = {
    "tariff": {
        "id": "t",
        "currency": "EUR",
        "start_date_time": "2024-01-01T00:00:00Z",
        "elements": [{"price_components": [{"type": "ENERGY", "price": 0.3, "step_size": 1}]}],
    },
    "applies_to": {"default": True},
}
START = datetime(2024, 5, 6, 9, tzinfo=UTC)


async def _session(billing: BillingHarness, station_id: str) -> None:
    session_id, end = f"s-{station_id}", START + timedelta(hours=1)
    await billing.publish("session.started", station_id, started(session_id, station_id, START))
    data = ended(session_id, START, end, meter_stop_wh=1000.0)
    await billing.publish("session.ended", station_id, data)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/tariffs"),
        ("PUT", "/tariffs/t"),
        ("DELETE", "/tariffs/t"),
        ("GET", "/cdrs"),
        ("GET", "/cdrs/export"),
        ("GET", "/costs/s-1"),
        ("POST", "/stations/CP-1/tariffs"),
        ("GET", "/prepaid-accounts/TAG"),
        ("POST", "/prepaid-accounts/TAG/top-ups"),
        ("GET", "/payments/web"),
    ],
)
async def test_billing_routes_need_a_token(api: httpx.AsyncClient, method: str, path: str) -> None:
    anonymous = await api.request(method, path, headers={"Authorization": ""}, json={})
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert anonymous.headers["content-type"] == "application/problem+json"


async def test_billing_partners_read_cdrs_and_tariffs_but_do_not_write_them(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    assert (await api.put("/tariffs/t", json=TARIFF)).status_code == 201
    await _session(billing, "CP-1")
    await billing.wait_for_cdrs(1)
    for role in (Role.PARTNER, Role.VIEWER):
        headers = await bearer_headers(billing.service.engine, role)
        assert (await api.get("/tariffs/t", headers=headers)).status_code == 200
        assert (await api.get("/cdrs", headers=headers)).json()["total"] == 1
        assert (await api.get("/costs/s-CP-1", headers=headers)).status_code == 200
        refused = await api.put("/tariffs/t", json=TARIFF, headers=headers)
        assert (refused.status_code, refused.json()["type"]) == (403, "urn:csms:problem:forbidden")
        assert (await api.delete("/tariffs/t", headers=headers)).status_code == 403
    partner = await bearer_headers(billing.service.engine, Role.PARTNER)
    assert (await api.get("/payments/web", headers=partner)).status_code == 403
    operator = await bearer_headers(billing.service.engine, Role.OPERATOR)
    assert (await api.put("/tariffs/t", json=TARIFF, headers=operator)).status_code == 403


async def test_billing_site_limited_token_sees_its_sites_only(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    assert (await api.put("/tariffs/t", json=TARIFF)).status_code == 201
    async with transaction(billing.service.factory) as session:
        await assign_site(session, "CP-NORTH", "north")
        await assign_site(session, "CP-SOUTH", "south")
    await _session(billing, "CP-NORTH")
    await _session(billing, "CP-SOUTH")
    cdrs = await billing.wait_for_cdrs(2)
    north = await bearer_headers(billing.service.engine, Role.VIEWER, sites=["north"])
    listed = (await api.get("/cdrs", headers=north)).json()["items"]
    assert [c["cdr_location"]["evse_id"] for c in listed] == ["CP-NORTH*1"]
    south_cdr = next(c for c in cdrs if c["session_id"] == "s-CP-SOUTH")
    assert (await api.get(f"/cdrs/{south_cdr['id']}", headers=north)).status_code == 404
    assert (await api.get("/costs/s-CP-SOUTH", headers=north)).status_code == 404
    assert (await api.get("/costs/s-CP-NORTH", headers=north)).status_code == 200
    exported = (await api.get("/cdrs/export", params={"format": "json"}, headers=north)).json()
    assert [c["session_id"] for c in exported] == ["s-CP-NORTH"]
    site_admin = await bearer_headers(billing.service.engine, Role.ADMIN, sites=["north"])
    refused = await api.put("/tariffs/t", json=TARIFF, headers=site_admin)
    assert refused.json()["type"] == "urn:csms:problem:forbidden-for-site-limited"
    await billing.stations.connect("CP-SOUTH", "2.1")
    hidden = await api.post(
        "/stations/CP-SOUTH/tariffs", json={"tariff_id": "t"}, headers=site_admin
    )
    assert hidden.status_code == 404
