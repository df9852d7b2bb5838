"""When a tariff element applies (mod_tariffs TariffRestrictions), and where that can change.

A restriction is checked at the start of an interval of the session in which
nothing it looks at changes: the engine cuts the session at every local time of
day a restriction names, at local midnights (day of week, dates), at the
durations and energies it names and at every reading. Times of day and dates
are local to the tariff's time zone (OCPI: the Location's ``time_zone``).
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from csms_billing.tariffs.ocpi import Tariff, TariffRestrictions

THOUSAND = Decimal(1000)


@dataclass(frozen=True, slots=True)
class Moment:
    """What restrictions look at, at the start of an interval."""

    local: datetime  # wall-clock time in the tariff's zone
    elapsed_s: Decimal  # since the session (or reservation) started
    delivered_wh: Decimal  # since the session started
    power_w: Decimal | None
    current_a: Decimal | None


def matches(restrictions: TariffRestrictions | None, moment: Moment) -> bool:
    """All set restrictions hold at ``moment`` (none set: always)."""
    if restrictions is None:
        return True
    return (
        _time_of_day(restrictions, moment.local.time())
        and _calendar(restrictions, moment.local.date())
        and _within(moment.delivered_wh / THOUSAND, restrictions.min_kwh, restrictions.max_kwh)
        and _within(moment.elapsed_s, restrictions.min_duration, restrictions.max_duration)
        and _gauge(moment.power_w, restrictions.min_power, restrictions.max_power, THOUSAND)
        and _gauge(moment.current_a, restrictions.min_current, restrictions.max_current, Decimal(1))
    )


def _time_of_day(restrictions: TariffRestrictions, now: time) -> bool:
    start = _clock(restrictions.start_time)
    end = _clock(restrictions.end_time)
    if start is not None and end is not None and end < start:
        return now >= start or now < end  # wraps around midnight
    return (start is None or now >= start) and (end is None or now < end)


def _calendar(restrictions: TariffRestrictions, day: date) -> bool:
    if restrictions.day_of_week and day.weekday() not in {
        d.weekday for d in restrictions.day_of_week
    }:
        return False
    if restrictions.start_date is not None and day < date.fromisoformat(restrictions.start_date):
        return False
    return restrictions.end_date is None or day < date.fromisoformat(restrictions.end_date)


def _within(value: Decimal, low: Decimal | int | None, high: Decimal | int | None) -> bool:
    """``low`` inclusive, ``high`` exclusive (mod_tariffs: min_kwh ... max_duration)."""
    return (low is None or value >= low) and (high is None or value < high)


def _gauge(value: Decimal | None, low: Decimal | None, high: Decimal | None, unit: Decimal) -> bool:
    if low is None and high is None:
        return True
    # A power or current restriction cannot hold where nothing measured it.
    return value is not None and _within(value / unit, low, high)


def _clock(text: str | None) -> time | None:
    return None if text is None else time.fromisoformat(text)


def calendar_cuts(
    tariff: Tariff, zone: ZoneInfo, start: datetime, end: datetime
) -> Iterator[datetime]:
    """Every instant in (start, end) where a time-of-day, weekday or date restriction may flip."""
    clocks = {time()} | set(_clocks(tariff))
    first = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    day = first
    while day <= last:
        for clock in clocks:
            instant = datetime.combine(day, clock, zone).astimezone(UTC)
            if start < instant < end:
                yield instant
        day += timedelta(days=1)


def _clocks(tariff: Tariff) -> Iterable[time]:
    for element in tariff.elements:
        if element.restrictions is not None:
            for text in (element.restrictions.start_time, element.restrictions.end_time):
                if (clock := _clock(text)) is not None:
                    yield clock


def duration_cuts(tariff: Tariff) -> set[Decimal]:
    """Elapsed seconds where a min/max_duration restriction flips."""
    return {
        Decimal(value)
        for element in tariff.elements
        if element.restrictions is not None
        for value in (element.restrictions.min_duration, element.restrictions.max_duration)
        if value is not None
    }


def energy_cuts(tariff: Tariff) -> set[Decimal]:
    """Delivered Wh where a min/max_kwh restriction flips."""
    return {
        value * THOUSAND
        for element in tariff.elements
        if element.restrictions is not None
        for value in (element.restrictions.min_kwh, element.restrictions.max_kwh)
        if value is not None
    }
