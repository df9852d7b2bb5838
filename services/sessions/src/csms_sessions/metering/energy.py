"""The energy a session delivered, from its register readings.

A register (Energy.Active.Import.Register) only counts up, so energy is the
last reading minus the first. Real meters are not that tidy: samples arrive
out of order (offline replay), the meter may reset or be replaced mid-session
(a reading lower than the one before), and broken meters report negative
values. Readings are sorted by time; each reset starts a new segment and the
segments add up; negative readings never count.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from csms_sessions.metering.normalize import ENERGY_REGISTER, Sample

# Where a register reading measures what the EV got: the outlet (the default location).
_OUTLET_LOCATIONS = frozenset({None, "Outlet"})


@dataclass(frozen=True, slots=True, order=True)
class Reading:
    timestamp: datetime
    wh: float


def is_session_register(sample: Sample) -> bool:
    """A reading of the outlet's total import register (not one phase, not the grid side)."""
    return (
        sample.measurand == ENERGY_REGISTER
        and sample.phase is None
        and sample.location in _OUTLET_LOCATIONS
        and sample.unit == "Wh"
        and sample.value is not None
    )


def delivered_wh(readings: Iterable[Reading]) -> float | None:
    """Energy over the readings in Wh (None without any); negative readings are skipped."""
    ordered = sorted(reading for reading in readings if reading.wh >= 0)
    if not ordered:
        return None
    total, segment_start, previous = 0.0, ordered[0].wh, ordered[0].wh
    for reading in ordered[1:]:
        if reading.wh < previous:  # the meter reset: close the segment, open a new one
            total += previous - segment_start
            segment_start = reading.wh
        previous = reading.wh
    return total + previous - segment_start


@dataclass(frozen=True, slots=True)
class SessionEnergy:
    """A session's energy and, where the station's own readings disagree, why (reason, detail)."""

    wh: float | None
    disagreements: tuple[tuple[str, str], ...] = ()


def session_energy(
    readings: Iterable[Reading],
    *,
    meter_start: float | None,
    meter_stop: float | None,
    started_at: datetime | None,
    ended_at: datetime | None,
) -> SessionEnergy:
    """The energy within the session's own start and end (docs/sessions.md).

    ``started_at`` None: the start is not known yet (no lower bound). With both a start
    and a stop reading the energy is their difference, whatever samples in between say
    (a disagreement is reported, not resolved by picking a sample); a stop below the start
    (a meter reset or replacement) falls back to adding the segments of every reading.
    """
    inside = sorted(
        reading
        for reading in readings
        if reading.wh >= 0
        and (started_at is None or reading.timestamp >= started_at)
        and (ended_at is None or reading.timestamp <= ended_at)
    )
    start = _reading(started_at, meter_start)
    stop = _reading(ended_at, meter_stop)
    if start and stop and stop[0].wh >= start[0].wh:
        return SessionEnergy(stop[0].wh - start[0].wh, _outside(inside, start[0], stop[0]))
    wh = delivered_wh([*start, *inside, *stop])
    if start and stop:
        detail = f"stop reading {stop[0].wh:g} Wh is below the start reading {start[0].wh:g} Wh"
        return SessionEnergy(wh, (("stop_below_start", detail),))
    ordered = sorted([*start, *inside, *stop])
    drops = [(a, b) for a, b in pairwise(ordered) if b.wh < a.wh]
    if ended_at is not None and drops:
        a, b = drops[0]
        detail = f"register fell from {a.wh:g} Wh to {b.wh:g} Wh at {b.timestamp.isoformat()}"
        return SessionEnergy(wh, (("register_decreased", detail),))
    return SessionEnergy(wh)


def _reading(at: datetime | None, wh: float | None) -> list[Reading]:
    """The start or stop reading, if the station gave one (a negative one never counts)."""
    return [Reading(at, wh)] if at is not None and wh is not None and wh >= 0 else []


def _outside(inside: list[Reading], start: Reading, stop: Reading) -> tuple[tuple[str, str], ...]:
    """The samples inside the session that its start and stop readings cannot contain."""
    outside = [r for r in inside if not start.wh <= r.wh <= stop.wh]
    falling = [b for a, b in pairwise(inside) if b.wh < a.wh]
    if not outside and not falling:
        return ()
    odd = (outside or falling)[0]
    detail = (
        f"a sample of {odd.wh:g} Wh at {odd.timestamp.isoformat()} does not fit between the "
        f"start reading {start.wh:g} Wh and the stop reading {stop.wh:g} Wh"
    )
    return (("meter_readings_disagree", detail),)
