"""Billing the periods of a session: lines, step sizes, taxes, sub-totals, min/max price.

See ``engine`` for the rules (OCPI 2.2.1 mod_tariffs and mod_cdrs).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, Decimal

from csms_billing.ocpi import Price
from csms_billing.pricing.cost import (
    Amount,
    Cost,
    CostType,
    Dimension,
    Line,
    Period,
    Phase,
    category,
    per_hour,
)
from csms_billing.pricing.taxes import TaxRate, component_taxes, tax_factor
from csms_billing.pricing.usage import ZERO, Usage, seconds_between
from csms_billing.tariffs.ocpi import Tariff


@dataclass
class _Bill:
    """Lines by period while step sizes are applied."""

    lines: list[list[Line]] = field(default_factory=list)

    def all(self) -> Iterable[tuple[int, Line]]:
        for index, lines in enumerate(self.lines):
            for line in lines:
                yield index, line


def _lines(periods: Sequence[Period]) -> _Bill:
    bill = _Bill()
    flat_billed: set[bool] = set()  # per reservation / session: FLAT once each
    for period in periods:
        lines: list[Line] = []
        for dimension, ref in period.components:
            quantity = _quantity(period, dimension)
            reserved = period.phase is Phase.RESERVATION
            if dimension is Dimension.FLAT:
                if reserved in flat_billed:
                    continue
                flat_billed.add(reserved)
            if quantity > 0:
                lines.append(Line(dimension, ref, quantity))
        bill.lines.append(lines)
    return bill


def _quantity(period: Period, dimension: Dimension) -> Decimal:
    if dimension is Dimension.FLAT:
        return Decimal(1)
    if dimension is Dimension.ENERGY:
        return period.energy_wh
    return period.seconds


def _step_group(period: Period, line: Line) -> str | None:
    if line.dimension is Dimension.FLAT:
        return None
    if period.phase is Phase.RESERVATION:
        return "reservation"
    return "energy" if line.dimension is Dimension.ENERGY else "time"


@dataclass(frozen=True)
class Priced:
    """A tariff and the taxes on top of it: what prices the periods of one part."""

    tariff: Tariff
    taxes: Sequence[TaxRate] = ()


def _apply_step_sizes(parts: Sequence[Priced], periods: Sequence[Period], bill: _Bill) -> None:
    """Round each step group's total up at its last priced line (mod_cdrs step_size), over
    the whole session: with a tariff changed during it, at the last part's component."""
    last: dict[str, tuple[int, int]] = {}
    for index, lines in enumerate(bill.lines):
        for position, line in enumerate(lines):
            if (group := _step_group(periods[index], line)) is not None:
                last[group] = (index, position)
    for group, (index, position) in last.items():
        line = bill.lines[index][position]
        total = sum(
            (
                other.quantity
                for at, other in bill.all()
                if other.dimension is line.dimension and _step_group(periods[at], other) == group
            ),
            ZERO,
        )
        step = Decimal(line.ref.of(parts[periods[index].part].tariff).step_size)
        rounded = (total / step).to_integral_value(rounding=ROUND_CEILING) * step
        bill.lines[index][position] = replace(line, quantity=line.quantity + rounded - total)


def _priced(tariff: Tariff, line: Line, taxes: Sequence[TaxRate]) -> Line:
    component = line.ref.of(tariff)
    excl = component.price * line.quantity * line.scale
    applying = component_taxes(component.vat, line.dimension, taxes)
    return replace(line, hourly=Amount(excl, excl * tax_factor(applying)), taxed=bool(applying))


def bill(parts: Sequence[Priced], periods: list[Period], usage: Usage) -> Cost:
    """The periods (each of its ``part``) billed; the total bounded by the min/max price of
    the tariff in force at the end (the last part)."""
    bill = _lines(periods)
    _apply_step_sizes(parts, periods, bill)
    priced = [
        replace(
            period,
            lines=tuple(
                _priced(parts[period.part].tariff, line, parts[period.part].taxes) for line in lines
            ),
        )
        for period, lines in zip(periods, bill.lines, strict=True)
    ]
    hourly = _subtotals(priced)
    sub = {name: per_hour(amount) for name, amount in hourly.items()}
    last = parts[-1].tariff
    total, type_of_cost = _bounded(last, per_hour(sum(hourly.values(), Amount())))
    return Cost(
        currency=last.currency,
        periods=tuple(priced),
        fixed=sub["fixed"],
        energy=sub["energy"],
        time=sub["time"],
        parking=sub["parking"],
        reservation=sub["reservation"],
        total=total,
        type_of_cost=type_of_cost,
        taxed=any(line.taxed for period in priced for line in period.lines),
        energy_wh=sum((p.energy_wh for p in priced if p.phase is not Phase.RESERVATION), ZERO),
        time_s=seconds_between(usage.started_at, usage.ended_at),
        parking_s=sum((p.seconds for p in priced if p.phase is Phase.PARKING), ZERO),
        reservation_s=sum((p.seconds for p in priced if p.phase is Phase.RESERVATION), ZERO),
    )


def _subtotals(periods: Sequence[Period]) -> dict[str, Amount]:
    """Per category, the exact sum of the lines' ``hourly`` amounts."""
    sub = dict.fromkeys(("fixed", "energy", "time", "parking", "reservation"), Amount())
    for period in periods:
        for line in period.lines:
            sub[category(period, line)] += line.hourly
    return sub


def _bounded(tariff: Tariff, raw: Amount) -> tuple[Amount, CostType]:
    """``raw`` within min_price and max_price, excl. and incl. VAT each on its own
    (mod_tariffs notes on min_price / max_price). A bound without an incl. VAT figure
    bounds both (validation refuses that where a tax applies)."""
    low, high = tariff.min_price, tariff.max_price
    excl = _clamp(
        raw.excl,
        None if low is None else low.excl_vat,
        None if high is None else high.excl_vat,
    )
    incl = _clamp(
        raw.incl, None if low is None else _incl(low), None if high is None else _incl(high)
    )
    if excl > raw.excl or incl > raw.incl:
        return Amount(excl, incl), CostType.MIN
    if excl < raw.excl or incl < raw.incl:
        return Amount(excl, incl), CostType.MAX
    return raw, CostType.NORMAL


def _incl(bound: Price) -> Decimal:
    return bound.excl_vat if bound.incl_vat is None else bound.incl_vat


def _clamp(value: Decimal, low: Decimal | None, high: Decimal | None) -> Decimal:
    if low is not None and value < low:
        value = low
    return high if high is not None and value > high else value
