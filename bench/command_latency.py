"""Latency of a REST command to a station and back, under background station load.

``POST /api/v1/stations/{id}/commands/trigger-message`` (Heartbeat) on a ``csms sessions``
replica: sessions → Redis (the gateway's command stream) → gateway → the station's
WebSocket; the station answers Accepted; gateway → Redis (the caller's reply
stream) → the REST response. The target stations run in this process, so the time
the CALL reaches a station and the time the REST request was sent share one clock;
the CALL's message id is the command id the REST response returns. Each hop is
timed on its own: the command's and the result's Redis stream entry ids are the
moments (ms) they entered the gateway's and the caller's mailbox streams.

Background: client processes send gateway-answered CALLs (as bench.throughput) at
``--background-rate`` through the same gateway for the whole run.

The floor, side by side in the same run: an open ``GET /healthz`` of the same sessions
process at the command rate (what any request there waits for: the event loop and the
HTTP stack, no authentication, database or Redis). With ``--profile`` the sessions
process and the gateway are sampled with py-spy while the commands run (with
``--sessions-processes 2``, the process serving REST; its consumer's child is not sampled;
``--gil``: only the samples holding the GIL, not those descheduled in a system call).

    uv run python -m bench.command_latency --commands 1000 --background-rate 1000

Each failed command is counted by its reason (the HTTP status and problem type). Many
``409 station-offline`` at once mean someone else's benchmark flushed the Redis database
of this run: give each person's runs their own with ``CSMS_BENCH_REDIS_DB``.
"""

import argparse
import asyncio
import math
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis

from bench import harness
from bench.fleet import CommandArrival, Fleet
from bench.harness import Csms, Report


@dataclass
class Timed:
    """One command's moments (epoch seconds); the mailbox ones are Redis stream entry ids."""

    sent: float  # the REST request left
    at_station: float  # the CALL arrived (and the station answered at once)
    answered: float  # the REST response arrived
    in_mailbox: float = math.nan  # the command entered the gateway's stream (XADD)
    result_in_mailbox: float = math.nan  # the result entered the caller's stream


async def stamp_hops(redis_url: str, timed: dict[str, Timed]) -> None:
    """Fill in when each command and its result entered a Redis stream (entry id = ms)."""
    redis = Redis.from_url(redis_url)
    try:
        async for key in redis.scan_iter(match="csms:mailbox:*", count=1000):
            entries: list[Any] = await redis.xrange(key) or []
            for entry_id, fields in entries:
                message = orjson.loads(fields[b"m"])
                one = timed.get(message.get("command_id", ""))
                if one is None:
                    continue
                entered = int(entry_id.split(b"-")[0]) / 1000
                if message.get("kind") == "command":
                    one.in_mailbox = entered
                elif message.get("kind") == "result":
                    one.result_in_mailbox = entered
    finally:
        await redis.aclose()


def report_hops(report: Report, timed: list[Timed]) -> None:
    """Each hop's p50/p99, so the slow one shows (Redis entry ids have 1 ms resolution)."""
    hops = {
        "REST → gateway stream (sessions: request, route lookup, XADD)": [
            t.in_mailbox - t.sent for t in timed
        ],
        "gateway stream → station (gateway: XREAD wakes, CALL sent)": [
            t.at_station - t.in_mailbox for t in timed
        ],
        "station answer → caller's stream (gateway: answer read, result XADD)": [
            t.result_in_mailbox - t.at_station for t in timed
        ],
        "caller's stream → REST response (sessions: reply read, HTTP response)": [
            t.answered - t.result_in_mailbox for t in timed
        ],
    }
    for name, values in hops.items():
        samples = [1000 * value for value in values if not math.isnan(value)]
        report.figure(
            f"hop {name}: p50 {harness.percentile(samples, 50):.1f} ms, "
            f"p99 {harness.percentile(samples, 99):.1f} ms ({len(samples)} commands)"
        )


async def send_commands(
    api: httpx.AsyncClient, fleet: Fleet, count: int, rate: float
) -> tuple[dict[str, Timed], Counter[str]]:
    """``count`` commands, open loop at ``rate``/s; their moments by command id, and the
    failures by reason (the HTTP status and problem type, or the CALL never seen)."""
    arrivals: dict[str, CommandArrival] = {}
    fleet.on_command = lambda arrival: arrivals.__setitem__(arrival.message_id, arrival)
    timed: dict[str, Timed] = {}
    failures: Counter[str] = Counter()

    async def one(station_id: str) -> None:
        sent = time.time()
        try:
            response = await api.post(
                f"/stations/{station_id}/commands/trigger-message", json={"message": "Heartbeat"}
            )
        except httpx.TransportError as exc:  # e.g. a kept-alive connection the server closed
            failures[f"transport error {type(exc).__name__}"] += 1
            return
        done = time.time()
        body: dict[str, Any] = response.json()
        command_id = body.get("command_id", "")
        arrival = arrivals.pop(command_id, None)
        if response.status_code != 200:
            failures[f"{response.status_code} {body.get('type', '')}".strip()] += 1
        elif arrival is None:
            failures["answered, never seen at the station"] += 1
        else:
            timed[command_id] = Timed(sent, arrival.arrived_at, done)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as tasks:
        for index in range(count):
            await asyncio.sleep(max(0.0, started + index / rate - time.perf_counter()))
            tasks.create_task(one(fleet.station_ids[index % len(fleet.station_ids)]))
    return timed, failures


CLIENT_CONNECTIONS = 8  # opened by each HTTP client before the measured requests


async def warm_client(client: httpx.AsyncClient, url: str) -> None:
    """The client's first requests, unmeasured: httpx imports its transport on the first one
    (~0.1 s of this process's CPU, measured on this machine) and opens a connection for each
    request at once. A long-lived client has paid both; the server's first command still
    pays its own (``GET /healthz`` needs no API key)."""
    await asyncio.gather(*(client.get(url) for _ in range(CLIENT_CONNECTIONS)))


async def probe_floor(api: httpx.AsyncClient, count: int, rate: float) -> list[float]:
    """``GET /healthz`` of the sessions process, open loop at ``rate``/s: latencies (ms) of
    those answered 200 (a connection the server closed while idle is no sample)."""
    latencies: list[float] = []

    async def one() -> None:
        sent = time.perf_counter()
        try:
            response = await api.get("/healthz")
        except httpx.TransportError:
            return
        if response.status_code == 200:
            latencies.append(1000 * (time.perf_counter() - sent))

    started = time.perf_counter()
    async with asyncio.TaskGroup() as tasks:
        for index in range(count):
            await asyncio.sleep(max(0.0, started + (index + 0.5) / rate - time.perf_counter()))
            tasks.create_task(one())
    return latencies


async def profile_process(name: str, pid: int, seconds: float, *, gil: bool) -> list[str]:
    """py-spy of one process while the commands run (after a second of them)."""
    await asyncio.sleep(1.0)
    raw = Path(tempfile.gettempdir()) / f"bench-command-latency-{name}.txt"
    lines = await harness.profile(pid, max(1.0, seconds - 1.0), raw, gil=gil)
    return [*lines, f"(collapsed stacks in {raw})"]


async def measure(csms: Csms, args: argparse.Namespace, report: Report) -> None:
    loop = {} if args.sessions_event_loop is None else {"CSMS_EVENT_LOOP": args.sessions_event_loop}
    sessions, gateway = csms.sessions_and_gateway(
        CSMS_SESSIONS_PROCESSES=str(args.sessions_processes),
        CSMS_TRACE_SAMPLE_RATIO=str(args.sessions_trace_sample_ratio),
        **loop,
    )
    tree = harness.process_tree(sessions.pid)
    report.figure(
        f"csms sessions in {len(tree)} process(es) {tree} (CSMS_SESSIONS_PROCESSES="
        f"{args.sessions_processes}), CSMS_TRACE_SAMPLE_RATIO={args.sessions_trace_sample_ratio}"
        f", CSMS_EVENT_LOOP={args.sessions_event_loop or 'its default'}"
        f" (its REST requests' telemetry){' (attached: as started)' if args.attach else ''}"
    )
    targets = Fleet(gateway.port, harness.station_prefix("cmd"), 0, args.targets)
    await targets.connect_all(rate_per_s=100)
    boots = await targets.boot_all(timeout_s=30)
    duration = args.commands / args.command_rate + args.warmup + 2.0
    prefix = harness.station_prefix("bg")
    async with (
        harness.workers(gateway.port, prefix, args.stations, args.clients) as background,
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{sessions.port}/api/v1", timeout=60, headers=csms.admin
        ) as api,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{sessions.port}", timeout=60) as health,
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
        # Just before the measured requests: a connection left idle for uvicorn's keep-alive
        # timeout (5 s) is closed by the server.
        health_url = f"http://127.0.0.1:{sessions.port}/healthz"
        await asyncio.gather(warm_client(api, health_url), warm_client(health, health_url))
        seconds = args.commands / args.command_rate
        profiling = (
            {
                name: asyncio.create_task(profile_process(name, pid, seconds, gil=args.gil))
                for name, pid in (("sessions", sessions.pid), ("gateway", gateway.pid))
            }
            if args.profile
            else None
        )
        cpu_before, wall_before = harness.cpu_seconds(sessions.pid), time.perf_counter()
        machine_before = harness.machine_cpu()
        lag, lag_stop = harness.LoopLag(), asyncio.Event()
        lagging = asyncio.create_task(lag.run(lag_stop))
        api_cpu_before = sum(harness.cpu_split(sessions.pid))
        floor = asyncio.create_task(probe_floor(health, args.commands, args.command_rate))
        timed, failures = await send_commands(api, targets, args.commands, args.command_rate)
        healthz = await floor
        sessions_cpu = harness.cpu_seconds(sessions.pid) - cpu_before
        api_cpu = sum(harness.cpu_split(sessions.pid)) - api_cpu_before
        machine = [b - a for a, b in zip(machine_before, harness.machine_cpu(), strict=True)]
        lag_stop.set()
        await lagging
        wall = time.perf_counter() - wall_before
        loaded = await load
        rss = [harness.rss_kib(pid) / 1024 for pid in harness.process_tree(sessions.pid)]
        await background.ask(cmd="close")
    await targets.close_all()
    await stamp_hops(csms.infra.redis_url, timed)
    if args.dump is not None:  # every command's moments, to see when the slow ones were
        args.dump.write_bytes(orjson.dumps([vars(one) for one in timed.values()]))
    to_station = [1000 * (t.at_station - t.sent) for t in timed.values()]
    round_trip = [1000 * (t.answered - t.sent) for t in timed.values()]
    background_latency = [value for result in loaded for value in result["latencies_ms"]]
    answered = sum(result["answered"] for result in loaded)
    report.figure(
        f"background: {args.background_rate:.0f} CALLs/s from {args.stations} stations for "
        f"{duration:.0f} s ({answered} answered, CALLRESULT p99 "
        f"{harness.percentile(background_latency, 99):.1f} ms); {args.targets} target stations "
        f"booted {boots}"
    )
    reasons = ", ".join(f"{n} {reason}" for reason, n in failures.most_common())
    report.figure(
        f"{len(round_trip)} trigger-message commands at {args.command_rate:.0f}/s "
        f"({sum(failures.values())} failed{': ' + reasons if reasons else ''}): REST → station "
        f"p50 {harness.percentile(to_station, 50):.1f} ms, "
        f"p99 {harness.percentile(to_station, 99):.1f} ms (target ≤ 25 ms); round trip "
        f"p50 {harness.percentile(round_trip, 50):.1f} ms, "
        f"p99 {harness.percentile(round_trip, 99):.1f} ms (target ≤ 50 ms)"
    )
    # The first second's commands open the client's connections and find the API key not yet
    # verified (one database read per CSMS_API_KEY_CACHE_TTL_S): at 400 commands those few
    # are the p99 on their own. A long-lived client pays them once.
    first = min((t.sent for t in timed.values()), default=0.0)
    steady = [t for t in timed.values() if t.sent >= first + 1.0]
    if steady:  # (a smoke run's commands are over within the first second)
        reach = [1000 * (t.at_station - t.sent) for t in steady]
        back = [1000 * (t.answered - t.sent) for t in steady]
        report.figure(
            f"the {len(steady)} commands sent from the second second on: REST → station p50 "
            f"{harness.percentile(reach, 50):.1f} ms, p99 {harness.percentile(reach, 99):.1f} ms;"
            f" round trip p50 {harness.percentile(back, 50):.1f} ms, p99 "
            f"{harness.percentile(back, 99):.1f} ms"
        )
    report.figure(
        f"floor, same run: open GET /healthz of the same sessions process at "
        f"{args.command_rate:.0f}/s: p50 {harness.percentile(healthz, 50):.1f} ms, "
        f"p99 {harness.percentile(healthz, 99):.1f} ms ({len(healthz)} answered); csms "
        f"sessions used {100 * sessions_cpu / wall:.0f} % of a core meanwhile (the process "
        f"serving REST {100 * api_cpu / wall:.0f} %); RSS "
        f"{' + '.join(f'{mib:.0f}' for mib in rss)} MiB"
    )
    busy, idle, stolen = machine
    report.figure(
        f"the machine meanwhile: cores {100 * busy / (busy + idle + stolen):.0f} % busy, "
        f"{100 * stolen / (busy + idle + stolen):.0f} % stolen; this benchmark's own event loop "
        f"(its target stations and HTTP clients) woke late by p50 "
        f"{harness.percentile(lag.samples, 50):.1f} ms, p99 "
        f"{harness.percentile(lag.samples, 99):.1f} ms ({len(lag.samples)} 10 ms sleeps)"
    )
    report_hops(report, list(timed.values()))
    for name, profiling_one in (profiling or {}).items():
        held = " (samples holding the GIL)" if args.gil else ""
        report.note(f"py-spy profile of csms {name} while the commands ran{held}:")
        for line in await profiling_one:
            report.note(f"    {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=1000)
    parser.add_argument("--command-rate", type=float, default=20.0, help="commands per second")
    parser.add_argument("--targets", type=int, default=20, help="stations receiving commands")
    parser.add_argument("--background-rate", type=float, default=1000.0, help="CALLs/s")
    parser.add_argument("--stations", type=int, default=1000, help="background stations")
    parser.add_argument("--clients", type=int, default=2, help="background client processes")
    parser.add_argument("--warmup", type=float, default=3.0, help="load before commands (s)")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy csms sessions and the gateway meanwhile"
    )
    parser.add_argument(
        "--gil", action="store_true", help="with --profile: only samples holding the GIL"
    )
    parser.add_argument(
        "--sessions-event-loop",
        choices=("uvloop", "asyncio"),
        default=None,
        help="CSMS_EVENT_LOOP of csms sessions (default: its default)",
    )
    parser.add_argument("--dump", type=Path, help="write every command's moments here (JSON)")
    parser.add_argument(
        "--sessions-processes",
        type=int,
        choices=(1, 2),
        default=1,
        help="CSMS_SESSIONS_PROCESSES of csms sessions (2: its consumer in a child process)",
    )
    parser.add_argument(
        "--sessions-trace-sample-ratio",
        type=float,
        default=0.01,
        help="CSMS_TRACE_SAMPLE_RATIO of csms sessions (its REST requests recorded)",
    )
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
