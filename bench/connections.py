"""Concurrent idle station connections held by ONE gateway process, and memory per connection.

One ``csms gateway`` (distributed mode: Kafka, Redis, PostgreSQL). Stations come from
client processes of at most ``--per-process`` stations each, added one process at a
time; after each step every new station has booted (BootNotification answered) and
sits idle, and the gateway's RSS is read from /proc/<pid>/status:

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
import math
import resource
import time

from bench import harness
from bench.harness import Csms, Report


async def measure(csms: Csms, args: argparse.Namespace, report: Report) -> None:
    gateway = csms.gateway(CSMS_DECISION_TIMEOUT_S=str(args.decision_timeout))
    pid = gateway.pid
    await asyncio.sleep(args.settle)
    baseline = harness.rss_kib(pid)
    report.figure(f"gateway RSS with 0 connections: {baseline / 1024:.1f} MiB")
    processes = math.ceil(args.stations / args.per_process)
    prefix = harness.station_prefix("conn")
    async with harness.workers(gateway.port, prefix, args.stations, processes) as fleet:
        held, previous_held, previous_rss = 0, 0, baseline
        for worker in fleet.workers:
            started = time.perf_counter()
            await worker.send(cmd="connect", rate=args.connect_rate)
            connected = await worker.receive()
            await worker.send(cmd="boot", timeout=args.decision_timeout + 60)
            booted = await worker.receive()
            held += connected["open"]
            await asyncio.sleep(args.settle)
            rss = harness.rss_kib(pid)
            gauge = harness.metric_value(gateway.port, "csms_gateway_connected_stations")
            per_connection = (rss - baseline) / max(held, 1)
            marginal = (rss - previous_rss) / max(held - previous_held, 1)
            report.figure(
                f"{held} idle booted connections (gateway gauge {gauge:.0f}; "
                f"{connected['failed']} failed; boot answers {booted['statuses']}; "
                f"step took {time.perf_counter() - started:.1f} s): gateway RSS "
                f"{rss / 1024:.1f} MiB, {per_connection:.1f} KiB per connection "
                f"(this step's {held - previous_held}: {marginal:.1f} KiB each)"
            )
            previous_held, previous_rss = held, rss
        clients = sum(harness.rss_kib(pid) for pid in fleet.pids)
        report.figure(
            f"client processes: {processes}, RSS {clients / 1024:.1f} MiB in all "
            f"({clients / max(held, 1):.1f} KiB per station)"
        )
        await fleet.ask(cmd="close")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, default=19_000)
    parser.add_argument("--per-process", type=int, default=5_000, help="stations per client")
    parser.add_argument("--connect-rate", type=float, default=400.0, help="per client, per s")
    parser.add_argument("--settle", type=float, default=5.0, help="idle seconds before RSS")
    parser.add_argument("--decision-timeout", type=float, default=2.0)
    harness.common_arguments(parser)
    args = parser.parse_args()
    if args.smoke:
        args.stations, args.per_process, args.settle = 20, 10, 0.5
    report = harness.report_for("Idle connections held by one gateway", args)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    report.note(
        f"open files hard limit {hard} per process: one gateway cannot hold more than about "
        f"{hard - 200} stations here, so the 50,000 stretch target cannot be tried"
    )
    with harness.running_csms(args) as csms:
        asyncio.run(measure(csms, args, report))
    report.write()


if __name__ == "__main__":
    main()
