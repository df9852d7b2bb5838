"""Concurrent idle station connections held by ONE gateway process, and memory per connection.

One ``csms gateway`` (distributed mode: Kafka, Redis, PostgreSQL) and, beside it, the
bare reference (``bench.bare``: the same WebSocket library, nothing else). Stations
come from client processes of at most ``--per-process`` stations each, added one
process at a time to each server in turn; after each step every new station has
booted (BootNotification answered) and sits idle, and the server's RSS is read from
/proc/<pid>/status:

    memory per idle connection = (RSS with N connections - RSS with 0) / N

No sessions service runs, so each BootNotification is stored in Kafka and answered
with the gateway's documented fallback (Pending) after CSMS_DECISION_TIMEOUT_S; the
connection has then gone through the same path as an accepted one.

The gateway process is limited by the hard limit of open files (``ulimit -Hn``), like
every process here: N stays a few hundred below it for Kafka, Redis and PostgreSQL.

    uv run python -m bench.connections --stations 19000
"""

import argparse
import asyncio
import contextlib
import math
import resource
import time
from dataclasses import dataclass

from bench import harness
from bench.harness import Csms, Report, Running, Worker


@dataclass
class Holder:
    """A server holding idle connections (the gateway or the bare reference), step by step."""

    name: str
    server: Running
    baseline_kib: int
    held: int = 0
    rss_kib: int = 0

    @property
    def per_connection_kib(self) -> float:
        return (self.rss_kib - self.baseline_kib) / max(self.held, 1)


async def add_step(
    holder: Holder, worker: Worker, args: argparse.Namespace, report: Report
) -> None:
    """One client process's stations connect and boot to ``holder``; its RSS after."""
    started = time.perf_counter()
    await worker.send(cmd="connect", rate=args.connect_rate)
    connected = await worker.receive()
    await worker.send(cmd="boot", timeout=args.decision_timeout + 60)
    booted = await worker.receive()
    previous_held, previous_rss = holder.held, holder.rss_kib or holder.baseline_kib
    holder.held += connected["open"]
    await asyncio.sleep(args.settle)
    holder.rss_kib = harness.rss_kib(holder.server.pid)
    gauge = ""
    if holder.name == "gateway":
        value = harness.metric_value(holder.server.port, "csms_gateway_connected_stations")
        gauge = f"gateway gauge {value:.0f}; "
    marginal = (holder.rss_kib - previous_rss) / max(holder.held - previous_held, 1)
    report.figure(
        f"{holder.name}: {holder.held} idle booted connections ({gauge}"
        f"{connected['failed']} failed; boot answers {booted['statuses']}; "
        f"step took {time.perf_counter() - started:.1f} s): RSS "
        f"{holder.rss_kib / 1024:.1f} MiB, {holder.per_connection_kib:.1f} KiB per connection "
        f"(this step's {holder.held - previous_held}: {marginal:.1f} KiB each)"
    )


async def measure(
    csms: Csms, bare: Running | None, args: argparse.Namespace, report: Report
) -> None:
    gateway = csms.gateway(CSMS_DECISION_TIMEOUT_S=str(args.decision_timeout))
    await asyncio.sleep(args.settle)
    servers = [("gateway", gateway)] + ([("bare", bare)] if bare is not None else [])
    holders = [Holder(name, server, harness.rss_kib(server.pid)) for name, server in servers]
    for holder in holders:
        report.figure(f"{holder.name} RSS with 0 connections: {holder.baseline_kib / 1024:.1f} MiB")
    processes = math.ceil(args.stations / args.per_process)
    async with contextlib.AsyncExitStack() as stack:
        fleets = [
            await stack.enter_async_context(
                harness.workers(
                    holder.server.port,
                    harness.station_prefix(f"conn{holder.name[:4]}"),
                    args.stations,
                    processes,
                )
            )
            for holder in holders
        ]
        # Step by step, alternating: a client process's stations to each server in turn.
        for step in range(processes):
            for holder, fleet in zip(holders, fleets, strict=True):
                await add_step(holder, fleet.workers[step], args, report)
        if len(holders) == 2:
            gateway_kib, bare_kib = (holder.per_connection_kib for holder in holders)
            report.figure(
                f"memory per idle connection, gateway / bare: {gateway_kib:.1f} / "
                f"{bare_kib:.1f} KiB = {gateway_kib / max(bare_kib, 1e-9):.2f} times "
                "(goal ≤ 25 KiB on the gateway)"
            )
        clients = sum(harness.rss_kib(pid) for fleet in fleets for pid in fleet.pids)
        stations = sum(holder.held for holder in holders)
        report.figure(
            f"client processes: {processes * len(holders)}, RSS {clients / 1024:.1f} MiB in all "
            f"({clients / max(stations, 1):.1f} KiB per station)"
        )
        for fleet in fleets:
            await fleet.ask(cmd="close")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, default=19_000)
    parser.add_argument("--per-process", type=int, default=5_000, help="stations per client")
    parser.add_argument("--connect-rate", type=float, default=400.0, help="per client, per s")
    parser.add_argument("--settle", type=float, default=5.0, help="idle seconds before RSS")
    parser.add_argument("--decision-timeout", type=float, default=2.0)
    parser.add_argument(
        "--no-reference", action="store_true", help="only the gateway (no bare reference)"
    )
    harness.common_arguments(parser)
    args = parser.parse_args()
    if args.smoke:
        args.stations, args.per_process, args.settle = 20, 10, 0.5
    report = harness.report_for("Idle connections held by one gateway (vs bare)", args)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    report.note(
        f"open files hard limit {hard} per process: one gateway cannot hold more than about "
        f"{hard - 200} stations here, so the 50,000 stretch target cannot be tried"
    )
    with harness.running_csms(args) as csms, contextlib.ExitStack() as stack:
        bare = None if args.no_reference else stack.enter_context(harness.bare_reference())
        asyncio.run(measure(csms, bare, args, report))
    report.write()


if __name__ == "__main__":
    main()
