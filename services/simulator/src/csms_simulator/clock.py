"""Simulated time: the run's seconds scaled by the acceleration factor, and per-station timers.

All stations share one clock; each station keeps its own small heap of timers that its
connection task runs between two frames, so a station costs one task, not one per timer.
"""

import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Simulated seconds since the start of the run."""

    def real_delay(self, sim_deadline: float) -> float:
        """Real seconds to wait until ``sim_deadline``."""

    def wall(self, sim_time: float | None = None) -> datetime:
        """The simulated wall-clock time (UTC) at ``sim_time`` (default now)."""

    def to_sim(self, moment: datetime) -> float:
        """A wall-clock time as simulated seconds since the start of the run."""


class ScaledClock:
    """Real time, ``speed`` times faster."""

    def __init__(self, speed: float = 1.0) -> None:
        self.speed = speed
        self._start = time.monotonic()
        self._start_wall = datetime.now(UTC)

    def now(self) -> float:
        return (time.monotonic() - self._start) * self.speed

    def real_delay(self, sim_deadline: float) -> float:
        return max(0.0, (sim_deadline - self.now()) / self.speed)

    def wall(self, sim_time: float | None = None) -> datetime:
        return self._start_wall + timedelta(seconds=self.now() if sim_time is None else sim_time)

    def to_sim(self, moment: datetime) -> float:
        return (moment - self._start_wall).total_seconds()


class ManualClock:
    """A clock that only moves when told to (tests)."""

    def __init__(self, start_wall: datetime | None = None) -> None:
        self.time = 0.0
        self._start_wall = start_wall or datetime(2025, 1, 1, tzinfo=UTC)

    def now(self) -> float:
        return self.time

    def real_delay(self, sim_deadline: float) -> float:
        return max(0.0, sim_deadline - self.time)

    def wall(self, sim_time: float | None = None) -> datetime:
        return self._start_wall + timedelta(seconds=self.time if sim_time is None else sim_time)

    def to_sim(self, moment: datetime) -> float:
        return (moment - self._start_wall).total_seconds()


def ocpp_time(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds and Z, as OCPP writes date-times."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(order=True, slots=True)
class Timer:
    deadline: float
    seq: int
    callback: Callable[[], object] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class Timers:
    """A station's timers: a heap run by its connection task."""

    _seq = itertools.count()

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._heap: list[Timer] = []

    def after(self, delay_s: float, callback: Callable[[], object]) -> Timer:
        timer = Timer(self.clock.now() + max(0.0, delay_s), next(self._seq), callback)
        heapq.heappush(self._heap, timer)
        return timer

    def next_deadline(self) -> float | None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].deadline if self._heap else None

    def run_due(self) -> int:
        """Run every timer whose deadline has passed; how many ran."""
        ran = 0
        while (deadline := self.next_deadline()) is not None and deadline <= self.clock.now():
            heapq.heappop(self._heap).callback()
            ran += 1
        return ran

    def __len__(self) -> int:
        return sum(not timer.cancelled for timer in self._heap)


def run_until(clock: ManualClock, timers: Timers, sim_time: float) -> None:
    """Move a manual clock to ``sim_time``, running each timer at its own deadline (tests)."""
    while (deadline := timers.next_deadline()) is not None and deadline <= sim_time:
        clock.time = max(clock.time, deadline)
        timers.run_due()
    clock.time = max(clock.time, sim_time)
