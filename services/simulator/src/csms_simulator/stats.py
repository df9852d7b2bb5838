"""Counters of a run, shared by every station of the fleet (one event loop: no locks)."""

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

_GROWTH = 1.02  # bucket width: latencies are kept to about 2 %
_LOG_GROWTH = math.log(_GROWTH)
_FLOOR_MS = 0.01


class Histogram:
    """A sparse log-bucketed histogram (HDR-like) of latencies in milliseconds."""

    def __init__(self) -> None:
        self.buckets: Counter[int] = Counter()
        self.count = 0
        self.max_ms = 0.0

    def record(self, milliseconds: float) -> None:
        value = max(milliseconds, _FLOOR_MS)
        self.buckets[int(math.log(value / _FLOOR_MS) / _LOG_GROWTH)] += 1
        self.count += 1
        self.max_ms = max(self.max_ms, milliseconds)

    def percentile(self, fraction: float) -> float:
        if not self.count:
            return 0.0
        wanted = max(1, math.ceil(fraction * self.count))
        seen = 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= wanted:
                # The bucket's upper edge, never above the largest value seen.
                return min(_FLOOR_MS * _GROWTH ** (bucket + 1), self.max_ms)
        return self.max_ms

    def summary(self) -> dict[str, float]:
        return {
            "count": self.count,
            "p50_ms": round(self.percentile(0.50), 3),
            "p90_ms": round(self.percentile(0.90), 3),
            "p99_ms": round(self.percentile(0.99), 3),
            "max_ms": round(self.max_ms, 3),
        }


@dataclass
class ActionStats:
    sent: int = 0
    answered: int = 0
    call_errors: int = 0
    timeouts: int = 0
    latency: Histogram = field(default_factory=Histogram)

    def summary(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "answered": self.answered,
            "call_errors": self.call_errors,
            "timeouts": self.timeouts,
            "latency": self.latency.summary(),
        }


@dataclass
class FleetStats:
    """Everything a run counts; the report and the progress line read it."""

    connected: int = 0
    booted: int = 0
    active_sessions: int = 0
    connect_attempts: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    sessions_started: int = 0
    sessions_ended: int = 0
    energy_wh: float = 0.0
    limit_violations: int = 0
    max_power_w: float = 0.0
    frames_in: int = 0
    frames_out: int = 0
    protocol_errors: int = 0  # frames from the CSMS we could not accept
    invalid_outgoing: int = 0  # our own frames that failed schema validation (flag)
    replayed: int = 0  # queued messages sent after a reconnect
    dropped_offline: int = 0
    outgoing: dict[str, ActionStats] = field(default_factory=lambda: defaultdict(ActionStats))
    incoming: Counter[str] = field(default_factory=Counter)  # CSMS-initiated CALLs
    boot_status: Counter[str] = field(default_factory=Counter)
    authorize_status: Counter[str] = field(default_factory=Counter)
    call_error_codes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # anything else that went wrong

    def sent(self, action: str) -> None:
        self.outgoing[action].sent += 1
        self.frames_out += 1

    def answered(self, action: str, latency_s: float) -> None:
        stats = self.outgoing[action]
        stats.answered += 1
        stats.latency.record(latency_s * 1000.0)

    def call_error(self, action: str, code: str) -> None:
        self.outgoing[action].call_errors += 1
        self.call_error_codes[f"{action}:{code}"] += 1

    def timeout(self, action: str) -> None:
        self.outgoing[action].timeouts += 1

    def power(self, power_w: float, limit_w: float | None) -> None:
        self.max_power_w = max(self.max_power_w, power_w)
        if limit_w is not None and power_w > limit_w + 1e-6:
            self.limit_violations += 1

    @property
    def error_count(self) -> int:
        return (
            sum(stats.call_errors + stats.timeouts for stats in self.outgoing.values())
            + self.protocol_errors
            + self.invalid_outgoing
            + self.connect_failures
            + sum(self.errors.values())
        )
