"""Latency of a REST command to a station and back, under background station load.

``POST /api/v1/stations/{id}/commands/trigger-message`` (Heartbeat) on a ``csms sessions``
replica: sessions → Redis (the gateway's command stream) → gateway → the station's
WebSocket; the station answers Accepted; gateway → Redis (the caller's reply
stream) → the REST response. The target stations run in this process, so the time
the CALL reaches a station and the time the REST request was sent share one clock;
the CALL's message id is the command id the REST response returns.

Background: client processes send gateway-answered CALLs (as bench.throughput) at
``--background-rate`` through the same gateway for the whole run.

    uv run python -m bench.command_latency --commands 1000 --background-rate 1000
"""

import argparse
import asyncio
import time
from typing import Any

import httpx

from bench import harness
from bench.fleet import CommandArrival, Fleet
from bench.harness import Csms, Report


async def send_commands(
    api: httpx.AsyncClient, fleet: Fleet, count: int, rate: float
) -> tuple[list[float], list[float], int]:
    """``count`` commands, open loop at ``rate``/s; (to-station ms, round-trip ms, failures)."""
    arrivals: dict[str, CommandArrival] = {}
    fleet.on_command = lambda arrival: arrivals.__setitem__(arrival.message_id, arrival)
    to_station: list[float] = []
    round_trip: list[float] = []
    failures = 0

    async def one(station_id: str) -> None:
        nonlocal failures
        sent = time.time()
        response = await api.post(
            f"/stations/{station_id}/commands/trigger-message", json={"message": "Heartbeat"}
        )
        done = time.time()
        body: dict[str, Any] = response.json()
        arrival = arrivals.pop(body.get("command_id", ""), None)
        if response.status_code != 200 or arrival is None:
            failures += 1
            return
        to_station.append((arrival.arrived_at - sent) * 1000)
        round_trip.append((done - sent) * 1000)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as tasks:
        for index in range(count):
            await asyncio.sleep(max(0.0, started + index / rate - time.perf_counter()))
            tasks.create_task(one(fleet.station_ids[index % len(fleet.station_ids)]))
    return to_station, round_trip, failures


async def measure(csms: Csms, args: argparse.Namespace, report: Report) -> None:
    sessions, gateway = csms.sessions_and_gateway()
    targets = Fleet(gateway.port, harness.station_prefix("cmd"), 0, args.targets)
    await targets.connect_all(rate_per_s=100)
    boots = await targets.boot_all(timeout_s=30)
    duration = args.commands / args.command_rate + args.warmup + 2.0
    prefix = harness.station_prefix("bg")
    async with (
        harness.workers(gateway.port, prefix, args.stations, args.clients) as background,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{sessions.port}/api/v1", timeout=60) as api,
    ):
        await background.ask(cmd="connect", rate=500)
        load = asyncio.create_task(
            background.ask(
                cmd="load",
                start_at=time.time() + 1.0,
                rate=args.background_rate / args.clients,
                duration=duration,
                mix="mixed",
            )
        )
        await asyncio.sleep(args.warmup)  # the background load is running
        to_station, round_trip, failures = await send_commands(
            api, targets, args.commands, args.command_rate
        )
        loaded = await load
        await background.ask(cmd="close")
    await targets.close_all()
    background_latency = [value for result in loaded for value in result["latencies_ms"]]
    answered = sum(result["answered"] for result in loaded)
    report.figure(
        f"background: {args.background_rate:.0f} CALLs/s from {args.stations} stations for "
        f"{duration:.0f} s ({answered} answered, CALLRESULT p99 "
        f"{harness.percentile(background_latency, 99):.1f} ms); {args.targets} target stations "
        f"booted {boots}"
    )
    report.figure(
        f"{len(round_trip)} trigger-message commands at {args.command_rate:.0f}/s "
        f"({failures} failed): REST → station p50 {harness.percentile(to_station, 50):.1f} ms, "
        f"p99 {harness.percentile(to_station, 99):.1f} ms (target ≤ 25 ms); round trip "
        f"p50 {harness.percentile(round_trip, 50):.1f} ms, "
        f"p99 {harness.percentile(round_trip, 99):.1f} ms (target ≤ 100 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=1000)
    parser.add_argument("--command-rate", type=float, default=20.0, help="commands per second")
    parser.add_argument("--targets", type=int, default=20, help="stations receiving commands")
    parser.add_argument("--background-rate", type=float, default=1000.0, help="CALLs/s")
    parser.add_argument("--stations", type=int, default=1000, help="background stations")
    parser.add_argument("--clients", type=int, default=2, help="background client processes")
    parser.add_argument("--warmup", type=float, default=3.0, help="load before commands (s)")
    harness.common_arguments(parser)
    args = parser.parse_args()
    if args.smoke:
        args.commands, args.command_rate, args.targets, args.warmup = 10, 20.0, 2, 1.0
        args.background_rate, args.stations, args.clients = 20.0, 4, 1
    report = harness.report_for("REST command latency under load", args)
    with harness.running_csms(args) as csms:
        asyncio.run(measure(csms, args, report))
    report.write()


if __name__ == "__main__":
    main()
