"""A live session's tariff changed (OCPP 2.1 I11 ChangeTransactionTariff): from the change
on, the new tariff prices it; a 2.1 station is asked first, others only priced centrally.

The session's register stands still around the change (10 kWh before it, 10 kWh after),
so the hand-computed cost does not depend on the instant the test runs: tariff "day" (a
start fee of 1.00, 0.30/kWh) prices the first 10 kWh, "evening" (a start fee of 5.00,
0.20/kWh) the last 10: 1.00 + 3.00 + 2.00 = 6.00 (the start fee once, the first tariff's).
"""

from datetime import datetime, timedelta
from typing import Any

import httpx

from csms_api.roles import Role
from csms_core.db import utc_now
from csms_ocpp import OcppVersion, schemas
from tests.billing_harness import BillingHarness, ended, meter_values, register, started
from tests.kits.api import bearer_headers


def _tariff(tariff_id: str, fee: float, per_kwh: float, currency: str = "EUR") -> dict[str, Any]:
    return {
        "tariff": {
            "id": tariff_id,
            "currency": currency,
            "start_date_time": "2024-01-01T00:00:00Z",
            "elements": [
                {
                    "price_components": [
                        {"type": "FLAT", "price": fee, "step_size": 1},
                        {"type": "ENERGY", "price": per_kwh, "step_size": 1},
                    ]
                }
            ],
        },
        # "day" prices every session; the others none until a session is changed to them.
        "applies_to": {"default": True} if tariff_id == "day" else {"station_ids": [tariff_id]},
    }


async def _tariffs(api: httpx.AsyncClient) -> None:
    for body in (_tariff("day", 1.00, 0.30), _tariff("evening", 5.00, 0.20)):
        assert (await api.put(f"/tariffs/{body['tariff']['id']}", json=body)).status_code == 201


async def _live(billing: BillingHarness, station_id: str, version: str) -> datetime:
    """A session started an hour ago: 10 kWh by 10 minutes ago, then none until 5 minutes
    from now, then 10 kWh more until 35 minutes from now (readings sent ahead of time)."""
    now = utc_now().replace(microsecond=0)
    start = now - timedelta(hours=1)
    await billing.stations.connect(station_id, version)
    opened = started(f"s-{station_id}", station_id, start, transaction_id=f"tx-{station_id}")
    await billing.publish("session.started", station_id, opened, version=version)
    readings = [
        register(now - timedelta(minutes=10), 10000),
        register(now + timedelta(minutes=5), 10000),
        register(now + timedelta(minutes=35), 20000),
    ]
    data = meter_values(f"s-{station_id}", *readings, transaction_id=f"tx-{station_id}")
    await billing.publish("meter.values", station_id, data, version=version)
    await billing.caught_up()
    return now + timedelta(minutes=35)


async def _end(billing: BillingHarness, station_id: str, ended_at: datetime) -> dict[str, Any]:
    start = ended_at - timedelta(minutes=95)
    data = ended(
        f"s-{station_id}", start, ended_at, transaction_id=f"tx-{station_id}", meter_stop_wh=20000
    )
    await billing.publish("session.ended", station_id, data)
    (cdr,) = await billing.wait_for_cdrs(1)
    return cdr


async def test_billing_tariff_changed_on_a_201_station_prices_from_the_change(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    await _tariffs(api)
    ended_at = await _live(billing, "CP-201", "2.0.1")
    changed = await api.put("/costs/s-CP-201/tariff", json={"tariff_id": "evening"})
    assert changed.status_code == 200, changed.text
    cost = changed.json()
    # Until now: the start fee and 10 kWh at 0.30.
    assert cost["total_cost"] == {"excl_vat": 4.0, "incl_vat": None}
    assert (cost["tariff_id"], cost["tariff_version"]) == ("evening", 1)
    assert [(c["tariff_id"], c["station_status"]) for c in cost["tariff_changes"]] == [
        ("evening", None)
    ]
    assert billing.stations.commands == []  # 2.0.1 has no ChangeTransactionTariff
    cdr = await _end(billing, "CP-201", ended_at)
    assert cdr["total_cost"] == {"excl_vat": 6.0}
    assert [t["id"] for t in cdr["tariffs"]] == ["day", "evening"]
    # Charging, the register standing still (before and after the change), charging again.
    assert [p["tariff_id"] for p in cdr["charging_periods"]] == ["day", "day", "evening", "evening"]


async def test_billing_tariff_changed_on_a_21_station_is_sent_first(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    await _tariffs(api)
    ended_at = await _live(billing, "CP-21", "2.1")
    billing.stations.answers["ChangeTransactionTariff"] = {"status": "Accepted"}
    changed = await api.put("/costs/s-CP-21/tariff", json={"tariff_id": "evening"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["tariff_changes"][0]["station_status"] == "Accepted"
    (sent,) = billing.stations.sent("ChangeTransactionTariff", "CP-21")
    assert schemas.validate(OcppVersion.V21, "ChangeTransactionTariff", sent) is None
    assert sent == {
        "transactionId": "tx-CP-21",
        "tariff": {
            "tariffId": "evening.v1",
            "currency": "EUR",
            "validFrom": "2024-01-01T00:00:00Z",
            "energy": {"prices": [{"priceKwh": 0.2}]},
            "fixedFee": {"prices": [{"priceFixed": 5.0}]},
        },
    }
    cdr = await _end(billing, "CP-21", ended_at)
    assert cdr["total_cost"] == {"excl_vat": 6.0}


async def test_billing_tariff_change_refused_by_the_station_changes_nothing(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    await _tariffs(api)
    ended_at = await _live(billing, "CP-21", "2.1")
    billing.stations.answers["ChangeTransactionTariff"] = {"status": "TooManyElements"}
    refused = await api.put("/costs/s-CP-21/tariff", json={"tariff_id": "evening"})
    assert (refused.status_code, refused.json()["type"]) == (
        409,
        "urn:csms:problem:station-refused",
    )
    assert "TooManyElements" in refused.json()["detail"]
    assert (await api.get("/costs/s-CP-21")).json()["tariff_changes"] == []
    cdr = await _end(billing, "CP-21", ended_at)
    assert cdr["total_cost"] == {"excl_vat": 7.0}  # 1.00 + 20 kWh x 0.30: day all along


async def test_billing_tariff_change_without_a_local_calculator_is_central(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    await _tariffs(api)
    await _live(billing, "CP-21", "2.1")
    billing.stations.errors["ChangeTransactionTariff"] = "NotImplemented"
    changed = await api.put("/costs/s-CP-21/tariff", json={"tariff_id": "evening"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["tariff_changes"][0]["station_status"] == "NotSupported"


async def test_billing_tariff_change_refused(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    await _tariffs(api)
    francs = _tariff("francs", 1.00, 0.30, currency="CHF")
    assert (await api.put("/tariffs/francs", json=francs)).status_code == 201
    ended_at = await _live(billing, "CP-201", "2.0.1")
    unknown_session = await api.put("/costs/s-nope/tariff", json={"tariff_id": "evening"})
    assert unknown_session.status_code == 404
    unknown = await api.put("/costs/s-CP-201/tariff", json={"tariff_id": "nope"})
    assert (unknown.status_code, unknown.json()["type"]) == (404, "urn:csms:problem:unknown-tariff")
    currency = await api.put("/costs/s-CP-201/tariff", json={"tariff_id": "francs"})
    assert (currency.status_code, currency.json()["type"]) == (
        422,
        "urn:csms:problem:currency-change",
    )
    bad_body = await api.put("/costs/s-CP-201/tariff", json={"tariff": "evening"})
    assert bad_body.status_code == 422
    viewer = await bearer_headers(billing.service.engine, Role.VIEWER)
    forbidden = await api.put(
        "/costs/s-CP-201/tariff", json={"tariff_id": "evening"}, headers=viewer
    )
    assert forbidden.status_code == 403
    anonymous = await api.put(
        "/costs/s-CP-201/tariff", json={"tariff_id": "evening"}, headers={"Authorization": ""}
    )
    assert anonymous.status_code == 401
    await _end(billing, "CP-201", ended_at)
    ended = await api.put("/costs/s-CP-201/tariff", json={"tariff_id": "evening"})
    assert (ended.status_code, ended.json()["type"]) == (409, "urn:csms:problem:session-ended")
