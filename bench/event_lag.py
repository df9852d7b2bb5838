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

With ``--backlog N``, N more events are then written straight to ``ocpp.inbound``
(no gateway: the consumer alone), and the time until it stored them all gives its rate.

    uv run python -m bench.event_lag --rates 1000,2000 --duration 20 --backlog 50000
"""

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]

from bench import harness
from bench.harness import Csms, Report, Running, Workers
from csms_core import topics
from csms_core.bus import Outgoing
from csms_core.bus.kafka import KafkaBus
from csms_core.events.data import ocpp_time
from csms_core.events.ocpp import OcppCall, encode_inbound
from tests import cluster


@dataclass
class LagPoller:
    """Polls ``last_seen_at`` of the benchmark's stations and keeps the lag samples.

    Until all ``expected`` stations have a row, each poll reads every row of the prefix
    (``LIKE``: a sequential scan); from then on, only the watched ones: every
    ``watch_every``-th station, by key (an index scan). Reading all 1,000 rows 80-100 times
    a second took a sixth of a core in this process and as much again in PostgreSQL, on
    the two cores the consumer under test shares with it; one station in five still gives
    thousands of samples per level (``--watch-every 5``). Measured side by side at 2,000/s,
    the lag did not differ beyond the spread between runs, so all are read by default."""

    connection: Any
    prefix: str
    poll_s: float
    quiet_s: float
    expected: int = 0
    watch_every: int = 1
    seen: dict[str, float] = field(default_factory=dict)
    watched: list[str] = field(default_factory=list)
    samples_ms: list[float] = field(default_factory=list)
    sampled_at: list[float] = field(default_factory=list)  # when each sample was seen
    last_change: float = 0.0

    async def poll(self) -> None:
        if self.watched:
            rows = await self.connection.fetch(
                "SELECT station_id, last_seen_at FROM sessions.station "
                "WHERE station_id = ANY($1::varchar[])",
                self.watched,
            )
        else:
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
                    self.sampled_at.append(now)
                    self.last_change = now
                self.seen[station_id] = received
        if not self.watched and self.watch_every > 1 and len(self.seen) >= self.expected:
            self.watched = sorted(self.seen)[:: self.watch_every]

    def oldest(self, default: float) -> float:
        """The oldest receipt among the stations polled."""
        keys = self.watched or self.seen
        return min((self.seen[key] for key in keys), default=default)

    async def run_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.poll()
            await asyncio.sleep(self.poll_s)

    async def until_quiet(self, timeout_s: float, since: float = 0.0) -> bool:
        """Poll until every polled station has an event received after ``since`` stored and
        nothing changed for ``quiet_s``; False if still busy at the timeout."""
        deadline = time.time() + timeout_s
        while time.time() - self.last_change < self.quiet_s or self.oldest(since) < since:
            if time.time() > deadline:
                return False
            await self.poll()
            await asyncio.sleep(self.poll_s)
        return True


async def stored_events(connection: Any) -> int:
    count: int = await connection.fetchval("SELECT count(*) FROM sessions.processed_event")
    return count


async def drained(
    connection: Any, report: Report, before: str, *, quiet_s: float, timeout_s: float
) -> None:
    """Wait until the consumer stored nothing new for ``quiet_s`` (what was queued before a
    measurement, e.g. boots retried after a Pending fallback, would count in it), and say
    how long that took."""
    started = time.time()
    count, changed = await stored_events(connection), started
    while time.time() - changed < quiet_s and time.time() - started < timeout_s:
        await asyncio.sleep(0.5)
        now = await stored_events(connection)
        if now != count:
            count, changed = now, time.time()
    calm = time.time() - changed >= quiet_s
    report.figure(
        f"before {before}: the consumer "
        + (
            f"had nothing queued after {changed - started:.1f} s"
            if calm
            else f"was still storing after {timeout_s:.0f} s (the figures below include that)"
        )
    )


async def run_level(
    fleet: Workers,
    poller: LagPoller,
    rate: float,
    args: argparse.Namespace,
    report: Report,
    csms: Csms,
    sessions: Running,
) -> None:
    await poller.poll()  # the baseline: only changes from here on count
    poller.samples_ms, poller.sampled_at = [], []
    before, started = await stored_events(poller.connection), time.time()
    steps = harness.consumer_steps(sessions.port, csms.admin, csms.group)
    sizes = harness.consumer_sizes(sessions.port, csms.admin, csms.group)
    scans = await harness.table_scans(csms.infra.database_url)
    cpu_before = harness.cpu_seconds(sessions.pid)
    profiling = profile_sessions(
        args, sessions.pid, f"{rate:.0f}", seconds=max(1.0, args.duration - 2.0), delay_s=2.0
    )
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
    cpu_ms = 1000 * (harness.cpu_seconds(sessions.pid) - cpu_before) / max(stored, 1)
    spent = harness.steps_between(
        steps, harness.consumer_steps(sessions.port, csms.admin, csms.group)
    )
    spent += "; " + harness.sizes_between(
        sizes, harness.consumer_sizes(sessions.port, csms.admin, csms.group)
    )
    consumer_rate = stored / max(poller.last_change - started - 1.0, 1e-9)
    sent = sum(result["sent"] for result in results)
    # The gateway answers a StatusNotification once its event is durable in Kafka: that
    # share of the lag is the gateway's (and the broker's), the rest the consumer's.
    answered = [value for result in results for value in result["latencies_ms"]]
    samples = poller.samples_ms
    report.figure(
        f"{rate:.0f} StatusNotifications/s for {args.duration:.0f} s ({sent} sent): lag "
        f"received → stored p50 {harness.percentile(samples, 50):.0f} ms, "
        f"p99 {harness.percentile(samples, 99):.0f} ms, max {max(samples, default=0):.0f} ms "
        f"({len(samples)} samples of {len(poller.watched) or len(poller.seen)} stations, poll "
        f"every {args.poll_ms:.0f} ms; target p99 ≤ 100 ms at "
        f"2,000/s, ≥ 5,000/s sustained); consumer stored {stored} events, "
        f"{consumer_rate:.0f}/s, sessions process CPU {cpu_ms:.3f} ms per event; "
        f"the gateway's CALLRESULT (event durable) p50 {harness.percentile(answered, 50):.0f} "
        f"ms, p99 {harness.percentile(answered, 99):.0f} ms; the consumer's steps: {spent}"
        + ("" if caught_up else f"; NOT caught up {args.drain:.0f} s after the last send")
    )
    report.figure(f"{rate:.0f}/s: the lag by second of the run, p99 (max): {by_second(poller)}")
    scanned = await harness.scans_since(csms.infra.database_url, scans)
    report.figure(f"{rate:.0f}/s: sequential scans: {scanned}")
    await note_profile(report, profiling, f"{rate:.0f}/s offered")


def by_second(poller: LagPoller) -> str:
    """Each second's p99 (and max) lag since the first sample: whether a tail is one stall
    (a start, a checkpoint) or the steady state."""
    if not poller.sampled_at:
        return "no samples"
    first = poller.sampled_at[0]
    seconds: dict[int, list[float]] = {}
    for at, lag in zip(poller.sampled_at, poller.samples_ms, strict=True):
        seconds.setdefault(int(at - first), []).append(lag)
    return ", ".join(
        f"{harness.percentile(lags, 99):.0f} ({max(lags):.0f})"
        for _, lags in sorted(seconds.items())
    )


def backlog_records(station_ids: list[str], count: int, gateway_id: str) -> list[Outgoing]:
    """``count`` StatusNotifications (2.0.1) of the stations, as the gateway writes them."""
    now = datetime.now(UTC)
    records = []
    for index in range(count):
        station_id = station_ids[index % len(station_ids)]
        event = encode_inbound(
            OcppCall,
            source=f"csms/gateway/{gateway_id}",
            station_id=station_id,
            ocpp_version="2.0.1",
            gateway_id=gateway_id,
            connection_id="backlog",
            action="StatusNotification",
            message_id=str(index),
            payload={
                "timestamp": ocpp_time(now + timedelta(milliseconds=index)),
                "connectorStatus": "Available",
                "evseId": 1 + index % 4,
                "connectorId": 1,
            },
            received_at=now,
            owner="gateway",
        )
        records.append(Outgoing(topics.OCPP_INBOUND, event))
    return records


async def drain_backlog(
    csms: Csms, poller: LagPoller, args: argparse.Namespace, report: Report, sessions: Running
) -> None:
    """The consumer alone: ``--backlog`` events written straight to ``ocpp.inbound`` (no
    gateway in the way), and how fast it stores them."""
    records = backlog_records(sorted(poller.seen), args.backlog, "gw-backlog")
    before = await stored_events(poller.connection)
    steps = harness.consumer_steps(sessions.port, csms.admin, csms.group)
    sizes = harness.consumer_sizes(sessions.port, csms.admin, csms.group)
    profiling = profile_sessions(args, sessions.pid, "backlog", seconds=5.0, delay_s=1.0)
    cpu_before, started = harness.cpu_seconds(sessions.pid), time.time()
    prefix = cluster.topic_prefix(csms.group)
    async with KafkaBus(csms.infra.kafka_bootstrap, topic_prefix=prefix) as bus:
        for first in range(0, len(records), 1000):
            await bus.publish_many(records[first : first + 1000])
    written = time.time()
    stored = 0
    while stored < args.backlog and time.time() - written < args.drain:
        await asyncio.sleep(0.05)
        stored = await stored_events(poller.connection) - before
    took = time.time() - started
    cpu_ms = 1000 * (harness.cpu_seconds(sessions.pid) - cpu_before) / max(stored, 1)
    spent = harness.steps_between(
        steps, harness.consumer_steps(sessions.port, csms.admin, csms.group)
    )
    spent += "; " + harness.sizes_between(
        sizes, harness.consumer_sizes(sessions.port, csms.admin, csms.group)
    )
    report.figure(
        f"backlog of {args.backlog} StatusNotifications written to ocpp.inbound in "
        f"{written - started:.1f} s: the consumer stored {stored} in {took:.1f} s, "
        f"{stored / took:.0f} events/s (target ≥ 5,000/s), sessions process CPU "
        f"{cpu_ms:.3f} ms per event; the consumer's steps (2 lanes side by side): {spent}"
    )
    await note_profile(report, profiling, "draining the backlog")


def profile_sessions(
    args: argparse.Namespace, pid: int, label: str, *, seconds: float, delay_s: float
) -> "asyncio.Task[list[str]] | None":
    """With ``--profile``: py-spy of the sessions process for ``seconds`` after ``delay_s``."""
    if not args.profile:
        return None
    raw = Path(tempfile.gettempdir()) / f"bench-event-lag-{label}.txt"

    async def later() -> list[str]:
        await asyncio.sleep(delay_s)
        return await harness.profile(pid, seconds, raw, gil=args.profile_gil)

    return asyncio.create_task(later())


async def note_profile(
    report: Report, profiling: "asyncio.Task[list[str]] | None", label: str
) -> None:
    if profiling is None:
        return
    report.note(f"py-spy profile of csms sessions, {label}:")
    for line in await profiling:
        report.note(f"    {line}")


async def measure(csms: Csms, args: argparse.Namespace, report: Report) -> None:
    sessions, gateway = csms.sessions_and_gateway()
    prefix = harness.station_prefix("lag")
    # asyncpg takes the libpq form of SQLAlchemy's "postgresql+asyncpg://" URL.
    url = csms.infra.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    connection = await asyncpg.connect(url)
    poller = LagPoller(
        connection, prefix, args.poll_ms / 1000, args.quiet, args.stations, args.watch_every
    )
    settle = {"quiet_s": args.quiet, "timeout_s": args.settle}
    try:
        async with harness.workers(gateway.port, prefix, args.stations, args.clients) as fleet:
            await fleet.ask(cmd="connect", rate=500)
            boots = await fleet.ask(cmd="storm", timeout=120, reconnect=False)
            accepted = sum(len(result["accepted_at"]) for result in boots)
            report.figure(f"{accepted}/{args.stations} stations booted (Accepted)")
            poller.last_change = time.time()
            await poller.until_quiet(60)  # the boots and connection events are stored
            for rate in args.rates:
                await drained(connection, report, f"{rate:.0f}/s", **settle)
                await run_level(fleet, poller, rate, args, report, csms, sessions)
            if args.backlog:
                await drained(connection, report, "the backlog", **settle)
                await drain_backlog(csms, poller, args, report, sessions)
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
    parser.add_argument(
        "--watch-every",
        type=int,
        default=1,
        help="once all stations are stored, poll every Nth of them only (default 1: all)",
    )
    parser.add_argument("--drain", type=float, default=90.0, help="max seconds to catch up")
    parser.add_argument("--quiet", type=float, default=3.0, help="caught up after (s) of calm")
    parser.add_argument(
        "--settle", type=float, default=180.0, help="max seconds to wait for calm before a level"
    )
    parser.add_argument(
        "--backlog", type=int, default=0, help="then this many events at once, no gateway"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy csms sessions per level")
    parser.add_argument(
        "--profile-gil", action="store_true", help="with --profile: only samples holding the GIL"
    )
    harness.common_arguments(parser)
    args = parser.parse_args()
    args.rates = [float(rate) for rate in args.rates.split(",")]
    if args.watch_every < 1:
        parser.error("--watch-every must be at least 1")
    if args.smoke:
        args.rates, args.duration, args.stations, args.clients = [20.0], 2.0, 5, 1
        args.quiet, args.drain, args.backlog, args.settle = 1.0, 30.0, 50, 30.0
        args.watch_every = 2  # 3 of the 5 stations, by key: the watched path runs too
    report = harness.report_for("Event lag: gateway receipt to sessions storage", args)
    with harness.running_csms(args) as csms:
        asyncio.run(measure(csms, args, report))
    report.write()


if __name__ == "__main__":
    main()
