"""The running cost on the wire: 2.x stations are sent CostUpdated while a session runs."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from csms_billing.app import create_app
from csms_billing.sessions.models import BilledSession
from csms_core.db import transaction, utc_now
from csms_ocpp import OcppVersion, schemas
from tests.billing_harness import (
    BillingHarness,
    meter_values,
    ocpp_time,
    register,
    running_billing,
    started,
)
from tests.kits.api import bearer_headers
from tests.waiting import eventually

START = datetime(2024, 5, 6, 8, 0, tzinfo=UTC)
TARIFF = {
    "tariff": {
        "id": "per-kwh",
        "currency": "EUR",
        "start_date_time": "2024-01-01T00:00:00Z",
        "elements": [
            {"price_components": [{"type": "ENERGY", "price": 0.40, "vat": 25, "step_size": 1}]}
        ],
    },
    "applies_to": {"default": True},
}


@pytest.fixture
async def quick(tmp_path: Path) -> AsyncIterator[tuple[BillingHarness, httpx.AsyncClient]]:
    async with running_billing(tmp_path, cost_update_interval_s=0.2) as harness:
        transport = httpx.ASGITransport(app=create_app(harness.service))
        headers = await bearer_headers(harness.service.engine)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://b/api/v1", headers=headers
        ) as api:
            yield harness, api


async def _session(billing: BillingHarness, station_id: str, version: str) -> None:
    await billing.stations.connect(station_id, version)
    data = started(
        f"s-{station_id}", station_id, START, transaction_id=f"tx-{station_id}", token="TAG"
    )
    await billing.publish("session.started", station_id, data, version=version)


async def _reading(billing: BillingHarness, station_id: str, wh: float) -> None:
    sample = register(START + timedelta(minutes=wh / 100), wh)
    data = meter_values(f"s-{station_id}", sample, transaction_id=f"tx-{station_id}")
    await billing.publish("meter.values", station_id, data)


async def test_tc_i_01_running_cost_sent_while_charging(
    quick: tuple[BillingHarness, httpx.AsyncClient],
) -> None:
    billing, api = quick
    assert (await api.put("/tariffs/per-kwh", json=TARIFF)).status_code == 201
    await _session(billing, "CP-20", "2.0.1")
    await _session(billing, "CP-16", "1.6")
    await _reading(billing, "CP-20", 5000)

    async def sent(count: int) -> list[dict[str, Any]] | None:
        found = billing.stations.sent("CostUpdated", "CP-20")
        return found if len(found) >= count else None

    # 5 kWh x 0.40 = 2.00, incl. 25 % = 2.50 (totalCost includes taxes).
    assert await eventually(lambda: sent(1), timeout_s=5, interval_s=0.05) == [
        {"totalCost": 2.5, "transactionId": "tx-CP-20"}
    ]
    running = (await api.get("/costs/s-CP-20")).json()
    assert running["total_cost"] == {"excl_vat": 2.0, "incl_vat": 2.5}

    await _reading(billing, "CP-20", 8000)  # 8 kWh: 3.20, 4.00 incl.
    updates = await eventually(lambda: sent(2), timeout_s=5, interval_s=0.05)
    assert updates[1] == {"totalCost": 4.0, "transactionId": "tx-CP-20"}
    await billing.caught_up()
    async with transaction(billing.service.factory) as session:  # due again at once
        await session.exec(update(BilledSession).values(cost_due_at=utc_now()))
    assert await billing.service.cost_updates.send_due() == 0  # unchanged: not resent
    assert len(billing.stations.sent("CostUpdated", "CP-20")) == 2
    assert billing.stations.sent("CostUpdated", "CP-16") == []  # OCPP 1.6 has no cost messages


async def test_billing_california_pricing_stations_get_the_prices_behind_the_cost(
    quick: tuple[BillingHarness, httpx.AsyncClient],
) -> None:
    """OCA California Pricing: a station reporting the costmsg customization gets, with the
    running cost, its register reading, state and the prices in force (incl. taxes)."""
    billing, api = quick
    assert (await api.put("/tariffs/per-kwh", json=TARIFF)).status_code == 201
    billing.stations.answers["GetVariables"] = {
        "getVariableResult": [
            {
                "attributeStatus": "Accepted",
                "attributeValue": "true",
                "component": {"name": "CustomizationCtrlr"},
                "variable": {
                    "name": "CustomImplementationEnabled",
                    "instance": "org.openchargealliance.costmsg",
                },
            }
        ]
    }
    await _session(billing, "CP-CA", "2.0.1")
    await _reading(billing, "CP-CA", 5000)
    # 2.x chargingState: still charging (without it, a register standing still since the
    # last reading would count as idle).
    charging = {
        "session_id": "s-CP-CA",
        "transaction_id": "tx-CP-CA",
        "evse_id": 1,
        "energy_wh": 5000.0,
        "power_w": None,
        "updated_at": ocpp_time(START),
        "charging_state": "Charging",
    }
    await billing.publish("session.updated", "CP-CA", charging)

    async def sent() -> list[dict[str, Any]] | None:
        return billing.stations.sent("CostUpdated", "CP-CA") or None

    (update_,) = await eventually(sent, timeout_s=5, interval_s=0.05)
    assert schemas.validate(OcppVersion.V201, "CostUpdated", update_) is None
    custom = update_["customData"]
    assert custom["vendorId"] == "org.openchargealliance.costmsg"
    assert (custom["meterValue"], custom["state"]) == (5000, "Charging")
    assert custom["chargingPrice"] == {"kWhPrice": 0.5}  # 0.40/kWh + 25 %
    assert billing.stations.sent("GetVariables", "CP-CA")  # asked once
    await _session(billing, "CP-PLAIN", "2.0.1")
    billing.stations.answers["GetVariables"] = {"getVariableResult": []}
    await _reading(billing, "CP-PLAIN", 1000)

    async def plain() -> list[dict[str, Any]] | None:
        return billing.stations.sent("CostUpdated", "CP-PLAIN") or None

    (ordinary,) = await eventually(plain, timeout_s=5, interval_s=0.05)
    assert "customData" not in ordinary
