"""Maintenance windows: daily local hours (in a site's time zone) when updates may start.

Pure time arithmetic, no I/O. A window from 22:00 to 04:00 crosses midnight: it is open
from 22:00 on one of its days until 04:00 the next morning.
"""

from datetime import datetime, time, timedelta
from enum import IntEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

UTC_ZONE = "UTC"


class Weekday(IntEnum):
    MON = 0
    TUE = 1
    WED = 2
    THU = 3
    FRI = 4
    SAT = 5
    SUN = 6


class Window(BaseModel):
    """Daily hours in which updates may start; downloads already under way may finish."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"start": "01:00", "end": "05:00"}]}
    )

    start: time = Field(examples=["01:00"])
    end: time = Field(examples=["05:00"])
    timezone: str | None = Field(
        default=None,
        examples=["Europe/Berlin"],
        description="IANA time zone; by default each station's site time zone (UTC without one)",
    )
    days: list[Weekday] | None = Field(
        default=None, description="days the window opens (0 = Monday); every day by default"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value)
        return value


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; ValueError if there is none of that name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def _opens_on(window: Window, day: int) -> bool:
    return window.days is None or day in window.days


def is_open(window: Window, zone_name: str, at: datetime) -> bool:
    """Whether an update may start at ``at`` (aware) at a station in ``zone_name``."""
    if window.start == window.end:
        return False
    local = at.astimezone(zone(zone_name))
    now, today = local.time().replace(tzinfo=None), local.weekday()
    if window.start < window.end:
        return _opens_on(window, today) and window.start <= now < window.end
    # Across midnight: the evening part belongs to today, the morning part to yesterday.
    yesterday = (today - 1) % 7
    return (_opens_on(window, today) and now >= window.start) or (
        _opens_on(window, yesterday) and now < window.end
    )


def next_opening(
    window: Window, zone_name: str, after: datetime, until: datetime | None = None
) -> datetime | None:
    """The first moment at or after ``after`` (and before ``until``) the window is open."""
    if window.start == window.end or window.days == []:
        return None
    if is_open(window, zone_name, after):
        return after if until is None or after < until else None
    tz = zone(zone_name)
    local_day = after.astimezone(tz).date()
    for offset in range(8):
        day = local_day + timedelta(days=offset)
        if not _opens_on(window, day.weekday()):
            continue
        opening = datetime.combine(day, window.start, tzinfo=tz)
        if opening >= after:
            return opening if until is None or opening < until else None
    return None
