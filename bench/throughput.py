"""Station CALLs per second through ONE gateway process, durable in Kafka, answered.

Open loop: client processes send Heartbeat / StatusNotification / MeterValues (2.0.1)
on a fixed schedule, round-robin over the stations, whether or not earlier calls were
answered. The gateway answers these itself once the event is durable in Kafka
(acks=all). Latency runs from the *scheduled* send time to the CALLRESULT, so a
client or gateway that falls behind shows up in the figures.

Each level runs ``--duration`` seconds; the next level runs only while the last one
kept up (answered ≥ 99 % and p99 below ``--max-p99-ms``). With ``--profile`` the gateway
is sampled with py-spy during the highest level and the top frames are recorded.

    uv run python -m bench.throughput --rates 1000,2500,5000,10000 --duration 20 --profile
"""

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import harness
from bench.harness import Csms, Report, Workers


async def run_level(
    fleet: Workers, rate: float, args: argparse.Namespace, report: Report, gateway_pid: int
) -> bool:
    """One level; whether it kept up."""
    start_at = time.time() + 2.0
    per_process = rate / len(fleet.workers)
    profiling: asyncio.Task[list[str]] | None = None
    if args.profile:
        raw = Path(tempfile.gettempdir()) / f"bench-throughput-{int(rate)}.txt"
        profiling = asyncio.create_task(_profile_later(gateway_pid, args.duration, raw))
    cpu_before = _cpu_seconds(gateway_pid)
    results = await fleet.ask(
        cmd="load", start_at=start_at, rate=per_process, duration=args.duration, mix=args.mix
    )
    cpu_used = _cpu_seconds(gateway_pid) - cpu_before
    kept_up = _report_level(report, rate, start_at, results, args, cpu_used)
    if profiling is not None:
        lines = await profiling
        report.note(f"py-spy profile of the gateway at {rate:.0f}/s:")
        for line in lines:
            report.note(f"    {line}")
    return kept_up


async def _profile_later(pid: int, duration: float, raw: Path) -> list[str]:
    await asyncio.sleep(3.0)  # 2 s to the start + 1 s of warm-up
    return await harness.profile(pid, max(1.0, duration - 2.0), raw)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


def _report_level(
    report: Report,
    rate: float,
    start_at: float,
    results: list[dict[str, Any]],
    args: argparse.Namespace,
    gateway_cpu_s: float,
) -> bool:
    sent = sum(result["sent"] for result in results)
    answered = sum(result["answered"] for result in results)
    errors = sum(result["errors"] for result in results)
    latencies = [value for result in results for value in result["latencies_ms"]]
    last = max((result["last_answer_at"] for result in results), default=start_at)
    achieved = answered / max(last - start_at, 1e-9)
    p50, p99 = harness.percentile(latencies, 50), harness.percentile(latencies, 99)
    client_lag = max(result["max_send_lag_ms"] for result in results)
    report.figure(
        f"target {rate:.0f}/s for {args.duration:.0f} s: achieved {achieved:.0f}/s "
        f"({answered}/{sent} answered, {errors} CALLERRORs), CALLRESULT latency "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies, default=0):.1f} ms; "
        f"gateway CPU {100 * gateway_cpu_s / (last - start_at):.0f}% of one core, "
        f"{1000 * gateway_cpu_s / max(answered, 1):.2f} ms per answered CALL; "
        f"max client send lag {client_lag:.0f} ms"
    )
    max_p99_ms: float = args.max_p99_ms
    return answered >= 0.99 * sent and p99 <= max_p99_ms


async def measure(csms: Csms, args: argparse.Namespace, report: Report) -> None:
    gateway = csms.gateway(CSMS_DECISION_TIMEOUT_S="2")
    prefix = harness.station_prefix("tput")
    async with harness.workers(gateway.port, prefix, args.stations, args.clients) as fleet:
        connected = await fleet.ask(cmd="connect", rate=500)
        await fleet.ask(cmd="boot", timeout=30)
        report.figure(
            f"{sum(c['open'] for c in connected)} stations (OCPP 2.0.1) over "
            f"{args.clients} client processes, mix {args.mix}"
        )
        for rate in args.rates:
            if not await run_level(fleet, rate, args, report, gateway.pid):
                report.note(f"stopped after {rate:.0f}/s: it did not keep up")
                break
        await fleet.ask(cmd="close")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="1000,2500,5000,10000", help="CALLs/s per level")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per level")
    parser.add_argument("--stations", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--mix", default="mixed", choices=["mixed", "heartbeat", "status"])
    parser.add_argument("--max-p99-ms", type=float, default=1000.0)
    parser.add_argument("--profile", action="store_true", help="py-spy the gateway per level")
    harness.common_arguments(parser)
    args = parser.parse_args()
    args.rates = [float(rate) for rate in args.rates.split(",")]
    if args.smoke:
        args.rates, args.duration, args.stations, args.clients = [50.0], 2.0, 10, 1
    report = harness.report_for("Station CALLs per second through one gateway", args)
    with harness.running_csms(args) as csms:
        asyncio.run(measure(csms, args, report))
    report.write()


if __name__ == "__main__":
    main()
