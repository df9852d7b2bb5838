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
- A tariff changed during the session (OCPP 2.1 ChangeTransactionTariff, or the
  operator's change on REST) prices the usage from the change on: ``price_parts``.
  Restrictions keep counting from the session's start (duration, kWh); FLAT is
  still billed once per session (a later tariff's start fee only if none was yet);
  step sizes round the session's volume of a dimension once, at the last priced
  line (of whichever part); the min/max price of the tariff in force at the end
  bounds the total.

Arithmetic is ``Decimal`` at 40 digits; nothing is rounded here (``money`` does
that once, on the way out).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from itertools import pairwise
from zoneinfo import ZoneInfo

from csms_billing.pricing.bill import Priced, bill
from csms_billing.pricing.cost import ComponentRef, Cost, Period, Phase
from csms_billing.pricing.restrictions import (
    Moment,
    calendar_cuts,
    duration_cuts,
    energy_cuts,
    matches,
)
from csms_billing.pricing.taxes import TaxRate
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
    ReservationRestrictionType,
    Tariff,
    TariffDimensionType,
)

Dimension = TariffDimensionType
PRECISION = 40
_HOUR = Decimal(3600)
_KILO = Decimal(1000)


def price(tariff: Tariff, usage: Usage, zone: ZoneInfo, taxes: Sequence[TaxRate] = ()) -> Cost:
    """The cost of ``usage`` under ``tariff`` (local restrictions in ``zone``)."""
    return price_parts([TariffPart(usage.started_at, tariff, zone, taxes)], usage)


@dataclass(frozen=True)
class TariffPart:
    """A tariff pricing a session from ``since`` (the first part: from the start)."""

    since: datetime
    tariff: Tariff
    zone: ZoneInfo
    taxes: Sequence[TaxRate] = ()


def price_parts(parts: Sequence[TariffPart], usage: Usage) -> Cost:
    """The cost of ``usage`` under the tariffs in force one after the other (``parts`` in
    the order of their ``since``, all of one currency)."""
    if len({part.tariff.currency for part in parts}) != 1:
        raise ValueError("a session is priced by tariffs of one currency")
    with localcontext() as context:
        context.prec = PRECISION
        span = seconds_between(usage.started_at, usage.ended_at)
        offsets = [ZERO] + [
            min(max(seconds_between(usage.started_at, part.since), ZERO), span)
            for part in parts[1:]
        ]
        first = parts[0]
        periods: list[Period] = []
        if usage.reserved_at is not None and usage.reserved_at < usage.started_at:
            kinds = (ReservationRestrictionType.RESERVATION,)
            periods += _reservation_periods(
                first.tariff, first.zone, usage.reserved_at, usage.started_at, kinds
            )
        windows = [
            (start, offsets[index + 1] if index + 1 < len(parts) else span)
            for index, start in enumerate(offsets)
        ]
        in_force: list[TariffPart] = []
        for index, (part, (start, end)) in enumerate(zip(parts, windows, strict=True)):
            later = any(low < high for low, high in windows[index + 1 :])
            if end <= start and (index > 0 or later):
                # Changed again at once, or after the end: it priced nothing (and a change
                # at the very start leaves the session to the new tariff, FLAT included).
                continue
            window = (start, max(start, end))
            found = _session_periods(part.tariff, part.zone, usage, window)
            periods += [replace(period, part=len(in_force)) for period in found]
            in_force.append(part)
        return bill([Priced(p.tariff, p.taxes) for p in in_force], periods, usage)


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
        return bill([Priced(tariff, taxes)], periods, usage)


# --- intervals -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Interval:
    start: Decimal
    end: Decimal
    wh_from: Decimal
    wh_to: Decimal
    phase: Phase
    moment: Moment
    # What was measured at the start (the moment's power may be the interval's average).
    measured_power_w: Decimal | None = None


def _session_periods(
    tariff: Tariff,
    zone: ZoneInfo,
    usage: Usage,
    window: tuple[Decimal, Decimal] | None = None,
) -> list[Period]:
    """The session's periods (those in ``window``, seconds from the start, if given)."""
    curve, line = energy_curve(usage), timeline(usage)
    span = seconds_between(usage.started_at, usage.ended_at)
    low, high = window or (ZERO, span)
    cuts = {low, high, *curve.offsets, *line.cuts, *duration_cuts(tariff)}
    cuts |= {
        seconds_between(usage.started_at, at)
        for at in calendar_cuts(tariff, zone, usage.started_at, usage.ended_at)
    }
    offsets = sorted(cut for cut in cuts if low <= cut <= high)
    bounds = list(pairwise(offsets)) or [(low, low)]  # a session of no time still pays FLAT
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
    if power is None and end > start:  # nothing measured: the average over the interval
        power = (wh_to - wh_from) * _HOUR / (end - start)
    moment = Moment(
        local=_at(started_at, start).astimezone(zone),
        elapsed_s=start,
        delivered_wh=wh_from,
        power_w=power,
        current_a=line.current_a(start),
    )
    phase = Phase.CHARGING if charging else Phase.PARKING
    return _Interval(start, end, wh_from, wh_to, phase, moment, line.power_w(start))


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


def active_components(
    tariff: Tariff,
    moment: Moment,
    kinds: tuple[ReservationRestrictionType | None, ...] = (None,),
) -> dict[Dimension, ComponentRef]:
    """Per dimension the first component of an element matching at ``moment``, the elements
    of each kind in ``kinds`` in order (mod_tariffs: the first element per dimension)."""
    active: dict[Dimension, ComponentRef] = {}
    for kind in kinds:
        for index, element in enumerate(tariff.elements):
            if element.reservation is kind and matches(element.restrictions, moment):
                for position, component in enumerate(element.price_components):
                    active.setdefault(component.type, ComponentRef(index, position))
    return active


def _active(
    tariff: Tariff, kinds: tuple[ReservationRestrictionType | None, ...], interval: _Interval
) -> tuple[tuple[Dimension, ComponentRef], ...]:
    active = active_components(tariff, interval.moment, kinds)
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
                    tariff_id=tariff.id,
                )
            )
    return periods


def _gauges(interval: _Interval) -> tuple[tuple[Decimal, ...], tuple[Decimal, ...]]:
    power, current = interval.measured_power_w, interval.moment.current_a
    return (() if power is None else (power,), () if current is None else (current,))
