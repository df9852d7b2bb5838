"""OCPP 2.1 VatNumberValidation against a VAT registry the test runs on loopback."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI, HTTPException

from csms_billing.payments.vat import HttpVatRegistry, validate_vat
from csms_cli.serving import serve_api
from csms_ocpp import OcppVersion, schemas
from tests.cluster import free_port

KNOWN: dict[str, dict[str, object]] = {
    "NL123456789B01": {
        "valid": True,
        "name": "Laadpaal BV",
        "address1": "Stationsplein 1",
        "city": "Utrecht",
        "postal_code": "3511 ED",
        "country": "Netherlands",
    },
    "DE999999999": {"valid": False},
}


@pytest.fixture
async def registry() -> AsyncIterator[HttpVatRegistry]:
    app = FastAPI()

    @app.get("/vat/{number}")
    async def lookup(number: str) -> dict[str, object]:
        if number not in KNOWN:
            raise HTTPException(404)
        return KNOWN[number]

    port, stopping, listening = free_port(), asyncio.Event(), asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(serve_api(app, "127.0.0.1", port, stopping, listening=listening))
        await listening.wait()
        try:
            yield HttpVatRegistry(f"http://127.0.0.1:{port}")
        finally:
            stopping.set()


async def test_billing_vat_number_the_registry_knows_is_accepted(registry: HttpVatRegistry) -> None:
    answer = await validate_vat(registry, "nl 1234.5678.9 b01", 1)
    assert schemas.validate(OcppVersion.V21, "VatNumberValidation", answer, response=True) is None
    assert answer == {
        "vatNumber": "nl 1234.5678.9 b01",
        "evseId": 1,
        "status": "Accepted",
        "company": {
            "name": "Laadpaal BV",
            "address1": "Stationsplein 1",
            "city": "Utrecht",
            "postalCode": "3511 ED",
            "country": "Netherlands",
        },
    }


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("DE999999999", "UnknownNumber"),
        ("FR00000000000", "UnknownNumber"),
        ("12-ab", "InvalidValue"),
    ],
)
async def test_billing_vat_number_refused(
    registry: HttpVatRegistry, number: str, reason: str
) -> None:
    answer = await validate_vat(registry, number, None)
    assert schemas.validate(OcppVersion.V21, "VatNumberValidation", answer, response=True) is None
    assert (answer["status"], answer["statusInfo"]["reasonCode"]) == ("Rejected", reason)


async def test_billing_vat_without_a_registry_is_never_a_guess() -> None:
    answer = await validate_vat(None, "NL123456789B01", None)
    assert (answer["status"], answer["statusInfo"]["reasonCode"]) == ("Rejected", "Unavailable")
    down = await validate_vat(HttpVatRegistry(f"http://127.0.0.1:{free_port()}"), "NL1234B01", None)
    assert (down["status"], down["statusInfo"]["reasonCode"]) == ("Rejected", "Unavailable")
