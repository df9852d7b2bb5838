"""An OCPI 2.2.1 tariff as the OCPP 2.1 ``TariffType`` a station's local cost calculator runs.

OCPP 2.1 (Part 2, I block: SetDefaultTariff, AuthorizeResponse.tariff,
ChangeTransactionTariff) prices per dimension from a list of prices, each with
optional conditions, the first matching one applying: the same rule as OCPI's
"first element per dimension", so each dimension's components are listed in
element order. What differs:

- time is priced per minute, not per hour;
- energy conditions are in Wh and W, not kWh and kW;
- taxes are per dimension (``taxRates`` with ``stack``), not per component, so
  every component of one dimension must carry the same VAT;
- there is no ``step_size``: a station rounds nothing, so only tariffs billed
  per Wh and per second (step 1, OCPI's own advice) translate;
- a fixed price's conditions know times, days and dates only.

A tariff that cannot be said in 2.1 is refused with the reason, never sent
approximated: the station would then show the driver another price than the CDR.
"""

from collections.abc import Iterable, Sequence
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from csms_billing.ocpi import Number, Price, utc_text
from csms_billing.pricing.taxes import TaxRate, component_taxes
from csms_billing.tariffs.ocpi import (
    ReservationRestrictionType,
    Tariff,
    TariffDimensionType,
    TariffElement,
    TariffRestrictions,
)

Dimension = TariffDimensionType
_MINUTE = Decimal(60)
_KILO = Decimal(1000)


class Untranslatable(ValueError):
    """The tariff has no OCPP 2.1 equivalent; the message says why."""


class Ocpp21Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def wire(self) -> dict[str, object]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class TaxRateType(Ocpp21Model):
    type: str
    tax: Number
    stack: int | None = None


class TariffConditions(Ocpp21Model):
    start_time_of_day: str | None = Field(default=None, alias="startTimeOfDay")
    end_time_of_day: str | None = Field(default=None, alias="endTimeOfDay")
    day_of_week: list[str] | None = Field(default=None, alias="dayOfWeek")
    valid_from_date: str | None = Field(default=None, alias="validFromDate")
    valid_to_date: str | None = Field(default=None, alias="validToDate")
    min_energy: Number | None = Field(default=None, alias="minEnergy")
    max_energy: Number | None = Field(default=None, alias="maxEnergy")
    min_current: Number | None = Field(default=None, alias="minCurrent")
    max_current: Number | None = Field(default=None, alias="maxCurrent")
    min_power: Number | None = Field(default=None, alias="minPower")
    max_power: Number | None = Field(default=None, alias="maxPower")
    min_time: int | None = Field(default=None, alias="minTime")
    max_time: int | None = Field(default=None, alias="maxTime")


class EnergyPrice(Ocpp21Model):
    price_kwh: Number = Field(alias="priceKwh")
    conditions: TariffConditions | None = None


class TimePrice(Ocpp21Model):
    price_minute: Number = Field(alias="priceMinute")
    conditions: TariffConditions | None = None


class FixedPrice(Ocpp21Model):
    price_fixed: Number = Field(alias="priceFixed")
    conditions: TariffConditions | None = None


class TariffEnergy(Ocpp21Model):
    prices: list[EnergyPrice]
    tax_rates: list[TaxRateType] | None = Field(default=None, alias="taxRates")


class TariffTime(Ocpp21Model):
    prices: list[TimePrice]
    tax_rates: list[TaxRateType] | None = Field(default=None, alias="taxRates")


class TariffFixed(Ocpp21Model):
    prices: list[FixedPrice]
    tax_rates: list[TaxRateType] | None = Field(default=None, alias="taxRates")


class MessageContent(Ocpp21Model):
    format: str
    language: str | None = None
    content: str


class PriceType(Ocpp21Model):
    excl_tax: Number | None = Field(default=None, alias="exclTax")
    incl_tax: Number | None = Field(default=None, alias="inclTax")


class TariffType(Ocpp21Model):
    """OCPP 2.1 TariffType (the fields the CSMS fills)."""

    tariff_id: str = Field(alias="tariffId", max_length=60)
    currency: str
    description: list[MessageContent] | None = None
    valid_from: str | None = Field(default=None, alias="validFrom")
    energy: TariffEnergy | None = None
    charging_time: TariffTime | None = Field(default=None, alias="chargingTime")
    idle_time: TariffTime | None = Field(default=None, alias="idleTime")
    fixed_fee: TariffFixed | None = Field(default=None, alias="fixedFee")
    reservation_time: TariffTime | None = Field(default=None, alias="reservationTime")
    reservation_fixed: TariffFixed | None = Field(default=None, alias="reservationFixed")
    min_cost: PriceType | None = Field(default=None, alias="minCost")
    max_cost: PriceType | None = Field(default=None, alias="maxCost")


def wire_tariff_id(tariff_id: str, version: int) -> str:
    """The 2.1 TariffType id of one version of a tariff (SetDefaultTariff, AuthorizeResponse)."""
    return f"{tariff_id}.v{version}"


def to_ocpp21(tariff: Tariff, tariff_id: str, taxes: Sequence[TaxRate] = ()) -> TariffType:
    """``tariff`` as a 2.1 TariffType named ``tariff_id``; Untranslatable when it has none."""
    if any(
        e.reservation is ReservationRestrictionType.RESERVATION_EXPIRES for e in tariff.elements
    ):
        raise Untranslatable("OCPP 2.1 has no price for an expired reservation")
    session = [e for e in tariff.elements if e.reservation is None]
    reserved = [
        e for e in tariff.elements if e.reservation is ReservationRestrictionType.RESERVATION
    ]
    return TariffType(
        tariff_id=tariff_id,
        currency=tariff.currency,
        description=[
            MessageContent(format="UTF8", language=text.language, content=text.text)
            for text in tariff.tariff_alt_text or []
        ]
        or None,
        valid_from=_wire_time(tariff),
        energy=_energy(session, taxes),
        charging_time=_time(session, Dimension.TIME, taxes),
        idle_time=_time(session, Dimension.PARKING_TIME, taxes),
        fixed_fee=_fixed(session, taxes),
        reservation_time=_time(reserved, Dimension.TIME, taxes),
        reservation_fixed=_fixed(reserved, taxes),
        min_cost=_price(tariff.min_price),
        max_cost=_price(tariff.max_price),
    )


def _wire_time(tariff: Tariff) -> str | None:
    return None if tariff.start_date_time is None else utc_text(tariff.start_date_time)


def _components(
    elements: Iterable[TariffElement], dimension: Dimension
) -> list[tuple[TariffRestrictions | None, Decimal, Decimal | None, int]]:
    """(restrictions, price, vat, step_size) of each ``dimension`` component, in element order."""
    return [
        (element.restrictions, component.price, component.vat, component.step_size)
        for element in elements
        for component in element.price_components
        if component.type is dimension
    ]


def _tax_rates(
    dimension: Dimension, vats: set[Decimal | None], taxes: Sequence[TaxRate]
) -> list[TaxRateType] | None:
    if len(vats) > 1:
        raise Untranslatable(
            f"OCPP 2.1 taxes a dimension once; the {dimension} prices differ in VAT"
        )
    rates = component_taxes(next(iter(vats)), dimension, taxes)
    return [TaxRateType(type=r.type, tax=r.tax, stack=r.stack) for r in rates] or None


def _steps_of_one(dimension: Dimension, steps: Iterable[int]) -> None:
    if any(step != 1 for step in steps):
        raise Untranslatable(f"OCPP 2.1 has no step_size: {dimension} must be billed in steps of 1")


def _energy(elements: Sequence[TariffElement], taxes: Sequence[TaxRate]) -> TariffEnergy | None:
    found = _components(elements, Dimension.ENERGY)
    if not found:
        return None
    _steps_of_one(Dimension.ENERGY, (step for *_, step in found))
    return TariffEnergy(
        prices=[EnergyPrice(price_kwh=p, conditions=_conditions(r)) for r, p, _, _ in found],
        tax_rates=_tax_rates(Dimension.ENERGY, {vat for _, _, vat, _ in found}, taxes),
    )


def _time(
    elements: Sequence[TariffElement], dimension: Dimension, taxes: Sequence[TaxRate]
) -> TariffTime | None:
    found = _components(elements, dimension)
    if not found:
        return None
    _steps_of_one(dimension, (step for *_, step in found))
    return TariffTime(
        prices=[
            TimePrice(price_minute=p / _MINUTE, conditions=_conditions(r)) for r, p, _, _ in found
        ],
        tax_rates=_tax_rates(dimension, {vat for _, _, vat, _ in found}, taxes),
    )


def _fixed(elements: Sequence[TariffElement], taxes: Sequence[TaxRate]) -> TariffFixed | None:
    found = _components(elements, Dimension.FLAT)
    if not found:
        return None
    return TariffFixed(
        prices=[FixedPrice(price_fixed=p, conditions=_fixed_conditions(r)) for r, p, _, _ in found],
        tax_rates=_tax_rates(Dimension.FLAT, {vat for _, _, vat, _ in found}, taxes),
    )


def _conditions(restrictions: TariffRestrictions | None) -> TariffConditions | None:
    if restrictions is None or restrictions.unrestricted:
        return None
    r = restrictions
    return TariffConditions(
        start_time_of_day=r.start_time,
        end_time_of_day=r.end_time,
        day_of_week=[day.value.capitalize() for day in r.day_of_week] if r.day_of_week else None,
        valid_from_date=r.start_date,
        valid_to_date=r.end_date,
        min_energy=None if r.min_kwh is None else r.min_kwh * _KILO,
        max_energy=None if r.max_kwh is None else r.max_kwh * _KILO,
        min_current=r.min_current,
        max_current=r.max_current,
        min_power=None if r.min_power is None else r.min_power * _KILO,
        max_power=None if r.max_power is None else r.max_power * _KILO,
        min_time=r.min_duration,
        max_time=r.max_duration,
    )


# OCPP 2.1 TariffConditionsFixedType knows only these of OCPI's restrictions.
_FIXED_CONDITIONS = frozenset(
    {"start_time", "end_time", "day_of_week", "start_date", "end_date", "reservation"}
)


def _fixed_conditions(restrictions: TariffRestrictions | None) -> TariffConditions | None:
    if restrictions is not None:
        used = {
            name
            for name, value in restrictions.model_dump(exclude_none=True).items()
            if value != []
        }
        if unsupported := used - _FIXED_CONDITIONS:
            raise Untranslatable(
                f"OCPP 2.1 fixed prices have no condition {', '.join(sorted(unsupported))}"
            )
    return _conditions(restrictions)


def _price(price: Price | None) -> PriceType | None:
    return None if price is None else PriceType(excl_tax=price.excl_vat, incl_tax=price.incl_vat)
