"""Going offline and coming back: outages, and reconnecting with back-off.

While a station is offline its timers keep running (EVs keep charging); transaction
messages wait in its protocol queue and are replayed in order once it booted again
(1.6 §4.7 / 2.0.1 E12). Reconnection waits grow exponentially with jitter, so that a
fleet cut off at once does not come back all at the same instant.
"""

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from csms_simulator.station import Station

OUTAGE_MIN_S = 60.0
OUTAGE_MAX_S = 900.0


class Backoff:
    """Exponential back-off with jitter, in real seconds."""

    def __init__(self, base: float, cap: float, rng: random.Random) -> None:
        self.base, self.cap, self.rng = base, cap, rng
        self.attempt = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.base * 2.0**self.attempt)
        self.attempt += 1
        return delay * self.rng.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.attempt = 0


def plan_outages(station: "Station") -> None:
    """Put the run's scheduled outages and random ones on the station's timers."""
    config, rng = station.config, station.rng
    for outage in config.outages:
        if rng.random() < outage.fraction:
            station.timers.after(outage.start_s, _outage(station, outage.duration_s))
    if config.offline_probability > 0:
        _next_random_outage(station)


def _outage(station: "Station", duration_s: float) -> Callable[[], None]:
    return lambda: go_offline(station, duration_s)


def _next_random_outage(station: "Station") -> None:
    rate_per_s = station.config.offline_probability / 3600.0
    delay = station.rng.expovariate(rate_per_s)

    def fire() -> None:
        go_offline(station, station.rng.uniform(OUTAGE_MIN_S, OUTAGE_MAX_S))
        _next_random_outage(station)

    station.timers.after(delay, fire)


def go_offline(station: "Station", duration_s: float) -> None:
    """Drop the connection (if any) and stay away for ``duration_s`` simulated seconds."""
    if station.protocol.connected:
        station.request_disconnect("outage", duration_s)
