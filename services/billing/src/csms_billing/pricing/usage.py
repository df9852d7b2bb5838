"""What a session used, as the cost engine reads it: its timeline and register readings.

Real stations send readings duplicated, out of order and late, and meters reset
mid-session; the engine must give the same cost whatever order the same facts
came in. So readings are a set: sorted by time, de-duplicated, those outside the
session dropped; a reading below its predecessor starts a new register segment (a reset
or a replaced meter) and the energy in between is not counted (nobody measured
it); negative readings are skipped. Delivered energy between two readings is
taken to flow evenly (linear interpolation), which is how OCPI CDRs place a
price change between two readings (mod_cdrs ChargingPeriod).
"""

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

ZERO = Decimal(0)
# What the engine estimates between readings (the energy at a price change, the instant an
# energy threshold is crossed) it estimates to the whole Wh and the whole second: the
# resolution OCPI bills at (step_size 1 = 1 Wh, 1 s) and CDR periods start at. Estimates
# then add up exactly, and the step-size rounding of whole readings has nothing to round.
WH_QUANTUM = Decimal(1)
SECOND_QUANTUM = Decimal(1)
_T = TypeVar("_T")


@dataclass(frozen=True, order=True, slots=True)
class RegisterReading:
    """The outlet's Energy.Active.Import.Register in Wh at ``at``."""

    at: datetime
    wh: Decimal


@dataclass(frozen=True, order=True, slots=True)
class ChargingState:
    """From ``at`` on the EV is charging (draws or requests power) or not (parking)."""

    at: datetime
    charging: bool


@dataclass(frozen=True, order=True, slots=True)
class Gauge:
    """An instantaneous reading: active power in W and/or current summed over phases in A."""

    at: datetime
    power_w: Decimal | None = None
    current_a: Decimal | None = None


@dataclass(frozen=True)
class Usage:
    """A session as priced: ``ended_at`` is the end, or now for a running session.

    Without ``states`` the EV counts as charging while the register rises and as
    parking while it stands still (OCPP 1.6 reports no charging state per transaction).
    """

    started_at: datetime
    ended_at: datetime
    readings: Sequence[RegisterReading] = ()
    states: Sequence[ChargingState] = ()
    gauges: Sequence[Gauge] = ()
    # A reservation that this session used, and when it was made (its cost runs until start).
    reserved_at: datetime | None = None


@dataclass(frozen=True)
class EnergyCurve:
    """Delivered energy since the start (Wh) as a piecewise linear function of time.

    ``offsets`` are seconds since the session start, strictly increasing; ``delivered``
    the energy delivered by then.
    """

    offsets: tuple[Decimal, ...]
    delivered: tuple[Decimal, ...]

    def at(self, offset: Decimal) -> Decimal:
        if not self.offsets or offset <= self.offsets[0]:
            return ZERO
        index = bisect_right(self.offsets, offset)
        if index >= len(self.offsets):
            return self.delivered[-1]
        left, right = self.offsets[index - 1], self.offsets[index]
        low, high = self.delivered[index - 1], self.delivered[index]
        return (low + (high - low) * (offset - left) / (right - left)).quantize(WH_QUANTUM)

    @property
    def total(self) -> Decimal:
        return self.delivered[-1] if self.delivered else ZERO


def seconds_between(start: datetime, end: datetime) -> Decimal:
    delta = end - start
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return Decimal(micros) / 1_000_000


def energy_curve(usage: Usage) -> EnergyCurve:
    """The delivered-energy curve of ``usage``'s readings (see the module docstring)."""
    span = seconds_between(usage.started_at, usage.ended_at)
    # Readings outside the session are not the session's (a late sample after its end, a
    # sample of the session before): its energy is what was measured within it.
    points = sorted(
        {
            (offset, r.wh)
            for r in usage.readings
            if r.wh >= 0 and ZERO <= (offset := seconds_between(usage.started_at, r.at)) <= span
        }
    )
    offsets: list[Decimal] = []
    delivered: list[Decimal] = []
    previous_wh: Decimal | None = None
    for offset, wh in points:
        gained = ZERO if previous_wh is None or wh < previous_wh else wh - previous_wh
        total = (delivered[-1] if delivered else ZERO) + gained
        previous_wh = wh
        if offsets and offsets[-1] == offset:
            delivered[-1] = total  # two readings at one instant: the later value holds
            continue
        offsets.append(offset)
        delivered.append(total)
    return EnergyCurve(tuple(offsets), tuple(delivered))


@dataclass(frozen=True)
class Timeline:
    """Charging states and gauges by offset (seconds since the start), looked up by time."""

    state_offsets: tuple[Decimal, ...] = ()
    states: tuple[bool, ...] = ()
    power_offsets: tuple[Decimal, ...] = ()
    powers: tuple[Decimal, ...] = ()
    current_offsets: tuple[Decimal, ...] = ()
    currents: tuple[Decimal, ...] = ()
    cuts: frozenset[Decimal] = field(default_factory=frozenset)

    def charging(self, offset: Decimal) -> bool | None:
        return _last_at(self.state_offsets, self.states, offset)

    def power_w(self, offset: Decimal) -> Decimal | None:
        return _last_at(self.power_offsets, self.powers, offset)

    def current_a(self, offset: Decimal) -> Decimal | None:
        return _last_at(self.current_offsets, self.currents, offset)


def _last_at(offsets: tuple[Decimal, ...], values: tuple[_T, ...], offset: Decimal) -> _T | None:
    index = bisect_right(offsets, offset)
    return values[index - 1] if index else None


def timeline(usage: Usage) -> Timeline:
    """States and gauges of ``usage`` by offset; a later fact at one instant wins."""
    span = seconds_between(usage.started_at, usage.ended_at)

    def offset(at: datetime) -> Decimal:
        return min(max(seconds_between(usage.started_at, at), ZERO), span)

    states = dict(sorted((offset(s.at), s.charging) for s in sorted(usage.states)))
    powers = {offset(g.at): g.power_w for g in sorted(usage.gauges) if g.power_w is not None}
    currents = {offset(g.at): g.current_a for g in sorted(usage.gauges) if g.current_a is not None}
    return Timeline(
        state_offsets=tuple(states),
        states=tuple(states.values()),
        power_offsets=tuple(sorted(powers)),
        powers=tuple(powers[o] for o in sorted(powers)),
        current_offsets=tuple(sorted(currents)),
        currents=tuple(currents[o] for o in sorted(currents)),
        cuts=frozenset({*states, *powers, *currents}),
    )
