"""Run N stations against a CSMS, ramping connections up, and report what happened."""

import asyncio
import contextlib
import random
import time
from collections import Counter

from csms_simulator.clock import ScaledClock
from csms_simulator.config import SimulationConfig
from csms_simulator.connection import run_station
from csms_simulator.progress import show_progress
from csms_simulator.report import RunReport, build_report
from csms_simulator.station import Station
from csms_simulator.stats import FleetStats


def build_stations(
    config: SimulationConfig, clock: ScaledClock, stats: FleetStats
) -> list[Station]:
    stations = [
        Station(station_id, version, config, clock, stats, _rng(config.seed, station_id))
        for station_id, version in zip(config.station_ids(), config.versions(), strict=True)
    ]
    # Exactly the configured share of the fleet fails its installs (which ones: the seed).
    broken = round(len(stations) * config.install_failure_rate)
    chosen = set(random.Random(config.seed).sample(range(len(stations)), broken))  # noqa: S311
    for index, station in enumerate(stations):
        station.install_broken = index in chosen
    return stations


def _rng(seed: int, station_id: str) -> random.Random:
    return random.Random(f"{seed}:{station_id}")  # noqa: S311 - a simulation, not security


async def run_fleet(
    config: SimulationConfig,
    *,
    stopping: asyncio.Event | None = None,
    progress: bool = True,
    stats: FleetStats | None = None,
) -> RunReport:
    """Run the fleet for ``config.duration_s`` real seconds (0: until ``stopping`` is set).

    ``stats`` are the counters the run fills in, for a caller that watches them live (and
    may set ``stopping`` on what it sees); a fresh set when not given.
    """
    stopping = stopping or asyncio.Event()
    clock, stats = ScaledClock(config.speed), stats or FleetStats()
    stations = build_stations(config, clock, stats)
    started = time.monotonic()
    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(run_station(station, config.url, index / config.ramp_per_s))
            for index, station in enumerate(stations)
        ]
        if progress:
            tasks.append(group.create_task(show_progress(stats)))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(config.duration_s or None):
                await stopping.wait()
        # The report is taken before the stations are cancelled: it shows the fleet as it
        # ran, not as it was torn down.
        versions = Counter(station.version.number for station in stations)
        report = build_report(config, stats, versions, time.monotonic() - started, clock.now())
        for task in tasks:
            task.cancel()
    return report
