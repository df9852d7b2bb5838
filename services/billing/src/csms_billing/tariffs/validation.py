"""Whether a tariff makes sense as a whole: what the field constraints cannot see.

Each finding names where it is (``loc``, as pydantic's errors do) and is answered
as one 422 problem with all of them. An element that can never apply is refused
rather than stored: an operator who wrote it meant something else.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from csms_billing.money import is_currency
from csms_billing.ocpi import Price
from csms_billing.pricing.taxes import TaxRate
from csms_billing.tariffs.ocpi import (
    Tariff,
    TariffDimensionType,
    TariffElement,
    TariffRestrictions,
)

Loc = tuple[str | int, ...]

# mod_tariffs TariffRestrictions.reservation: "A reservation can only have FLAT and TIME".
_RESERVATION_DIMENSIONS = frozenset({TariffDimensionType.FLAT, TariffDimensionType.TIME})


@dataclass(frozen=True)
class Issue:
    loc: Loc
    msg: str
    type: str

    def wire(self) -> dict[str, object]:
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


def tariff_issues(
    tariff: Tariff, zone: ZoneInfo, taxes: Sequence[TaxRate] = (), loc: Loc = ("tariff",)
) -> list[Issue]:
    """Everything wrong with ``tariff`` (times of day and dates are local to ``zone``;
    ``taxes`` are levied on top of each component's VAT)."""
    issues: list[Issue] = []
    if not is_currency(tariff.currency):
        issues.append(
            Issue((*loc, "currency"), f"{tariff.currency!r} is no ISO 4217 currency", "currency")
        )
    issues += _price_issues(tariff, loc)
    issues += _bound_issues(tariff, bool(taxes), loc)
    if (
        tariff.start_date_time is not None
        and tariff.end_date_time is not None
        and tariff.end_date_time <= tariff.start_date_time
    ):
        issues.append(
            Issue((*loc, "end_date_time"), "the tariff ends before it starts", "never-applies")
        )
    for index, element in enumerate(tariff.elements):
        issues += _element_issues(tariff, index, element, zone, (*loc, "elements", index))
    return issues


def _price_issues(tariff: Tariff, loc: Loc) -> Iterator[Issue]:
    for name, price in (("min_price", tariff.min_price), ("max_price", tariff.max_price)):
        if price is not None:
            yield from _one_price_issues(price, (*loc, name))
    low, high = tariff.min_price, tariff.max_price
    if low is not None and high is not None and _below(high, low):
        yield Issue((*loc, "max_price"), "max_price is below min_price", "price")


def _below(high: Price, low: Price) -> bool:
    if high.excl_vat < low.excl_vat:
        return True
    return high.incl_vat is not None and low.incl_vat is not None and high.incl_vat < low.incl_vat


def _bound_issues(tariff: Tariff, extra_taxes: bool, loc: Loc) -> Iterator[Issue]:
    """Where a tax applies, a bound must say its incl. VAT figure: the tax on a minimum or a
    maximum is the operator's to state, not the engine's to guess from the mix of prices."""
    taxed = extra_taxes or any(
        component.vat is not None
        for element in tariff.elements
        for component in element.price_components
    )
    for name, bound in (("min_price", tariff.min_price), ("max_price", tariff.max_price)):
        if taxed and bound is not None and bound.incl_vat is None:
            yield Issue((*loc, name, "incl_vat"), "a tax applies: give incl_vat too", "price")


def _one_price_issues(price: Price, loc: Loc) -> Iterator[Issue]:
    if price.excl_vat < 0 or (price.incl_vat is not None and price.incl_vat < 0):
        yield Issue(loc, "a price cannot be negative", "price")
    elif price.incl_vat is not None and price.incl_vat < price.excl_vat:
        yield Issue((*loc, "incl_vat"), "incl_vat is below excl_vat", "price")


def _element_issues(
    tariff: Tariff, index: int, element: TariffElement, zone: ZoneInfo, loc: Loc
) -> Iterator[Issue]:
    seen: set[TariffDimensionType] = set()
    for position, component in enumerate(element.price_components):
        if component.type in seen:
            yield Issue(
                (*loc, "price_components", position),
                f"a second {component.type} component in one element never applies",
                "never-applies",
            )
        seen.add(component.type)
        if element.reservation is not None and component.type not in _RESERVATION_DIMENSIONS:
            yield Issue(
                (*loc, "price_components", position),
                f"a reservation element prices FLAT and TIME only, not {component.type}",
                "never-applies",
            )
    if element.restrictions is not None:
        yield from _restriction_issues(tariff, element.restrictions, zone, (*loc, "restrictions"))
    if (shadow := _shadowing_element(tariff, index)) is not None:
        yield Issue(
            loc,
            f"elements without restrictions up to element {shadow} price every dimension of "
            "this one first",
            "never-applies",
        )


def _restriction_issues(
    tariff: Tariff, restrictions: TariffRestrictions, zone: ZoneInfo, loc: Loc
) -> Iterator[Issue]:
    bounds: list[tuple[str, Decimal | int | None, Decimal | int | None]] = [
        ("kwh", restrictions.min_kwh, restrictions.max_kwh),
        ("current", restrictions.min_current, restrictions.max_current),
        ("power", restrictions.min_power, restrictions.max_power),
        ("duration", restrictions.min_duration, restrictions.max_duration),
    ]
    for name, low, high in bounds:
        if low is not None and high is not None and high <= low:
            yield Issue(
                (*loc, f"max_{name}"),
                f"max_{name} must exceed min_{name} (the range is empty)",
                "never-applies",
            )
    if restrictions.start_time is not None and restrictions.start_time == restrictions.end_time:
        yield Issue(
            (*loc, "end_time"), "start_time equals end_time (no time of day)", "never-applies"
        )
    yield from _date_issues(tariff, restrictions, zone, loc)


def _date_issues(
    tariff: Tariff, restrictions: TariffRestrictions, zone: ZoneInfo, loc: Loc
) -> Iterator[Issue]:
    first = _local_midnight(restrictions.start_date, zone)
    end = _local_midnight(restrictions.end_date, zone)
    if first is not None and end is not None and end <= first:
        yield Issue((*loc, "end_date"), "end_date is not after start_date", "never-applies")
        return
    if end is not None and tariff.start_date_time is not None and end <= tariff.start_date_time:
        yield Issue((*loc, "end_date"), "the dates end before the tariff starts", "never-applies")
    if first is not None and tariff.end_date_time is not None and first >= tariff.end_date_time:
        yield Issue((*loc, "start_date"), "the dates start after the tariff ends", "never-applies")


def _local_midnight(day: str | None, zone: ZoneInfo) -> datetime | None:
    return None if day is None else datetime.combine(date.fromisoformat(day), time(), zone)


def _shadowing_element(tariff: Tariff, index: int) -> int | None:
    """An earlier element without restrictions that takes every dimension of element ``index``
    (per dimension the first matching element wins, mod_tariffs Tariff Object)."""
    element = tariff.elements[index]
    dimensions = {component.type for component in element.price_components}
    covered: set[TariffDimensionType] = set()
    for earlier in range(index):
        other = tariff.elements[earlier]
        if other.unrestricted and other.reservation == element.reservation:
            covered |= {component.type for component in other.price_components}
            if dimensions <= covered:
                return earlier
    return None
