"""What a tariff must make sense of as a whole; each finding names its place."""

from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from csms_billing.tariffs.ocpi import Tariff
from csms_billing.tariffs.validation import tariff_issues
from tests.billing_kit import component, element, tariff

ZONE = ZoneInfo("Europe/Paris")
ENERGY = component("ENERGY", "0.30")


def issues(ocpi: Tariff) -> list[tuple[str, str]]:
    return [(".".join(map(str, i.loc)), i.type) for i in tariff_issues(ocpi, ZONE)]


def test_billing_sound_tariff_has_no_issues() -> None:
    ocpi = tariff(
        element(component("ENERGY", "0.20"), start_time="22:00", end_time="06:00"),
        element(ENERGY, component("FLAT", "1.00")),
    )
    assert issues(ocpi) == []


@pytest.mark.parametrize(
    ("ocpi", "found"),
    [
        (tariff(element(ENERGY), currency="EUX"), ("tariff.currency", "currency")),
        (
            tariff(element(ENERGY, max_kwh="10", min_kwh="10")),
            ("tariff.elements.0.restrictions.max_kwh", "never-applies"),
        ),
        (
            tariff(element(ENERGY, min_duration=3600, max_duration=1800)),
            ("tariff.elements.0.restrictions.max_duration", "never-applies"),
        ),
        (
            tariff(element(ENERGY, start_time="10:00", end_time="10:00")),
            ("tariff.elements.0.restrictions.end_time", "never-applies"),
        ),
        (
            tariff(element(ENERGY, start_date="2025-02-01", end_date="2025-01-01")),
            ("tariff.elements.0.restrictions.end_date", "never-applies"),
        ),
        (
            tariff(
                element(ENERGY, end_date="2025-01-01"),
                element(ENERGY),
                start_date_time="2025-01-02T00:00:00Z",
            ),
            ("tariff.elements.0.restrictions.end_date", "never-applies"),
        ),
        (
            tariff(element(ENERGY), element(ENERGY, start_time="18:00")),
            ("tariff.elements.1", "never-applies"),
        ),
        (
            tariff(element(ENERGY, component("ENERGY", "0.40"))),
            ("tariff.elements.0.price_components.1", "never-applies"),
        ),
        (
            tariff(element(ENERGY, reservation="RESERVATION")),
            ("tariff.elements.0.price_components.0", "never-applies"),
        ),
        (
            tariff(
                element(ENERGY),
                start_date_time="2025-02-01T00:00:00Z",
                end_date_time="2025-01-01T00:00:00Z",
            ),
            ("tariff.end_date_time", "never-applies"),
        ),
        (
            tariff(element(ENERGY), min_price={"excl_vat": "5"}, max_price={"excl_vat": "2"}),
            ("tariff.max_price", "price"),
        ),
        (
            tariff(element(component("ENERGY", "0.30", vat="20")), max_price={"excl_vat": "9"}),
            ("tariff.max_price.incl_vat", "price"),
        ),
        (
            tariff(element(ENERGY), min_price={"excl_vat": "5", "incl_vat": "4"}),
            ("tariff.min_price.incl_vat", "price"),
        ),
    ],
)
def test_billing_tariff_issue_found(ocpi: Tariff, found: tuple[str, str]) -> None:
    assert found in issues(ocpi)


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "ENERGY", "price": -0.1, "step_size": 1},
        {"type": "ENERGY", "price": 0.1, "vat": -5, "step_size": 1},
        {"type": "ENERGY", "price": 0.1, "step_size": 0},
        {"type": "CARBON", "price": 0.1, "step_size": 1},
    ],
)
def test_billing_tariff_component_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        tariff(element(bad))


@pytest.mark.parametrize(
    "restrictions",
    [{"start_time": "24:00"}, {"start_date": "2025-02-30"}, {"day_of_week": ["FUNDAY"]}],
)
def test_billing_tariff_restriction_refused(restrictions: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        tariff(element(ENERGY, **restrictions))
