"""``/api/v1/tariffs``: OCPI tariffs in, versions kept, bad input refused as problem+json."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

PROBLEM = "application/problem+json"


def body(tariff_id: str = "standard", **changes: Any) -> dict[str, Any]:
    tariff: dict[str, Any] = {
        "id": tariff_id,
        "currency": "EUR",
        "elements": [
            {"price_components": [{"type": "ENERGY", "price": 0.30, "vat": 21, "step_size": 1}]}
        ],
    }
    applies_to = changes.pop("applies_to", {"default": True})
    extra: dict[str, Any] = {k: changes.pop(k) for k in ("time_zone", "taxes") if k in changes}
    return {"tariff": tariff | changes, "applies_to": applies_to, **extra}


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def test_billing_put_tariff_creates_then_versions(api: httpx.AsyncClient) -> None:
    created = await api.put("/tariffs/standard", json=body())
    assert created.status_code == 201, created.text
    answer = created.json()
    assert answer["tariff"]["country_code"] == "NL" and answer["tariff"]["party_id"] == "CSM"
    assert answer["tariff"]["elements"][0]["price_components"][0] == {
        "type": "ENERGY",
        "price": 0.3,
        "vat": 21,
        "step_size": 1,
    }
    assert answer["version"] == 1 and answer["time_zone"] == "Europe/Amsterdam"

    again = await api.put("/tariffs/standard", json=body())  # a retried request
    assert again.status_code == 200 and again.json()["versions"] == answer["versions"]

    cheaper = body()
    cheaper["tariff"]["elements"][0]["price_components"][0]["price"] = 0.25
    changed = await api.put("/tariffs/standard", json=cheaper)
    assert changed.status_code == 200
    versions = changed.json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["valid_to"] == versions[1]["valid_from"]  # the price changes there
    assert changed.json()["tariff"]["elements"][0]["price_components"][0]["price"] == 0.25

    first = await api.get("/tariffs/standard", params={"version": 1})
    assert first.json()["tariff"]["elements"][0]["price_components"][0]["price"] == 0.3


async def test_billing_future_version_takes_over_at_its_start(api: httpx.AsyncClient) -> None:
    assert (await api.put("/tariffs/standard", json=body())).status_code == 201
    start = datetime.now(UTC) + timedelta(days=30)
    later = body(start_date_time=iso(start))
    later["tariff"]["elements"][0]["price_components"][0]["price"] = 0.40
    answer = (await api.put("/tariffs/standard", json=later)).json()
    assert answer["version"] == 1  # still the one in force
    first, second = answer["versions"]
    assert datetime.fromisoformat(second["valid_from"]) == start
    assert first["valid_to"] == second["valid_from"]


@pytest.mark.parametrize(
    ("change", "kind", "loc"),
    [
        ({"currency": "EUX"}, "invalid-tariff", ["tariff", "currency"]),
        (
            {
                "elements": [
                    {"price_components": [{"type": "ENERGY", "price": -0.1, "step_size": 1}]}
                ]
            },
            "invalid-request",
            ["body", "tariff", "elements", 0, "price_components", 0, "price"],
        ),
        (
            {
                "elements": [
                    {"price_components": [{"type": "ENERGY", "price": 0.3, "step_size": 1}]},
                    {
                        "price_components": [{"type": "ENERGY", "price": 0.2, "step_size": 1}],
                        "restrictions": {"start_time": "22:00", "end_time": "06:00"},
                    },
                ]
            },
            "invalid-tariff",
            ["tariff", "elements", 1],
        ),
        (
            {
                "elements": [
                    {
                        "price_components": [{"type": "ENERGY", "price": 0.3, "step_size": 1}],
                        "restrictions": {"min_kwh": 20, "max_kwh": 10},
                    }
                ]
            },
            "invalid-tariff",
            ["tariff", "elements", 0, "restrictions", "max_kwh"],
        ),
        ({"id": "other"}, "invalid-tariff", ["tariff", "id"]),
        ({"time_zone": "Mars/Olympus"}, "invalid-tariff", ["time_zone"]),
        (
            {"applies_to": {"default": True, "station_ids": ["CP-1"]}},
            "invalid-request",
            ["body", "applies_to"],
        ),
        ({"unknown_field": 1}, "invalid-request", ["body", "tariff", "unknown_field"]),
    ],
)
async def test_billing_bad_tariff_is_422_problem(
    api: httpx.AsyncClient, change: dict[str, Any], kind: str, loc: list[Any]
) -> None:
    response = await api.put("/tariffs/standard", json=body(**change))
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == f"urn:csms:problem:{kind}"
    assert loc in [error["loc"] for error in problem["errors"]]
    assert (await api.get("/tariffs/standard")).status_code == 404  # nothing stored


async def test_billing_overlapping_versions_are_422(api: httpx.AsyncClient) -> None:
    now = datetime.now(UTC)
    fixed = body(
        start_date_time=iso(now + timedelta(days=1)), end_date_time=iso(now + timedelta(days=10))
    )
    assert (await api.put("/tariffs/standard", json=fixed)).status_code == 201
    inside = body(start_date_time=iso(now + timedelta(days=5)))
    inside["tariff"]["elements"][0]["price_components"][0]["price"] = 0.5
    response = await api.put("/tariffs/standard", json=inside)
    assert response.status_code == 422
    assert response.json()["type"] == "urn:csms:problem:overlapping-versions"
    assert ["tariff", "start_date_time"] in [e["loc"] for e in response.json()["errors"]]


async def test_billing_two_tariffs_for_one_station_conflict(api: httpx.AsyncClient) -> None:
    station = {"station_ids": ["CP-1", "CP-2"]}
    assert (await api.put("/tariffs/a", json=body("a", applies_to=station))).status_code == 201
    clash = await api.put("/tariffs/b", json=body("b", applies_to={"station_ids": ["CP-2"]}))
    assert clash.status_code == 422
    assert clash.json()["type"] == "urn:csms:problem:applies-to-conflict"
    ad_hoc = body("b", type="AD_HOC_PAYMENT", applies_to={"station_ids": ["CP-2"]})
    assert (await api.put("/tariffs/b", json=ad_hoc)).status_code == 201  # another kind


async def test_billing_list_and_delete_tariffs(api: httpx.AsyncClient) -> None:
    for name in ("a", "b", "c"):
        target = {"station_ids": [f"CP-{name}"]}
        assert (
            await api.put(f"/tariffs/{name}", json=body(name, applies_to=target))
        ).status_code == 201
    page = (await api.get("/tariffs", params={"limit": 2})).json()
    assert (page["total"], [t["tariff_id"] for t in page["items"]]) == (3, ["a", "b"])
    assert (await api.delete("/tariffs/b")).status_code == 204
    assert (await api.delete("/tariffs/b")).status_code == 404
    listed = (await api.get("/tariffs")).json()
    assert [t["tariff_id"] for t in listed["items"]] == ["a", "c"]
    kept = (await api.get("/tariffs/b")).json()
    assert kept["deleted_at"] is not None and kept["versions"][0]["valid_to"] is not None


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/tariffs", {"limit": 0}),
        ("/tariffs", {"limit": 501}),
        ("/tariffs", {"offset": -1}),
        ("/tariffs", {"offset": 132677671060219674624}),
        ("/tariffs/x", {"version": 0}),
    ],
)
async def test_billing_tariff_paging_is_bounded(
    api: httpx.AsyncClient, path: str, params: dict[str, Any]
) -> None:
    response = await api.get(path, params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


async def test_billing_unknown_tariff_is_404_problem(api: httpx.AsyncClient) -> None:
    response = await api.get("/tariffs/none")
    assert response.status_code == 404
    assert response.json()["type"] == "urn:csms:problem:unknown-tariff"
