"""Station CALLs per second through ONE gateway process, durable in Kafka, answered,
side by side with a bare ``websockets`` responder under the same load.

The gateway answers Heartbeat / StatusNotification / MeterValues (2.0.1) itself once
the event is durable in Kafka (acks=all). The bare reference (``bench.bare``) parses
each frame and answers a fixed CALLRESULT: the same WebSocket library and client
load without any of the gateway's work. Both run in this one run, alternating
(bare, gateway, then gateway, bare, ...), and every gateway figure is quoted as a
ratio to the bare one measured next to it: this machine's speed varies by the hour.

Two modes:
- ``--mode open`` (default): client processes send on a fixed schedule, round-robin
  over the stations, whether or not earlier calls were answered; latency runs from
  the *scheduled* send time, so falling behind shows. Each level runs ``--duration``
  seconds; the next level runs only while the gateway kept up (answered ≥ 99 % and
  p99 below ``--max-p99-ms``).
- ``--mode closed``: every station sends its next CALL as soon as the last one was
  answered (e.g. ``--stations 100 --mix meter10``), ``--rounds`` times per target.

With ``--profile`` the gateway is sampled with py-spy during each of its runs.
``--kafka-clients librdkafka,aiokafka`` runs one gateway per producer client
(``CSMS_KAFKA_CLIENT``), each with stations of its own, alternating with the bare
reference and each other in every round: an A/B in the same minutes.

    uv run python -m bench.throughput --rates 1000,2500,5000,10000 --duration 20 --profile
    uv run python -m bench.throughput --mode closed --stations 100 --mix meter10 --rounds 2
    uv run python -m bench.throughput --mode closed --stations 100 --mix meter10 --rounds 2 \
        --kafka-clients librdkafka,aiokafka
    uv run python -m bench.throughput --mode closed --stations 100 --mix meter10 --rounds 2 \
        --baseline-tree ../before   # git worktree add ../before COMMIT; uv sync there
"""

import argparse
import asyncio
import contextlib
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import harness
from bench.fleet import LOAD_MIXES
from bench.harness import Csms, Report, Running, Workers

GOAL_RATIO = 0.30  # issue 10: the gateway at ≥ 30 % of the bare figure


@dataclass(frozen=True)
class Target:
    """A server under load: the gateway or the bare reference, with its stations."""

    name: str
    server: Running
    fleet: Workers
    # Other processes whose CPU the server's load costs (the sessions service beside the
    # gateway: it consumes every stored CALL; the Kafka broker), by name: reported per
    # CALL, not in the ratio. On 2 shared cores their CPU is CPU the gateway does not get.
    helpers: tuple[tuple[str, int], ...] = ()

    @property
    def is_gateway(self) -> bool:
        return self.name.startswith("gateway")


@dataclass(frozen=True)
class Level:
    """What one run against one target measured."""

    achieved: float  # answered CALLs per second
    answered: int
    p50_ms: float
    p99_ms: float
    cpu_ms_per_call: float
    kept_up: bool


async def run_once(target: Target, label: str, args: argparse.Namespace, report: Report) -> Level:
    """One run (an open-loop level at ``args`` rate, or a closed-loop round) on one target."""
    start_at = time.time() + 2.0
    profiling: asyncio.Task[list[str]] | None = None
    if args.profile and target.is_gateway:
        name = "".join(c if c.isalnum() else "-" for c in label)
        raw = Path(tempfile.gettempdir()) / f"bench-throughput-{name}.txt"
        profiling = asyncio.create_task(_profile_later(target.server.pid, args.duration, raw, args))
    cpu_before = harness.cpu_split(target.server.pid)
    threads_before = harness.thread_cpu(target.server.pid)
    helpers_before = [harness.cpu_seconds(pid) for _, pid in target.helpers]
    results = await target.fleet.ask(**_command(args, start_at))
    user, system = (
        after - before
        for after, before in zip(harness.cpu_split(target.server.pid), cpu_before, strict=True)
    )
    threads_used = {
        name: used - threads_before.get(name, 0.0)
        for name, used in harness.thread_cpu(target.server.pid).items()
    }
    helpers_used = [
        harness.cpu_seconds(pid) - before
        for (_, pid), before in zip(target.helpers, helpers_before, strict=True)
    ]
    level = _report(report, f"{target.name}, {label}", start_at, results, args, (user, system))
    if len(threads_used) > 1:
        per_thread = ", ".join(
            f"{name} {1000 * used / max(level.answered, 1):.3f} ms"
            for name, used in sorted(threads_used.items(), key=lambda item: -item[1])
            if used > 0
        )
        report.figure(f"{target.name}, {label}: its CPU per answered CALL by thread: {per_thread}")
    if target.helpers:
        beside = ", ".join(
            f"{name} {1000 * used / max(level.answered, 1):.3f} ms"
            for (name, _), used in zip(target.helpers, helpers_used, strict=True)
        )
        report.figure(f"{target.name}, {label}: CPU per answered CALL beside it: {beside}")
    if profiling is not None:
        report.note(f"py-spy profile of the gateway, {label}:")
        for line in await profiling:
            report.note(f"    {line}")
    return level


def _command(args: argparse.Namespace, start_at: float) -> dict[str, Any]:
    if args.mode == "closed":
        return {"cmd": "closed", "start_at": start_at, "duration": args.duration, "mix": args.mix}
    per_process = args.rate / args.clients
    return {
        "cmd": "load",
        "start_at": start_at,
        "rate": per_process,
        "duration": args.duration,
        "mix": args.mix,
    }


async def _profile_later(
    pid: int, duration: float, raw: Path, args: argparse.Namespace
) -> list[str]:
    await asyncio.sleep(3.0)  # 2 s to the start + 1 s of warm-up
    seconds = max(1.0, duration - 2.0)
    return await harness.profile(
        pid, seconds, raw, gil=args.profile_gil, native=args.profile_native
    )


def _report(
    report: Report,
    label: str,
    start_at: float,
    results: list[dict[str, Any]],
    args: argparse.Namespace,
    cpu: tuple[float, float],
) -> Level:
    sent = sum(result["sent"] for result in results)
    answered = sum(result["answered"] for result in results)
    errors = sum(result["errors"] for result in results)
    latencies = [value for result in results for value in result["latencies_ms"]]
    last = max((result["last_answer_at"] for result in results), default=start_at)
    elapsed = max(last - start_at, 1e-9)
    achieved = answered / elapsed
    p50, p99 = harness.percentile(latencies, 50), harness.percentile(latencies, 99)
    client_lag = max(result["max_send_lag_ms"] for result in results)
    cpu_s = sum(cpu)
    cpu_ms = 1000 * cpu_s / max(answered, 1)
    user_ms, system_ms = (1000 * part / max(answered, 1) for part in cpu)
    report.figure(
        f"{label}: achieved {achieved:.0f}/s ({answered}/{sent} answered, {errors} CALLERRORs), "
        f"CALLRESULT latency p50 {p50:.1f} ms, p99 {p99:.1f} ms, max "
        f"{max(latencies, default=0):.1f} ms; server CPU {100 * cpu_s / elapsed:.0f}% of one "
        f"core, {cpu_ms:.3f} ms per answered CALL (user {user_ms:.3f}, system {system_ms:.3f}); "
        f"max client send lag {client_lag:.0f} ms"
    )
    kept_up = answered >= 0.99 * sent and p99 <= args.max_p99_ms
    return Level(achieved, answered, p50, p99, cpu_ms, kept_up)


def report_ratio(report: Report, label: str, gateway: Level, bare: Level) -> float:
    ratio = gateway.achieved / max(bare.achieved, 1e-9)
    report.figure(
        f"ratio gateway / bare, {label}: throughput {100 * ratio:.1f} % (goal ≥ "
        f"{100 * GOAL_RATIO:.0f} %); CPU per CALL {gateway.cpu_ms_per_call:.3f} / "
        f"{bare.cpu_ms_per_call:.3f} ms = "
        f"{gateway.cpu_ms_per_call / max(bare.cpu_ms_per_call, 1e-9):.1f} times; p99 "
        f"{gateway.p99_ms:.1f} / {bare.p99_ms:.1f} ms"
    )
    return ratio


async def alternate(
    targets: list[Target], label: str, round_number: int, args: argparse.Namespace, report: Report
) -> dict[str, Level]:
    """Run every target once, in an order that alternates from round to round."""
    order = targets if round_number % 2 == 0 else list(reversed(targets))
    return {target.name: await run_once(target, label, args, report) for target in order}


async def open_loop(targets: list[Target], args: argparse.Namespace, report: Report) -> None:
    for number, rate in enumerate(args.rates):
        args.rate = rate
        levels = await alternate(targets, f"open loop {rate:.0f}/s", number, args, report)
        gateways = {name: level for name, level in levels.items() if name != "bare"}
        if "bare" in levels:
            for name, level in gateways.items():
                report_ratio(report, f"{name}, {rate:.0f}/s offered", level, levels["bare"])
        if not all(level.kept_up for level in gateways.values()):
            report.note(f"stopped after {rate:.0f}/s: a gateway did not keep up")
            return


async def closed_loop(targets: list[Target], args: argparse.Namespace, report: Report) -> None:
    ratios: dict[str, list[float]] = {}
    for number in range(args.rounds):
        label = f"closed loop, {args.stations} stations, {args.mix}, round {number + 1}"
        levels = await alternate(targets, label, number, args, report)
        if "bare" not in levels:
            continue
        for name, level in levels.items():
            if name != "bare":
                ratio = report_ratio(report, f"{name}, {label}", level, levels["bare"])
                ratios.setdefault(name, []).append(ratio)
    for name, values in ratios.items():
        if len(values) > 1:
            report.figure(
                f"closed loop ratio of {name} over {len(values)} rounds: min "
                f"{100 * min(values):.1f} %, max {100 * max(values):.1f} % (goal ≥ "
                f"{100 * GOAL_RATIO:.0f} %)"
            )


@contextlib.asynccontextmanager
async def _target(
    name: str,
    server: Running,
    args: argparse.Namespace,
    helpers: tuple[tuple[str, int], ...] = (),
) -> AsyncIterator[Target]:
    prefix = harness.station_prefix(f"tput{name[:4]}")
    async with harness.workers(server.port, prefix, args.stations, args.clients) as fleet:
        connected = await fleet.ask(cmd="connect", rate=500)
        boots = await fleet.ask(cmd="boot", timeout=30)
        statuses: dict[str, int] = {}
        for boot in boots:
            for status, count in boot["statuses"].items():
                statuses[status] = statuses.get(status, 0) + count
        report_line = f"{sum(c['open'] for c in connected)} stations (OCPP 2.0.1) on {name}"
        print(f"{report_line}, boots {statuses}", flush=True)
        try:
            yield Target(name, server, fleet, helpers)
        finally:
            await fleet.ask(cmd="close")


async def measure(
    csms: Csms, bare: Running | None, args: argparse.Namespace, report: Report
) -> None:
    # A sessions service decides the boots: a station whose boot got the gateway's Pending
    # fallback may send nothing but what OCPP allows while Pending (SecurityError otherwise).
    # The gateway's default decision timeout: a loaded sessions service may need seconds.
    sessions = csms.sessions()
    helpers = [("sessions", sessions.pid)]
    broker = harness.bench_kafka_pid(csms.infra.kafka_bootstrap)
    if broker is not None:
        helpers.append(("Kafka broker", broker))
    limits = abuse_bounds(args)
    env = {"CSMS_TRACE_SAMPLE_RATIO": str(args.trace_sample_ratio), **limits}
    if args.kafka_clients:
        gateways = {
            f"gateway ({client})": csms.gateway(**env, CSMS_KAFKA_CLIENT=client)
            for client in args.kafka_clients
        }
    else:
        gateways = {"gateway": csms.gateway(**env)}
    for label, variant in args.variants:
        gateways[f"gateway ({label})"] = csms.gateway(**env, **variant)
    if args.baseline_tree is not None:
        baseline = csms.gateway_from(args.baseline_tree, **env, **args.baseline_env)
        gateways[f"gateway (baseline {args.baseline_commit})"] = baseline
    async with contextlib.AsyncExitStack() as stack:
        targets = []
        if bare is not None:
            targets.append(await stack.enter_async_context(_target("bare", bare, args)))
        for name, gateway in gateways.items():
            targets.append(
                await stack.enter_async_context(_target(name, gateway, args, tuple(helpers)))
            )
        report.figure(
            f"{args.stations} stations (OCPP 2.0.1) per server over {args.clients} client "
            f"processes, mix {args.mix}, {args.mode} loop, gateway trace sample ratio "
            f"{args.trace_sample_ratio}; gateway abuse bounds "
            f"{' '.join(f'{name}={value}' for name, value in limits.items())} (the rest at "
            f"their defaults); servers: {', '.join(target.name for target in targets)}"
        )
        await (closed_loop if args.mode == "closed" else open_loop)(targets, args, report)


def _variant(parser: argparse.ArgumentParser, spec: str) -> tuple[str, dict[str, str]]:
    """``--variant``'s label and settings; a usage error for a malformed one."""
    label, _, assignments = spec.partition(":")
    settings = dict(item.partition("=")[::2] for item in assignments.split(",") if item)
    if not label or not settings or not all(name.startswith("CSMS_") for name in settings):
        parser.error(f"--variant {spec!r}: expected LABEL:CSMS_NAME=VALUE[,CSMS_NAME=VALUE]")
    return label, settings


# The gateway's defaults (GatewaySettings) that would refuse this benchmark's own load.
PRODUCTION_RATE_PER_S = 20.0
PRODUCTION_CONNECTIONS_PER_ADDRESS = 1000


def abuse_bounds(args: argparse.Namespace) -> dict[str, str]:
    """The gateway's abuse bounds for this run: the production defaults (the limiters on,
    their bookkeeping paid per CALL), raised only where they would refuse the benchmark's
    legitimate load. A closed-loop station sends its next CALL as soon as the last one
    is answered (tens to hundreds per second, above the default 20/s per connection: the
    bucket stays on at a rate it never reaches); every station comes from 127.0.0.1 (at
    most 1,000 connections per address by default)."""
    bounds = {}
    if args.mode == "closed" or max(args.rates) / max(args.stations, 1) > PRODUCTION_RATE_PER_S:
        bounds["CSMS_STATION_RATE_PER_S"] = "100000"
    else:
        bounds["CSMS_STATION_RATE_PER_S"] = f"{PRODUCTION_RATE_PER_S:g}"
    if args.stations > PRODUCTION_CONNECTIONS_PER_ADDRESS:
        bounds["CSMS_MAX_CONNECTIONS_PER_ADDRESS"] = str(args.stations)
    else:
        bounds["CSMS_MAX_CONNECTIONS_PER_ADDRESS"] = str(PRODUCTION_CONNECTIONS_PER_ADDRESS)
    return bounds


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", default="open", choices=["open", "closed"])
    parser.add_argument("--rates", default="1000,2500,5000,10000", help="open loop: CALLs/s")
    parser.add_argument("--rounds", type=int, default=2, help="closed loop: runs per server")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per run")
    parser.add_argument("--stations", type=int, default=2000, help="stations per server")
    parser.add_argument("--clients", type=int, default=2, help="client processes per server")
    parser.add_argument("--mix", default="mixed", choices=sorted(LOAD_MIXES))
    parser.add_argument("--max-p99-ms", type=float, default=1000.0)
    parser.add_argument(
        "--no-reference", action="store_true", help="only the gateway (no bare reference)"
    )
    parser.add_argument(
        "--trace-sample-ratio",
        type=float,
        default=0.01,
        help="the gateway's CSMS_TRACE_SAMPLE_RATIO (share of station messages traced)",
    )
    parser.add_argument(
        "--kafka-clients",
        default="",
        help="e.g. librdkafka,aiokafka: one gateway per producer client (CSMS_KAFKA_CLIENT), "
        "alternating (default: one gateway on the default client)",
    )
    parser.add_argument(
        "--variant",
        dest="variant_specs",
        action="append",
        default=[],
        metavar="LABEL:NAME=VALUE[,NAME=VALUE]",
        help="one more gateway with these settings, e.g. 'linger 2 ms:CSMS_KAFKA_LINGER_MS=2', "
        "alternating with the default one (repeatable)",
    )
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        help="a checkout of another commit (with its .venv: uv sync there): one more gateway "
        "run from it, alternating with this checkout's (a before/after in one run)",
    )
    parser.add_argument(
        "--baseline-env",
        dest="baseline_spec",
        default="",
        metavar="NAME=VALUE[,NAME=VALUE]",
        help="settings of the --baseline-tree gateway only, e.g. a database of its own "
        "(CSMS_DATABASE_URL=sqlite+aiosqlite:////tmp/before.db) where its schema is older",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the gateway per run")
    parser.add_argument(
        "--profile-gil",
        action="store_true",
        help="with --profile: count only samples holding the GIL (Python, no system calls)",
    )
    parser.add_argument(
        "--profile-native",
        action="store_true",
        help="with --profile: sample the C frames too (py-spy --native)",
    )
    harness.common_arguments(parser)
    args = parser.parse_args()
    args.rates = [float(rate) for rate in args.rates.split(",")]
    args.kafka_clients = [client for client in args.kafka_clients.split(",") if client]
    args.variants = [_variant(parser, spec) for spec in args.variant_specs]
    args.baseline_env = (
        _variant(parser, f"baseline:{args.baseline_spec}")[1] if args.baseline_spec else {}
    )
    if args.baseline_tree is not None:
        args.baseline_commit = subprocess.run(
            ["git", "-C", str(args.baseline_tree), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    if args.smoke:
        args.rates, args.duration, args.stations, args.clients = [50.0], 2.0, 10, 1
        args.rounds = 1
    return args


def main() -> None:
    args = parse_arguments()
    title = f"Station CALLs per second through one gateway ({args.mode} loop, vs bare)"
    report = harness.report_for(title, args)
    with harness.running_csms(args) as csms, contextlib.ExitStack() as stack:
        bare = None if args.no_reference else stack.enter_context(harness.bare_reference())
        asyncio.run(measure(csms, bare, args, report))
    report.write()


if __name__ == "__main__":
    main()
