"""The failsafe cache: each site's per-EVSE failsafe as the last plan computed it.

A station applies its TxDefaultProfile (OCPP 2.0.1 K01) when it loses us, so a station
that connects must get it at once, without a plan of its own for every connection. The
value stays fresh for ``FAILSAFE_TTL_S`` and while the site's topology (stations,
ratings, limits set over REST) is what it was computed in: a change bumps the site's
generation and the next caller plans again.
"""

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

FAILSAFE_TTL_S = 2.0


@dataclass(frozen=True, slots=True)
class _Known:
    failsafe_a: float
    at: float  # the clock's time it was computed at
    generation: int  # the site's topology generation it was computed in


class FailsafeCache:
    def __init__(
        self, ttl_s: float = FAILSAFE_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._known: dict[str, _Known] = {}
        self._generation: defaultdict[str, int] = defaultdict(int)
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def generation(self, site_id: str) -> int:
        """The site's topology generation now (a plan records the one it started in)."""
        return self._generation[site_id]

    def topology_changed(self, site_id: str) -> None:
        """A value computed before this is not used again."""
        self._generation[site_id] += 1

    def store(self, site_id: str, failsafe_a: float, generation: int) -> None:
        self._known[site_id] = _Known(failsafe_a, self._clock(), generation)

    def fresh(self, site_id: str) -> float | None:
        """The site's failsafe if it is fresh: younger than the TTL, same topology."""
        known = self._known.get(site_id)
        if known is None or self._clock() - known.at > self._ttl_s:
            return None
        return known.failsafe_a if known.generation == self._generation[site_id] else None

    def latest(self, site_id: str) -> float | None:
        """The last value computed, fresh or not."""
        known = self._known.get(site_id)
        return None if known is None else known.failsafe_a

    def computing(self, site_id: str) -> asyncio.Lock:
        """Held while a caller computes the site's value (the others wait for it)."""
        return self._locks[site_id]
