"""OCPI 2.2.1 tariffs as OCPP 2.1 TariffType: per minute, Wh and W, taxes per dimension."""

from decimal import Decimal

import pytest

from csms_billing.pricing.taxes import TaxRate
from csms_billing.tariffs.ocpi import Tariff
from csms_billing.tariffs.ocpp21 import Untranslatable, to_ocpp21
from csms_ocpp import OcppVersion, schemas
from tests.billing_kit import component, element, tariff


def test_billing_tariff_translates_to_ocpp21() -> None:
    ocpi = tariff(
        element(component("FLAT", "0.50", vat="20")),
        element(
            component("ENERGY", "0.30", vat="20"),
            component("TIME", "1.20", vat="20"),
            start_time="17:00",
            end_time="20:00",
            day_of_week=["MONDAY", "FRIDAY"],
            min_kwh="5",
            max_power="22",
        ),
        element(component("ENERGY", "0.25", vat="20"), component("PARKING_TIME", "6.00")),
        element(component("TIME", "3.00", vat="20"), reservation="RESERVATION"),
        max_price={"excl_vat": "30", "incl_vat": "36"},
        tariff_alt_text=[{"language": "en", "text": "0.25/kWh, 0.30 at peak"}],
        start_date_time="2025-01-01T00:00:00Z",
    )
    wire = to_ocpp21(ocpi, "std.v3", [TaxRate(type="Levy", tax=Decimal(2), stack=1)]).wire()
    vat_and_levy = [{"type": "VAT", "tax": 20, "stack": 0}, {"type": "Levy", "tax": 2, "stack": 1}]
    assert wire == {
        "tariffId": "std.v3",
        "currency": "EUR",
        "description": [{"format": "UTF8", "language": "en", "content": "0.25/kWh, 0.30 at peak"}],
        "validFrom": "2025-01-01T00:00:00Z",
        "energy": {
            "prices": [
                {
                    "priceKwh": 0.3,
                    "conditions": {
                        "startTimeOfDay": "17:00",
                        "endTimeOfDay": "20:00",
                        "dayOfWeek": ["Monday", "Friday"],
                        "minEnergy": 5000,
                        "maxPower": 22000,
                    },
                },
                {"priceKwh": 0.25},
            ],
            "taxRates": vat_and_levy,
        },
        "chargingTime": {
            "prices": [
                {
                    "priceMinute": 0.02,
                    "conditions": {
                        "startTimeOfDay": "17:00",
                        "endTimeOfDay": "20:00",
                        "dayOfWeek": ["Monday", "Friday"],
                        "minEnergy": 5000,
                        "maxPower": 22000,
                    },
                }
            ],
            "taxRates": vat_and_levy,
        },
        # No VAT on parking: only the levy.
        "idleTime": {
            "prices": [{"priceMinute": 0.1}],
            "taxRates": [{"type": "Levy", "tax": 2, "stack": 1}],
        },
        "fixedFee": {"prices": [{"priceFixed": 0.5}], "taxRates": vat_and_levy},
        "reservationTime": {"prices": [{"priceMinute": 0.05}], "taxRates": vat_and_levy},
        "maxCost": {"exclTax": 30, "inclTax": 36},
    }
    request = {"evseId": 0, "tariff": wire}
    assert schemas.validate(OcppVersion.V21, "SetDefaultTariff", request) is None


def test_billing_tariff_without_vat_has_no_tax_rates() -> None:
    wire = to_ocpp21(tariff(element(component("ENERGY", "0.30"))), "t").wire()
    assert wire["energy"] == {"prices": [{"priceKwh": 0.3}]}
    zero = to_ocpp21(tariff(element(component("ENERGY", "0.30", vat="0"))), "t").wire()
    assert zero["energy"] == {
        "prices": [{"priceKwh": 0.3}],
        "taxRates": [{"type": "VAT", "tax": 0, "stack": 0}],
    }


@pytest.mark.parametrize(
    ("ocpi", "reason"),
    [
        (tariff(element(component("TIME", "2.00", step=300))), "no step_size"),
        (
            tariff(
                element(component("ENERGY", "0.30", vat="20"), end_time="17:00"),
                element(component("ENERGY", "0.30", vat="10")),
            ),
            "differ in VAT",
        ),
        (tariff(element(component("FLAT", "1.00"), min_kwh="5")), "no condition min_kwh"),
        (
            tariff(
                element(component("FLAT", "4.00"), reservation="RESERVATION_EXPIRES"),
                element(component("ENERGY", "0.30")),
            ),
            "expired reservation",
        ),
    ],
)
def test_billing_tariff_untranslatable_says_why(ocpi: Tariff, reason: str) -> None:
    with pytest.raises(Untranslatable, match=reason):
        to_ocpp21(ocpi, "t")
