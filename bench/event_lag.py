"""Event lag: from a frame received by the gateway to the sessions consumer having stored it.

One ``csms gateway`` and one ``csms sessions`` replica (one consumer). Client processes
send StatusNotifications (2.0.1) open loop at each ``--rates`` level. Every event the
consumer stores sets the station's ``sessions.station.last_seen_at`` to the event's
``data.received_at`` (the gateway's time of receipt, in the ``ocpp.inbound`` envelope),
in the same transaction as the connector status. This process polls those rows every
``--poll-ms``: a new ``last_seen_at`` seen at time t is one sample of

    lag = t - received_at    (includes up to one poll interval)

After the send schedule, polling goes on until the consumer has caught up (nothing new
for ``--quiet`` seconds), so a consumer slower than the offered rate shows as a growing lag; the
consumer's own rate (events stored per second) is reported too.

    uv run python -m bench.event_lag --rates 1000,5000 --duration 20
"""

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]

from bench import harness
from bench.harness import Csms, Report, Workers


@dataclass
class LagPoller:
    """Polls ``last_seen_at`` of the benchmark's stations and keeps the lag samples."""

    connection: Any
    prefix: str
    poll_s: float
    quiet_s: float
    seen: dict[str, float] = field(default_factory=dict)
    samples_ms: list[float] = field(default_factory=list)
    last_change: float = 0.0

    async def poll(self) -> None:
        rows = await self.connection.fetch(
            "SELECT station_id, last_seen_at FROM sessions.station WHERE station_id LIKE $1",
            self.prefix + "%",
        )
        now = time.time()
        for station_id, last_seen_at in rows:
            if last_seen_at is None:
                continue
            received = last_seen_at.timestamp()
            if self.seen.get(station_id) != received:
                if station_id in self.seen:
                    self.samples_ms.append((now - received) * 1000)
                    self.last_change = now
                self.seen[station_id] = received

    async def run_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.poll()
            await asyncio.sleep(self.poll_s)

    async def until_quiet(self, timeout_s: float, since: float = 0.0) -> bool:
        """Poll until every station has an event received after ``since`` stored and nothing
        changed for ``quiet_s``; False if still busy at the timeout."""
        deadline = time.time() + timeout_s
        while (
            time.time() - self.last_change < self.quiet_s
            or min(self.seen.values(), default=since) < since
        ):
            if time.time() > deadline:
                return False
            await self.poll()
            await asyncio.sleep(self.poll_s)
        return True


async def stored_events(connection: Any) -> int:
    count: int = await connection.fetchval("SELECT count(*) FROM sessions.processed_event")
    return count


async def run_level(
    fleet: Workers, poller: LagPoller, rate: float, args: argparse.Namespace, report: Report
) -> None:
    await poller.poll()  # the baseline: only changes from here on count
    poller.samples_ms = []
    before, started = await stored_events(poller.connection), time.time()
    start_at = started + 1.0
    stop = asyncio.Event()
    polling = asyncio.create_task(poller.run_until(stop))
    results = await fleet.ask(
        cmd="load",
        start_at=start_at,
        rate=rate / len(fleet.workers),
        duration=args.duration,
        mix="status",
    )
    stop.set()
    await polling
    poller.last_change = time.time()
    caught_up = await poller.until_quiet(args.drain, since=start_at)
    stored = await stored_events(poller.connection) - before
    consumer_rate = stored / max(poller.last_change - started - 1.0, 1e-9)
    sent = sum(result["sent"] for result in results)
    samples = poller.samples_ms
    report.figure(
        f"{rate:.0f} StatusNotifications/s for {args.duration:.0f} s ({sent} sent): lag "
        f"received → stored p50 {harness.percentile(samples, 50):.0f} ms, "
        f"p99 {harness.percentile(samples, 99):.0f} ms, max {max(samples, default=0):.0f} ms "
        f"({len(samples)} samples, poll every {args.poll_ms:.0f} ms; target p99 ≤ 50 ms at "
        f"5,000/s); consumer stored {stored} events, {consumer_rate:.0f}/s"
        + ("" if caught_up else f"; NOT caught up {args.drain:.0f} s after the last send")
    )


async def measure(csms: Csms, args: argparse.Namespace, report: Report) -> None:
    _sessions, gateway = csms.sessions_and_gateway()
    prefix = harness.station_prefix("lag")
    # asyncpg takes the libpq form of SQLAlchemy's "postgresql+asyncpg://" URL.
    url = csms.infra.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    connection = await asyncpg.connect(url)
    poller = LagPoller(connection, prefix, args.poll_ms / 1000, args.quiet)
    try:
        async with harness.workers(gateway.port, prefix, args.stations, args.clients) as fleet:
            await fleet.ask(cmd="connect", rate=500)
            boots = await fleet.ask(cmd="storm", timeout=120, reconnect=False)
            accepted = sum(len(result["accepted_at"]) for result in boots)
            report.figure(f"{accepted}/{args.stations} stations booted (Accepted)")
            poller.last_change = time.time()
            await poller.until_quiet(60)  # the boots and connection events are stored
            for rate in args.rates:
                await run_level(fleet, poller, rate, args, report)
            await fleet.ask(cmd="close")
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="1000,5000", help="StatusNotifications/s per level")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per level")
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--poll-ms", type=float, default=10.0)
    parser.add_argument("--drain", type=float, default=90.0, help="max seconds to catch up")
    parser.add_argument("--quiet", type=float, default=3.0, help="caught up after (s) of calm")
    harness.common_arguments(parser)
    args = parser.parse_args()
    args.rates = [float(rate) for rate in args.rates.split(",")]
    if args.smoke:
        args.rates, args.duration, args.stations, args.clients = [20.0], 2.0, 5, 1
        args.quiet, args.drain = 1.0, 30.0
    report = harness.report_for("Event lag: gateway receipt to sessions storage", args)
    with harness.running_csms(args) as csms:
        asyncio.run(measure(csms, args, report))
    report.write()


if __name__ == "__main__":
    main()
