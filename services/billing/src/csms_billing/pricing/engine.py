"""The cost engine: one OCPI 2.2.1 tariff version applied to what a session used.

It feeds everything that shows a cost (the running cost on REST and to 2.x
stations, the final ``totalCost``, the CDR), so a driver is billed what was
shown. The rules are OCPI 2.2.1's (mod_tariffs, mod_cdrs):

- The session is cut into intervals in which no restriction can flip; per
  interval and per dimension the first element whose restrictions match and
  that prices the dimension applies (reservation elements only while reserved).
- ENERGY is priced per kWh whenever a component applies; TIME per hour while
  charging, PARKING_TIME per hour while not (the EV requests no power); FLAT once,
  from the first interval in which an element with a FLAT component applies.
- ``step_size`` is applied once per session to ENERGY, and once to TIME and
  PARKING_TIME together: the total volume of the dimension of the last priced
  period is rounded up to that component's step, and the extra is billed at that
  component's price (mod_cdrs "step_size"); charging time followed by priced
  parking is not rounded. Reservation time is rounded on its own.
- ``min_price`` / ``max_price`` bound the total excl. VAT and incl. VAT alike.

Arithmetic is ``Decimal`` at 40 digits; nothing is rounded here (``money`` does
that once, on the way out).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal, localcontext
from enum import StrEnum
from itertools import pairwise
from zoneinfo import ZoneInfo

from csms_billing.ocpi import Price
from csms_billing.pricing.restrictions import (
    Moment,
    calendar_cuts,
    duration_cuts,
    energy_cuts,
    matches,
)
from csms_billing.pricing.taxes import TaxRate, component_taxes, tax_factor
from csms_billing.pricing.usage import (
    SECOND_QUANTUM,
    ZERO,
    EnergyCurve,
    Timeline,
    Usage,
    energy_curve,
    seconds_between,
    timeline,
)
from csms_billing.tariffs.ocpi import (
    PriceComponent,
    ReservationRestrictionType,
    Tariff,
    TariffDimensionType,
)

Dimension = TariffDimensionType
PRECISION = 40
_HOUR = Decimal(3600)
_KILO = Decimal(1000)


class Phase(StrEnum):
    RESERVATION = "reservation"
    CHARGING = "charging"
    PARKING = "parking"


class CostType(StrEnum):
    """OCPP 2.1 TariffCostEnumType: what bounded the total."""

    NORMAL = "NormalCost"
    MIN = "MinCost"
    MAX = "MaxCost"


@dataclass(frozen=True, slots=True, order=True)
class ComponentRef:
    """A price component by position: ``tariff.elements[element].price_components[component]``."""

    element: int
    component: int

    def of(self, tariff: Tariff) -> PriceComponent:
        return tariff.elements[self.element].price_components[self.component]


@dataclass(frozen=True, slots=True)
class Amount:
    excl: Decimal = ZERO
    incl: Decimal = ZERO

    def __add__(self, other: "Amount") -> "Amount":
        return Amount(self.excl + other.excl, self.incl + other.incl)


@dataclass(frozen=True, slots=True)
class Line:
    """One component billed in one period; ``quantity`` in Wh, seconds or 1 (FLAT).

    ``hourly`` is the amount times 3600: exact (a price times seconds needs no division),
    so sums of lines are exact and divided once (see ``per_hour``).
    """

    dimension: Dimension
    ref: ComponentRef
    quantity: Decimal
    hourly: Amount = Amount()
    taxed: bool = False  # a VAT or another tax applies to this line

    @property
    def amount(self) -> Amount:
        return per_hour(self.hourly)

    @property
    def volume(self) -> Decimal:
        """In OCPI units: kWh, hours, or 1."""
        return self.quantity * self.scale / _HOUR

    @property
    def scale(self) -> Decimal:
        """Units of ``quantity`` per OCPI unit, times 3600: exact for every dimension."""
        if self.dimension is Dimension.ENERGY:
            return _HOUR / _KILO
        return _HOUR if self.dimension is Dimension.FLAT else Decimal(1)


def per_hour(hourly: Amount) -> Amount:
    return Amount(hourly.excl / _HOUR, hourly.incl / _HOUR)


@dataclass(frozen=True)
class Period:
    """Consecutive intervals of one phase under the same price components (a CDR ChargingPeriod)."""

    start: datetime
    phase: Phase
    seconds: Decimal
    energy_wh: Decimal
    components: tuple[tuple[Dimension, ComponentRef], ...]
    powers_w: tuple[Decimal, ...] = ()
    currents_a: tuple[Decimal, ...] = ()
    lines: tuple[Line, ...] = ()

    @property
    def amount(self) -> Amount:
        return per_hour(sum((line.hourly for line in self.lines), Amount()))


@dataclass(frozen=True)
class Cost:
    """The priced session: every period with its lines, the sub-totals and the total."""

    currency: str
    periods: tuple[Period, ...]
    fixed: Amount
    energy: Amount
    time: Amount
    parking: Amount
    reservation: Amount
    total: Amount
    type_of_cost: CostType
    # Whether any VAT or tax applies: without one there is no "including VAT" figure.
    taxed: bool
    energy_wh: Decimal
    time_s: Decimal
    parking_s: Decimal
    reservation_s: Decimal

    @property
    def charging_s(self) -> Decimal:
        return self.time_s - self.parking_s

    @property
    def wire_total(self) -> Decimal:
        """What OCPP's ``totalCost`` carries: including taxes where taxes apply."""
        return self.total.incl if self.taxed else self.total.excl


def price(tariff: Tariff, usage: Usage, zone: ZoneInfo, taxes: Sequence[TaxRate] = ()) -> Cost:
    """The cost of ``usage`` under ``tariff`` (local restrictions in ``zone``)."""
    with localcontext() as context:
        context.prec = PRECISION
        periods: list[Period] = []
        if usage.reserved_at is not None and usage.reserved_at < usage.started_at:
            kinds = (ReservationRestrictionType.RESERVATION,)
            periods += _reservation_periods(
                tariff, zone, usage.reserved_at, usage.started_at, kinds
            )
        periods += _session_periods(tariff, zone, usage)
        return _cost(tariff, periods, taxes, usage)


def price_expired_reservation(
    tariff: Tariff,
    zone: ZoneInfo,
    reserved_at: datetime,
    expired_at: datetime,
    taxes: Sequence[TaxRate] = (),
) -> Cost:
    """A reservation nobody charged on: RESERVATION_EXPIRES elements first, then RESERVATION
    ones (mod_tariffs ReservationRestrictionType note)."""
    with localcontext() as context:
        context.prec = PRECISION
        kinds = (
            ReservationRestrictionType.RESERVATION_EXPIRES,
            ReservationRestrictionType.RESERVATION,
        )
        periods = _reservation_periods(tariff, zone, reserved_at, expired_at, kinds)
        usage = Usage(started_at=expired_at, ended_at=expired_at, reserved_at=reserved_at)
        return _cost(tariff, periods, taxes, usage)


# --- intervals -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Interval:
    start: Decimal
    end: Decimal
    wh_from: Decimal
    wh_to: Decimal
    phase: Phase
    moment: Moment


def _session_periods(tariff: Tariff, zone: ZoneInfo, usage: Usage) -> list[Period]:
    curve, line = energy_curve(usage), timeline(usage)
    span = seconds_between(usage.started_at, usage.ended_at)
    cuts = {ZERO, span, *curve.offsets, *line.cuts, *duration_cuts(tariff)}
    cuts |= {
        seconds_between(usage.started_at, at)
        for at in calendar_cuts(tariff, zone, usage.started_at, usage.ended_at)
    }
    offsets = sorted(cut for cut in cuts if ZERO <= cut <= span)
    bounds = list(pairwise(offsets)) or [(ZERO, ZERO)]  # a session of no time still pays FLAT
    thresholds = sorted(energy_cuts(tariff))
    intervals = [
        _session_interval(usage.started_at, zone, line, start, end, wh_from, wh_to)
        for a, b in bounds
        for (start, wh_from), (end, wh_to) in pairwise(_energy_points(curve, a, b, thresholds))
    ]
    return _periods(tariff, usage.started_at, intervals, (None,))


def _energy_points(
    curve: EnergyCurve, start: Decimal, end: Decimal, thresholds: Sequence[Decimal]
) -> list[tuple[Decimal, Decimal]]:
    """(offset, delivered Wh) at ``start``, at each kWh threshold crossed inside, at ``end``."""
    low, high = curve.at(start), curve.at(end)
    points = [(start, low)]
    for threshold in thresholds:
        if low < threshold < high:
            crossing = start + (threshold - low) * (end - start) / (high - low)
            points.append((min(max(crossing.quantize(SECOND_QUANTUM), start), end), threshold))
    points.append((end, high))
    return points


def _session_interval(
    started_at: datetime,
    zone: ZoneInfo,
    line: Timeline,
    start: Decimal,
    end: Decimal,
    wh_from: Decimal,
    wh_to: Decimal,
) -> _Interval:
    charging = line.charging(start)
    if charging is None:
        charging = wh_to > wh_from  # no charging state reported: the register tells
    power = line.power_w(start)
    if power is None and end > start:
        power = (wh_to - wh_from) * _HOUR / (end - start)
    moment = Moment(
        local=_at(started_at, start).astimezone(zone),
        elapsed_s=start,
        delivered_wh=wh_from,
        power_w=power,
        current_a=line.current_a(start),
    )
    return _Interval(
        start, end, wh_from, wh_to, Phase.CHARGING if charging else Phase.PARKING, moment
    )


def _reservation_periods(
    tariff: Tariff,
    zone: ZoneInfo,
    reserved_at: datetime,
    until: datetime,
    kinds: tuple[ReservationRestrictionType, ...],
) -> list[Period]:
    span = seconds_between(reserved_at, until)
    cuts = {ZERO, span, *duration_cuts(tariff)}
    cuts |= {
        seconds_between(reserved_at, at) for at in calendar_cuts(tariff, zone, reserved_at, until)
    }
    offsets = sorted(cut for cut in cuts if ZERO <= cut <= span)
    intervals = [
        _Interval(
            a,
            b,
            ZERO,
            ZERO,
            Phase.RESERVATION,
            Moment(_at(reserved_at, a).astimezone(zone), a, ZERO, None, None),
        )
        for a, b in pairwise(offsets)
    ]
    return _periods(tariff, reserved_at, intervals, kinds)


def _at(origin: datetime, offset: Decimal) -> datetime:
    return origin + timedelta(microseconds=int(offset * 1_000_000))


# --- periods ---------------------------------------------------------------------------

# The dimensions each phase can bill.
_PHASE_DIMENSIONS = {
    Phase.RESERVATION: (Dimension.FLAT, Dimension.TIME),
    Phase.CHARGING: (Dimension.FLAT, Dimension.ENERGY, Dimension.TIME),
    Phase.PARKING: (Dimension.FLAT, Dimension.ENERGY, Dimension.PARKING_TIME),
}


def _active(
    tariff: Tariff, kinds: tuple[ReservationRestrictionType | None, ...], interval: _Interval
) -> tuple[tuple[Dimension, ComponentRef], ...]:
    """Per dimension the first component of a matching element, element kinds in order."""
    active: dict[Dimension, ComponentRef] = {}
    for kind in kinds:
        for index, element in enumerate(tariff.elements):
            if element.reservation is kind and matches(element.restrictions, interval.moment):
                for position, component in enumerate(element.price_components):
                    active.setdefault(component.type, ComponentRef(index, position))
    wanted = _PHASE_DIMENSIONS[interval.phase]
    return tuple((d, active[d]) for d in wanted if d in active)


def _periods(
    tariff: Tariff,
    origin: datetime,
    intervals: Iterable[_Interval],
    kinds: tuple[ReservationRestrictionType | None, ...],
) -> list[Period]:
    periods: list[Period] = []
    for interval in intervals:
        components = _active(tariff, kinds, interval)
        gauges = _gauges(interval)
        last = periods[-1] if periods else None
        if last is not None and (last.phase, last.components) == (interval.phase, components):
            periods[-1] = replace(
                last,
                seconds=last.seconds + interval.end - interval.start,
                energy_wh=last.energy_wh + interval.wh_to - interval.wh_from,
                powers_w=last.powers_w + gauges[0],
                currents_a=last.currents_a + gauges[1],
            )
        elif interval.end > interval.start or not periods:
            periods.append(
                Period(
                    start=_at(origin, interval.start),
                    phase=interval.phase,
                    seconds=interval.end - interval.start,
                    energy_wh=interval.wh_to - interval.wh_from,
                    components=components,
                    powers_w=gauges[0],
                    currents_a=gauges[1],
                )
            )
    return periods


def _gauges(interval: _Interval) -> tuple[tuple[Decimal, ...], tuple[Decimal, ...]]:
    moment = interval.moment
    return (
        () if moment.power_w is None else (moment.power_w,),
        () if moment.current_a is None else (moment.current_a,),
    )


# --- billing ---------------------------------------------------------------------------


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


def _apply_step_sizes(tariff: Tariff, periods: Sequence[Period], bill: _Bill) -> None:
    """Round each step group's total up at its last priced line (mod_cdrs step_size)."""
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
        step = Decimal(line.ref.of(tariff).step_size)
        rounded = (total / step).to_integral_value(rounding=ROUND_CEILING) * step
        bill.lines[index][position] = replace(line, quantity=line.quantity + rounded - total)


def _priced(tariff: Tariff, line: Line, taxes: Sequence[TaxRate]) -> Line:
    component = line.ref.of(tariff)
    excl = component.price * line.quantity * line.scale
    applying = component_taxes(component.vat, line.dimension, taxes)
    return replace(line, hourly=Amount(excl, excl * tax_factor(applying)), taxed=bool(applying))


def _cost(tariff: Tariff, periods: list[Period], taxes: Sequence[TaxRate], usage: Usage) -> Cost:
    bill = _lines(periods)
    _apply_step_sizes(tariff, periods, bill)
    priced = [
        replace(period, lines=tuple(_priced(tariff, line, taxes) for line in lines))
        for period, lines in zip(periods, bill.lines, strict=True)
    ]
    hourly = _subtotals(priced)
    sub = {name: per_hour(amount) for name, amount in hourly.items()}
    total, type_of_cost = _bounded(tariff, per_hour(sum(hourly.values(), Amount())))
    return Cost(
        currency=tariff.currency,
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
            sub[_category(period, line)] += line.hourly
    return sub


def _category(period: Period, line: Line) -> str:
    if period.phase is Phase.RESERVATION:
        return "reservation"
    return {
        Dimension.FLAT: "fixed",
        Dimension.ENERGY: "energy",
        Dimension.TIME: "time",
        Dimension.PARKING_TIME: "parking",
    }[line.dimension]


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
