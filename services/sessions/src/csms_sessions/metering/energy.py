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
