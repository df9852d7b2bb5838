"""The outcome of a run: counts, errors and latencies, as JSON."""

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from csms_simulator.config import SimulationConfig
from csms_simulator.stats import FleetStats


@dataclass(frozen=True, slots=True)
class RunReport:
    url: str
    stations: int
    versions: dict[str, int]
    duration_s: float
    simulated_s: float
    connected: int
    booted: int
    connect_attempts: int
    connect_failures: int
    disconnects: int
    sessions_started: int
    sessions_ended: int
    active_sessions: int
    energy_kwh: float
    max_power_w: float
    limit_violations: int
    frames_in: int
    frames_out: int
    protocol_errors: int
    invalid_outgoing: int
    replayed: int
    dropped_offline: int
    errors: int
    boot_status: dict[str, int]
    authorize_status: dict[str, int]
    call_errors: dict[str, int]
    error_kinds: dict[str, int]
    incoming: dict[str, int]
    outgoing: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> str:
        return orjson.dumps(
            asdict(self), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
        ).decode()

    def write(self, path: Path) -> None:
        path.write_text(self.to_json() + "\n", encoding="utf-8")

    def answered(self, action: str) -> int:
        return int(self.outgoing.get(action, {}).get("answered", 0))


def build_report(
    config: SimulationConfig,
    stats: FleetStats,
    versions: Counter[str],
    duration_s: float,
    simulated_s: float,
) -> RunReport:
    return RunReport(
        url=config.url,
        stations=config.count,
        versions=dict(versions),
        duration_s=round(duration_s, 3),
        simulated_s=round(simulated_s, 1),
        connected=stats.connected,
        booted=stats.booted,
        connect_attempts=stats.connect_attempts,
        connect_failures=stats.connect_failures,
        disconnects=stats.disconnects,
        sessions_started=stats.sessions_started,
        sessions_ended=stats.sessions_ended,
        active_sessions=stats.active_sessions,
        energy_kwh=round(stats.energy_wh / 1000.0, 3),
        max_power_w=round(stats.max_power_w, 1),
        limit_violations=stats.limit_violations,
        frames_in=stats.frames_in,
        frames_out=stats.frames_out,
        protocol_errors=stats.protocol_errors,
        invalid_outgoing=stats.invalid_outgoing,
        replayed=stats.replayed,
        dropped_offline=stats.dropped_offline,
        errors=stats.error_count,
        boot_status=dict(stats.boot_status),
        authorize_status=dict(stats.authorize_status),
        call_errors=dict(stats.call_error_codes),
        error_kinds=dict(stats.errors),
        incoming=dict(stats.incoming),
        outgoing={action: each.summary() for action, each in sorted(stats.outgoing.items())},
    )
