"""A 2.1 station's local cost calculator: SetDefaultTariff / GetTariffs / ClearTariffs."""

from typing import Any

import httpx

from csms_ocpp import OcppVersion, schemas
from tests.billing_harness import BillingHarness

TARIFF = {
    "tariff": {
        "id": "local",
        "currency": "EUR",
        "elements": [
            {"price_components": [{"type": "ENERGY", "price": 0.36, "vat": 20, "step_size": 1}]},
            {
                "price_components": [
                    {"type": "PARKING_TIME", "price": 3.00, "vat": 20, "step_size": 1}
                ]
            },
        ],
    },
    "applies_to": {"station_ids": ["CP-21"]},
}


async def test_billing_set_default_tariff_on_a_21_station(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    assert (await api.put("/tariffs/local", json=TARIFF)).status_code == 201
    await billing.stations.connect("CP-21", "2.1")
    billing.stations.answers["SetDefaultTariff"] = {"status": "Accepted"}
    answer = await api.post("/stations/CP-21/tariffs", json={"tariff_id": "local", "evse_id": 1})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "Accepted"
    (sent,) = billing.stations.sent("SetDefaultTariff", "CP-21")
    assert schemas.validate(OcppVersion.V21, "SetDefaultTariff", sent) is None
    vat = [{"type": "VAT", "tax": 20, "stack": 0}]
    assert sent == {
        "evseId": 1,
        "tariff": {
            "tariffId": "local.v1",
            "currency": "EUR",
            "energy": {"prices": [{"priceKwh": 0.36}], "taxRates": vat},
            "idleTime": {"prices": [{"priceMinute": 0.05}], "taxRates": vat},  # 3.00/h
        },
    }


async def test_billing_get_and_clear_tariffs(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    await billing.stations.connect("CP-21", "2.1")
    held: dict[str, Any] = {
        "status": "Accepted",
        "tariffAssignments": [{"tariffId": "local.v1", "tariffKind": "DefaultTariff"}],
    }
    billing.stations.answers["GetTariffs"] = held
    got = await api.get("/stations/CP-21/tariffs", params={"evse_id": 0})
    assert (got.status_code, got.json()["response"]) == (200, held)
    assert billing.stations.sent("GetTariffs") == [{"evseId": 0}]
    cleared = await api.delete("/stations/CP-21/tariffs", params={"tariff_id": "local.v1"})
    assert cleared.status_code == 200, cleared.text
    assert billing.stations.sent("ClearTariffs") == [{"tariffIds": ["local.v1"]}]


async def test_billing_station_tariffs_refused(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    offline = await api.get("/stations/CP-X/tariffs")
    assert (offline.status_code, offline.json()["type"]) == (
        409,
        "urn:csms:problem:station-offline",
    )
    await billing.stations.connect("CP-201", "2.0.1")
    old = await api.get("/stations/CP-201/tariffs")
    assert (old.status_code, old.json()["type"]) == (409, "urn:csms:problem:version-unsupported")
    await billing.stations.connect("CP-21", "2.1")
    unknown = await api.post("/stations/CP-21/tariffs", json={"tariff_id": "nope"})
    assert unknown.status_code == 404
    stepped = {
        "tariff": {
            "id": "stepped",
            "currency": "EUR",
            "elements": [{"price_components": [{"type": "TIME", "price": 2, "step_size": 300}]}],
        },
        "applies_to": {"station_ids": ["CP-9"]},
    }
    assert (await api.put("/tariffs/stepped", json=stepped)).status_code == 201
    untranslatable = await api.post("/stations/CP-21/tariffs", json={"tariff_id": "stepped"})
    assert untranslatable.status_code == 422
    assert "step_size" in untranslatable.json()["detail"]
    assert billing.stations.sent("SetDefaultTariff") == []
