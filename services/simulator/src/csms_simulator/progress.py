"""A single progress line on stderr, rewritten every second."""

import asyncio
import sys
import time
from typing import TextIO

from csms_simulator.stats import FleetStats


def progress_line(stats: FleetStats, rate: float, elapsed: float) -> str:
    return (
        f"[{elapsed:7.1f}s] connected {stats.connected:>6}  booted {stats.booted:>6}  "
        f"sessions {stats.active_sessions:>6}  started {stats.sessions_started:>7}  "
        f"msgs/s {rate:>8.1f}  energy {stats.energy_wh / 1000:>10.1f} kWh  "
        f"errors {stats.error_count:>5}"
    )


async def show_progress(
    stats: FleetStats, interval: float = 1.0, stream: TextIO | None = None
) -> None:
    """Runs until cancelled; leaves the last line on screen."""
    out = stream or sys.stderr
    started = last_time = time.monotonic()
    last_frames = 0
    try:
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            frames = stats.frames_in + stats.frames_out
            rate = (frames - last_frames) / max(now - last_time, 1e-9)
            last_frames, last_time = frames, now
            out.write("\r" + progress_line(stats, rate, now - started))
            out.flush()
    finally:
        out.write("\n")
        out.flush()
