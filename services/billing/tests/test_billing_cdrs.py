"""Sessions priced into CDRs: issued once, credited and corrected, listed, exported."""

import csv
import io
from datetime import UTC, datetime
from typing import Any

import httpx

from csms_billing.cdrs import service as cdrs
from csms_billing.sessions import service as sessions
from csms_billing.sessions.models import BilledSession, SampleKind
from csms_core.db import transaction, utc_now
from csms_core.identity import assign_site
from tests.billing_harness import BillingHarness

PEAK_THEN_OFF_PEAK = {
    "tariff": {
        "id": "tod",
        "currency": "EUR",
        "start_date_time": "2024-01-01T00:00:00Z",
        "elements": [
            {
                "price_components": [{"type": "ENERGY", "price": 0.40, "vat": 20, "step_size": 1}],
                "restrictions": {"end_time": "17:00"},
            },
            {"price_components": [{"type": "ENERGY", "price": 0.20, "vat": 20, "step_size": 1}]},
        ],
    },
    "applies_to": {"default": True},
    "time_zone": "UTC",
}


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 5, 6, hour, minute, tzinfo=UTC)


async def charge(
    billing: BillingHarness,
    session_id: str,
    *,
    start: datetime,
    end: datetime,
    stop_wh: float,
    group_id: str | None = None,
) -> BilledSession:
    """A session from ``start`` to ``end``, meter 0 -> ``stop_wh``, ended; its CDR issued."""
    async with transaction(billing.service.factory) as session:
        opened = sessions.Opened(
            session_id=session_id,
            station_id="CP-1",
            transaction_id=session_id[:8],
            started_at=start,
            evse_id=1,
            connector_id=1,
            id_token="TAG-1",
            token_type="ISO14443",
            group_id=group_id,
            meter_start_wh=0,
        )
        billed = await sessions.open_session(session, opened)
        await sessions.settle(
            session, billed, sessions.Figures(ended_at=end, meter_stop_wh=stop_wh)
        )
        await cdrs.issue(session, billed, billing.service.settings, utc_now())
    return billed


async def test_billing_correction_credits_and_reissues_the_cdr(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    """``cdrs.correct`` (what new final figures of a session call): the standing CDR is
    credited (OCPI mod_cdrs credit CDR) and a corrected one issued, priced with the samples
    billing read after the first."""
    assert (await api.put("/tariffs/tod", json=PEAK_THEN_OFF_PEAK)).status_code == 201
    billed = await charge(billing, "s-late", start=at(16), end=at(18), stop_wh=10_000)
    first = (await api.get("/cdrs", params={"session_id": "s-late"})).json()["items"]
    # Evenly: 5 kWh x 0.40 + 5 kWh x 0.20 = 3.00 (3.60 incl. 20 %).
    assert [c["total_cost"] for c in first] == [{"excl_vat": 3.0, "incl_vat": 3.6}]

    # A sample of the session billing read only after its CDR: 8 kWh were in by 17:00.
    async with transaction(billing.service.factory) as session:
        billed = await session.get(BilledSession, "s-late")  # type: ignore[assignment]
        late = sessions.SampleIn(at(17), SampleKind.REGISTER, 8000)
        assert await sessions.record_samples(session, billed.session_id, billed, [late]) == 1
        issued = await cdrs.correct(session, billed, billing.service.settings, utc_now())
    assert len(issued) == 2

    all_cdrs = (await api.get("/cdrs", params={"session_id": "s-late"})).json()["items"]
    original = all_cdrs[0]  # the oldest
    (credit,) = [c for c in all_cdrs if c.get("credit")]
    (corrected,) = [c for c in all_cdrs if c["id"] not in (original["id"], credit["id"])]
    assert original["id"] == first[0]["id"] and "credit" not in original  # unchanged
    assert credit["credit"] is True and credit["credit_reference_id"] == original["id"]
    assert credit["id"] == f"{original['id']}-C"
    assert credit["total_cost"] == {"excl_vat": -3.0, "incl_vat": -3.6}
    # 8 kWh x 0.40 + 2 kWh x 0.20 = 3.60 (4.32 incl.).
    assert corrected["total_cost"] == {"excl_vat": 3.6, "incl_vat": 4.32}
    assert "credit" not in corrected and corrected["id"] not in (original["id"], credit["id"])
    cost = (await api.get("/costs/s-late")).json()
    assert (cost["cdr_id"], cost["total_cost"]) == (corrected["id"], corrected["total_cost"])

    # The same sample again changes nothing more.
    async with transaction(billing.service.factory) as session:
        billed = await session.get(BilledSession, "s-late")  # type: ignore[assignment]
        assert await sessions.record_samples(session, billed.session_id, billed, [late]) == 0
        assert await cdrs.correct(session, billed, billing.service.settings, utc_now()) == []


async def test_billing_drivers_tariff_from_token_group(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    default = _energy_tariff("standard", "0.30", {"default": True})
    fleet = _energy_tariff("fleet", "0.20", {"token_group_ids": ["fleet-A"]})
    assert (await api.put("/tariffs/standard", json=default)).status_code == 201
    assert (await api.put("/tariffs/fleet", json=fleet)).status_code == 201
    await charge(billing, "s-fleet", start=at(9), end=at(10), stop_wh=10_000, group_id="fleet-A")
    await charge(billing, "s-other", start=at(9), end=at(10), stop_wh=10_000, group_id="other")
    fleet_cdr = (await api.get("/cdrs", params={"session_id": "s-fleet"})).json()["items"][0]
    other_cdr = (await api.get("/cdrs", params={"session_id": "s-other"})).json()["items"][0]
    assert (fleet_cdr["tariffs"][0]["id"], fleet_cdr["total_cost"]) == ("fleet", {"excl_vat": 2.0})
    assert (other_cdr["tariffs"][0]["id"], other_cdr["total_cost"]) == (
        "standard",
        {"excl_vat": 3.0},
    )


async def test_billing_site_tariff_from_the_station_directory(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    """The sessions service's event names no site: the station directory does (identity's
    station_site, the site at the session's start). The CDR is the site's, filtered by it."""
    default = _energy_tariff("standard", "0.30", {"default": True})
    site = _energy_tariff("site-tariff", "0.25", {"site_ids": ["north"]})
    assert (await api.put("/tariffs/standard", json=default)).status_code == 201
    assert (await api.put("/tariffs/site-tariff", json=site)).status_code == 201
    async with transaction(billing.service.factory) as session:
        await assign_site(session, "CP-1", "north")
    await charge(billing, "s-north", start=at(9), end=at(10), stop_wh=10_000)
    found = (await api.get("/cdrs", params={"site_id": "north"})).json()["items"]
    assert [(c["session_id"], c["tariffs"][0]["id"]) for c in found] == [("s-north", "site-tariff")]
    assert found[0]["total_cost"] == {"excl_vat": 2.5}  # 10 kWh x 0.25
    assert found[0]["cdr_location"]["id"] == "north"


async def test_billing_cdr_is_ocpi_shaped(billing: BillingHarness, api: httpx.AsyncClient) -> None:
    assert (await api.put("/tariffs/tod", json=PEAK_THEN_OFF_PEAK)).status_code == 201
    await charge(billing, "s-shape", start=at(16, 30), end=at(17, 30), stop_wh=4000)
    cdr = (await api.get("/cdrs", params={"session_id": "s-shape"})).json()["items"][0]
    assert (await api.get(f"/cdrs/{cdr['id']}")).json() == cdr
    assert cdr["country_code"] == "NL" and cdr["party_id"] == "CSM"
    assert cdr["start_date_time"] == "2024-05-06T16:30:00Z"
    assert cdr["end_date_time"] == "2024-05-06T17:30:00Z"
    assert cdr["cdr_token"] == {
        "country_code": "NL",
        "party_id": "CSM",
        "uid": "TAG-1",
        "type": "RFID",
        "contract_id": "TAG-1",
    }
    assert cdr["cdr_location"] == {
        "id": "CP-1",
        "name": "CP-1",
        "evse_uid": "CP-1*1",
        "evse_id": "CP-1*1",
        "connector_id": "1",
    }
    assert (cdr["total_energy"], cdr["total_time"]) == (4.0, 1.0)
    # A new period where the price changes: 2 kWh before 17:00 at 0.40, 2 after at 0.20.
    assert cdr["charging_periods"] == [
        {
            "start_date_time": "2024-05-06T16:30:00Z",
            "dimensions": [{"type": "ENERGY", "volume": 2.0}, {"type": "TIME", "volume": 0.5}],
            "tariff_id": "tod",
        },
        {
            "start_date_time": "2024-05-06T17:00:00Z",
            "dimensions": [{"type": "ENERGY", "volume": 2.0}, {"type": "TIME", "volume": 0.5}],
            "tariff_id": "tod",
        },
    ]
    assert cdr["total_cost"] == {"excl_vat": 1.2, "incl_vat": 1.44}
    assert cdr["total_energy_cost"] == {"excl_vat": 1.2, "incl_vat": 1.44}


async def test_billing_session_without_tariff_has_no_known_cost(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    await charge(billing, "s-free", start=at(9), end=at(10), stop_wh=1000)
    cdr = (await api.get("/cdrs", params={"session_id": "s-free"})).json()["items"][0]
    assert cdr["total_cost"] == {"excl_vat": 0} and "tariffs" not in cdr
    assert "no tariff" in cdr["remark"]
    assert (await api.get("/costs/s-free")).json()["total_cost"] is None


async def test_billing_cdrs_export_csv_and_json(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    assert (await api.put("/tariffs/tod", json=PEAK_THEN_OFF_PEAK)).status_code == 201
    for n in range(3):
        await charge(billing, f"s-export-{n}", start=at(9), end=at(10), stop_wh=1000 * (n + 1))
    exported = await api.get("/cdrs/export", params={"format": "csv"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["total_cost_excl_vat"] for r in rows] == ["0.4", "0.8", "1.2"]
    assert {r["token_uid"] for r in rows} == {"TAG-1"}
    as_json: list[dict[str, Any]] = (
        await api.get("/cdrs/export", params={"format": "json"})
    ).json()
    assert [c["total_energy"] for c in as_json] == [1.0, 2.0, 3.0]
    none = await api.get("/cdrs/export", params={"format": "json", "id_token": "nobody"})
    assert none.json() == []


async def test_billing_unknown_cdr_and_cost_are_404(api: httpx.AsyncClient) -> None:
    for path, kind in (("/cdrs/nope", "unknown-cdr"), ("/costs/nope", "unknown-session")):
        response = await api.get(path)
        assert response.status_code == 404
        assert response.json()["type"] == f"urn:csms:problem:{kind}"
    bad = await api.get("/cdrs", params={"date_from": "yesterday"})
    assert bad.status_code == 422


def _energy_tariff(tariff_id: str, price: str, applies_to: dict[str, Any]) -> dict[str, Any]:
    component = {"type": "ENERGY", "price": price, "step_size": 1}
    return {
        "tariff": {
            "id": tariff_id,
            "currency": "EUR",
            "start_date_time": "2024-01-01T00:00:00Z",
            "elements": [{"price_components": [component]}],
        },
        "applies_to": applies_to,
    }
