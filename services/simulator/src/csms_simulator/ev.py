"""Electric vehicles: battery, state of charge, charge curve, arrival and departure.

The power an EV draws is ``min(its charge curve at this SoC, the EVSE rating, the
charging limit in force)``: the curve is flat up to ``TAPER_START_SOC`` and falls
linearly to a trickle at 100 %, as lithium-ion packs do in their constant-voltage phase.
"""

import random
from dataclasses import dataclass

TAPER_START_SOC = 0.8
TRICKLE_FRACTION = 0.05  # of peak power, just before full


@dataclass(frozen=True, slots=True)
class EvModel:
    name: str
    battery_kwh: float
    max_ac_kw: float
    max_dc_kw: float


# A few typical cars (usable capacity, on-board charger, peak DC).
CATALOGUE: tuple[EvModel, ...] = (
    EvModel("compact", 40.0, 7.4, 50.0),
    EvModel("hatchback", 58.0, 11.0, 120.0),
    EvModel("sedan", 75.0, 11.0, 170.0),
    EvModel("suv", 95.0, 22.0, 150.0),
    EvModel("van", 68.0, 11.0, 80.0),
)


@dataclass(slots=True)
class Ev:
    model: EvModel
    soc: float  # 0..1
    arrival_s: float
    departure_s: float
    target_soc: float = 1.0

    @property
    def full(self) -> bool:
        return self.soc >= self.target_soc

    def curve_w(self, dc: bool) -> float:
        """What the EV accepts at its current state of charge, in W."""
        peak_w = (self.model.max_dc_kw if dc else self.model.max_ac_kw) * 1000.0
        return charge_curve_w(peak_w, self.soc) if not self.full else 0.0

    def charge(self, power_w: float, seconds: float) -> float:
        """Charge at ``power_w`` for ``seconds``; the energy actually stored, in Wh."""
        room_wh = max(0.0, self.target_soc - self.soc) * self.model.battery_kwh * 1000.0
        energy_wh = min(max(0.0, power_w) * seconds / 3600.0, room_wh)
        self.soc = min(1.0, self.soc + energy_wh / (self.model.battery_kwh * 1000.0))
        return energy_wh


def charge_curve_w(peak_w: float, soc: float) -> float:
    if soc <= TAPER_START_SOC:
        return peak_w
    remaining = max(0.0, 1.0 - soc) / (1.0 - TAPER_START_SOC)
    return peak_w * (TRICKLE_FRACTION + (1.0 - TRICKLE_FRACTION) * remaining)


def drawn_power_w(ev: Ev, evse_max_w: float, limit_w: float | None, *, dc: bool = False) -> float:
    """The power the EV draws: never above the EVSE rating nor the limit in force."""
    power = min(ev.curve_w(dc), evse_max_w)
    if limit_w is not None:
        power = min(power, limit_w)
    return max(0.0, power)


def sample_ev(rng: random.Random, now_s: float) -> Ev:
    """An EV arriving now: a random car, 10-60 % full, staying 30 min to 10 h."""
    model = rng.choice(CATALOGUE)
    dwell_s = min(10 * 3600.0, max(1800.0, rng.lognormvariate(9.0, 0.6)))  # median ~2.25 h
    return Ev(
        model=model,
        soc=rng.uniform(0.1, 0.6),
        arrival_s=now_s,
        departure_s=now_s + dwell_s,
        target_soc=rng.choice((0.8, 0.9, 1.0)),
    )


def next_arrival_delay(rng: random.Random, mean_idle_s: float) -> float:
    """How long an EVSE stays free before the next EV plugs in (Poisson arrivals)."""
    return rng.expovariate(1.0 / mean_idle_s) if mean_idle_s > 0 else 0.0
