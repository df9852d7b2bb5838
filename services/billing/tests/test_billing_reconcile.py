"""A 2.1 station's own costDetails against the engine's cost: agreement, or a flag."""

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from csms_billing.cdrs import service as cdrs
from csms_billing.costs.reconcile import CostDetails, reconcile
from csms_billing.pricing.engine import price
from csms_billing.sessions import service as sessions
from csms_core.db import transaction, utc_now
from tests.billing_harness import BillingHarness
from tests.billing_kit import charged, component, element, session, tariff

UTC_ZONE = ZoneInfo("UTC")
# 0.50 start + 10 kWh x 0.30 = 3.50 excl.; 20 % VAT: 4.20.
COST = price(
    tariff(element(component("FLAT", "0.50", vat="20"), component("ENERGY", "0.30", vat="20"))),
    session(datetime(2024, 5, 6, 9, tzinfo=UTC), charged(10, 60)),
    UTC_ZONE,
)


def details(excl: float, incl: float, **extra: Any) -> CostDetails:
    total = {"exclTax": excl, "inclTax": incl}
    body = {
        "totalCost": {"currency": "EUR", "typeOfCost": "NormalCost", "total": total, **extra},
        "totalUsage": {"energy": 10000, "chargingTime": 3600, "idleTime": 0},
    }
    return CostDetails.model_validate(body)


def test_billing_station_cost_that_agrees_is_not_flagged() -> None:
    assert reconcile(COST, details(3.50, 4.20)) is None
    assert reconcile(COST, details(3.504, 4.199)) is None  # the station rounds its own way


def test_billing_station_cost_that_differs_is_flagged_with_both_figures() -> None:
    mismatch = reconcile(COST, details(3.00, 3.60, energy={"exclTax": 2.50}))
    assert mismatch is not None
    assert mismatch.wire() == {
        "reason": "station_cost_differs",
        "differences": {
            "total.excl_tax": {"station": 3.0, "csms": 3.5},
            "total.incl_tax": {"station": 3.6, "csms": 4.2},
            "energy.excl_tax": {"station": 2.5, "csms": 3.0},
        },
    }


def test_billing_station_that_failed_or_priced_in_another_currency_is_flagged() -> None:
    failed = CostDetails.model_validate(
        {
            "totalCost": {"currency": "EUR", "typeOfCost": "NormalCost", "total": {}},
            "totalUsage": {"energy": 0, "chargingTime": 0, "idleTime": 0},
            "failureToCalculate": True,
            "failureReason": "no tariff",
        }
    )
    assert reconcile(COST, failed).wire()["differences"] == {"station": {"failure": "no tariff"}}  # type: ignore[union-attr]
    other = details(3.5, 4.2)
    dollars = other.model_copy(
        update={"total_cost": other.total_cost.model_copy(update={"currency": "USD"})}
    )
    assert reconcile(COST, dollars).wire()["differences"] == {  # type: ignore[union-attr]
        "currency": {"station": "USD", "csms": "EUR"}
    }


async def test_billing_station_cost_mismatch_shows_in_costs_and_the_cdr(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    body = {
        "tariff": {
            "id": "local",
            "currency": "EUR",
            "start_date_time": "2024-01-01T00:00:00Z",
            "elements": [
                {"price_components": [{"type": "ENERGY", "price": 0.30, "vat": 20, "step_size": 1}]}
            ],
        },
        "applies_to": {"default": True},
    }
    assert (await api.put("/tariffs/local", json=body)).status_code == 201
    start, end = datetime(2024, 5, 6, 9, tzinfo=UTC), datetime(2024, 5, 6, 10, tzinfo=UTC)
    async with transaction(billing.service.factory) as db:
        billed = await sessions.open_session(
            db,
            sessions.Opened(
                "s-local", "CP-21", "tx-21", start, ocpp_version="2.1", meter_start_wh=0
            ),
        )
        await sessions.settle(db, billed, sessions.Figures(end, meter_stop_wh=10_000))
        await db.flush()
        # The station says 2.40 for 10 kWh at 0.30 (3.00, 3.60 incl.): flagged.
        station = details(2.40, 2.88).model_dump(mode="json", by_alias=True, exclude_none=True)
        billed.station_cost = {"at": end.isoformat(), "details": station}
        await cdrs.issue(db, billed, billing.service.settings, utc_now())
    cost = (await api.get("/costs/s-local")).json()
    (flag,) = cost["flags"]
    assert flag["differences"]["total.excl_tax"] == {"station": 2.4, "csms": 3.0}
    assert cost["total_cost"] == {"excl_vat": 3.0, "incl_vat": 3.6}  # ours, not overwritten
    (cdr,) = (await api.get("/cdrs", params={"session_id": "s-local"})).json()["items"]
    assert "another cost" in cdr["remark"] and cdr["total_cost"]["excl_vat"] == 3.0
