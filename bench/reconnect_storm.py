"""A reconnect storm: N booted stations all drop their connections, reconnect and boot at once.

One ``csms gateway`` and one ``csms sessions`` (CSMS_UNKNOWN_STATION_POLICY=accept)
on Kafka, Redis and PostgreSQL. The N stations first connect and boot until each is
Accepted; then every station closes its WebSocket, opens a new one and sends a
BootNotification at the same moment. The figure is the time from the storm's start
until every station got Accepted (and the distribution per station). A station
answered otherwise (the gateway's Pending fallback when the sessions service has not
decided within CSMS_DECISION_TIMEOUT_S) boots again after the interval it was given,
as OCPP 2.0.1 B02.FR.01 asks, so the storm does not feed itself.

    uv run python -m bench.reconnect_storm --stations 5000,10000
"""

import argparse
import asyncio
import itertools
import math
import tempfile
from pathlib import Path
from typing import Any

from bench import harness
from bench.harness import Csms, Report, Running

# What the gateway logs when a boot got its fallback (Pending) for want of a decision.
NO_DECISION = ("no decision for BootNotification", "nobody decides BootNotification")


def _outcomes(results: list[dict[str, Any]]) -> str:
    """The boot attempts' outcomes (answers' statuses, failed connections), counted."""
    counts: dict[str, int] = {}
    for result in results:
        for outcome, count in result["outcomes"].items():
            counts[outcome] = counts.get(outcome, 0) + count
    return ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items()))


def _summary(results: list[dict[str, Any]]) -> tuple[float, list[float], int, int]:
    """(seconds until the last Accepted, per-station seconds, accepted, attempts)."""
    started = min(result["started_at"] for result in results)
    accepted = [at - started for result in results for at in result["accepted_at"]]
    attempts = sum(result["attempts"] for result in results)
    return max(accepted, default=math.nan), accepted, len(accepted), attempts


# The kernel's counters of connections a listening socket could not take (machine-wide,
# /proc/net/netstat): an accept queue full (the handshake's last ACK dropped: the station
# waits for TCP's retransmission), SYN cookies sent once the SYN queue is full, and
# cookies that failed (the station's connect is reset).
TCP_COUNTERS = ("ListenOverflows", "SyncookiesSent", "SyncookiesFailed")


def tcp_counters(path: Path = Path("/proc/net/netstat")) -> dict[str, int]:
    """The ``TCP_COUNTERS`` now (none where the file is not there: not Linux)."""
    try:
        lines = [line.split() for line in path.read_text().splitlines()]
    except OSError:
        return {}
    for names, values in itertools.pairwise(lines):
        if names[:1] == ["TcpExt:"] and values[:1] == ["TcpExt:"]:
            counters = dict(zip(names[1:], values[1:], strict=False))
            return {name: int(counters[name]) for name in TCP_COUNTERS if name in counters}
    return {}


class Watch:
    """What the CSMS did during one phase: the sessions consumer's steps and transaction
    sizes, the gateway's fallbacks for want of a boot decision and its refused handshakes,
    and the kernel's listen-queue counters."""

    def __init__(self, csms: Csms, sessions: Running, gateway: Running) -> None:
        self.csms, self.sessions, self.gateway = csms, sessions, gateway
        self.tcp = tcp_counters()
        self.steps = harness.consumer_steps(sessions.port, csms.admin)
        self.sizes = self._sizes()
        self.fallbacks = self._fallbacks()
        self.refused = harness.metric_value(gateway.port, "csms_gateway_handshakes_refused_total")
        self.cpu = self._cpu()

    def _cpu(self) -> tuple[float, float]:
        return harness.cpu_seconds(self.gateway.pid), harness.cpu_seconds(self.sessions.pid)

    def _sizes(self) -> tuple[float, float]:
        name = "csms_consumer_batch_records"
        sums = harness.metric_samples(self.sessions.port, f"{name}_sum", self.csms.admin)
        counts = harness.metric_samples(self.sessions.port, f"{name}_count", self.csms.admin)
        return sum(sums.values()), sum(counts.values())

    def _fallbacks(self) -> int:
        count = 0
        for path in self.csms.log_dir.glob("gw-*.log"):
            with path.open() as log:
                count += sum(1 for line in log if any(text in line for text in NO_DECISION))
        return count

    def since(self, stations: int) -> str:
        """The phase's consumer steps, transactions and fallbacks, and the CPU the gateway
        and the sessions process spent on each of its ``stations``, as one sentence."""
        gateway_s, sessions_s = (
            after - before for after, before in zip(self._cpu(), self.cpu, strict=True)
        )
        records, transactions = (
            after - before for after, before in zip(self._sizes(), self.sizes, strict=True)
        )
        steps = harness.steps_between(
            self.steps, harness.consumer_steps(self.sessions.port, self.csms.admin)
        )
        refused = (
            harness.metric_value(self.gateway.port, "csms_gateway_handshakes_refused_total")
            - self.refused
        )
        tcp = {name: count - self.tcp.get(name, 0) for name, count in tcp_counters().items()}
        kernel = (
            f"; the kernel meanwhile (machine-wide): {tcp.get('ListenOverflows', 0)} handshakes "
            f"found the accept queue full, {tcp.get('SyncookiesSent', 0)} SYN cookies sent, "
            f"{tcp.get('SyncookiesFailed', 0)} failed (a connect reset)"
            if tcp
            else ""
        )
        return (
            f"{transactions:.0f} consumer transactions of {records / max(transactions, 1):.1f} "
            f"records on average; {self._fallbacks() - self.fallbacks} boots without a "
            f"decision in time (the Pending fallback); {refused:.0f} handshakes refused; "
            f"the consumer's steps: {steps}{kernel}; CPU per station: the gateway "
            f"{1000 * gateway_s / stations:.2f} ms, the sessions process "
            f"{1000 * sessions_s / stations:.2f} ms"
        )


async def storm(
    csms: Csms,
    processes_of_csms: tuple[Running, Running],
    stations: int,
    args: argparse.Namespace,
    report: Report,
) -> None:
    sessions, gateway = processes_of_csms
    processes = math.ceil(stations / args.per_process)
    prefix = harness.station_prefix("storm")
    async with harness.workers(gateway.port, prefix, stations, processes) as fleet:
        connected = await fleet.ask(cmd="connect", rate=args.connect_rate)
        watch = Watch(csms, sessions, gateway)
        scans = await harness.table_scans(csms.infra.database_url)
        first = await fleet.ask(cmd="storm", timeout=args.timeout, reconnect=False)
        took, _each, accepted, attempts = _summary(first)
        opened = sum(result["open"] for result in connected)
        report.figure(
            f"{stations} stations: {opened} connected, first boot: {accepted} Accepted "
            f"after {took:.1f} s, {attempts} boot attempts ({_outcomes(first)}); "
            f"{watch.since(stations)}; {await _scans_since(csms, scans)}"
        )
        watch = Watch(csms, sessions, gateway)
        scans = await harness.table_scans(csms.infra.database_url)
        profiling = _profile(args, processes_of_csms, stations)
        results = await fleet.ask(cmd="storm", timeout=args.timeout, reconnect=True)
        took, each, accepted, attempts = _summary(results)
        report.figure(
            f"reconnect storm of {stations} stations ({processes} client processes): "
            f"{accepted}/{stations} Accepted, the last after {took:.1f} s; per station "
            f"p50 {harness.percentile(each, 50):.1f} s, p99 {harness.percentile(each, 99):.1f} s; "
            f"{attempts} boot attempts ({_outcomes(results)}); {watch.since(stations)}; "
            f"{await _scans_since(csms, scans)}"
        )
        report.figure(f"the storm's boots Accepted by second: {_by_second(each)}")
        for name, task in profiling:
            report.note(f"py-spy profile of csms {name} during the storm of {stations}:")
            for line in await task:
                report.note(f"    {line}")
        await fleet.ask(cmd="close")


async def _scans_since(csms: Csms, before: dict[str, harness.TableScans]) -> str:
    """The tables PostgreSQL read whole since ``before`` (a plan gone wrong shows here)."""
    return f"sequential scans: {await harness.scans_since(csms.infra.database_url, before)}"


def _by_second(seconds: list[float]) -> str:
    """How many stations were Accepted in each second of the storm (``0: N, 1: M, ...``)."""
    counts: dict[int, int] = {}
    for at in seconds:
        counts[int(at)] = counts.get(int(at), 0) + 1
    last = max(counts, default=-1)
    return ", ".join(f"{second}: {counts.get(second, 0)}" for second in range(last + 1))


def _profile(
    args: argparse.Namespace, processes_of_csms: tuple[Running, Running], stations: int
) -> list[tuple[str, "asyncio.Task[list[str]]"]]:
    """With ``--profile``: py-spy of both processes for the storm's first seconds."""
    if not args.profile:
        return []
    tasks = []
    for name, running in zip(("sessions", "gateway"), processes_of_csms, strict=True):
        raw = Path(tempfile.gettempdir()) / f"bench-storm-{name}-{stations}.txt"
        profile = harness.profile(running.pid, args.profile_seconds, raw)
        tasks.append((name, asyncio.create_task(profile)))
    return tasks


async def measure(csms: Csms, args: argparse.Namespace, report: Report) -> None:
    processes_of_csms = csms.sessions_and_gateway()
    for stations in args.stations:
        await storm(csms, processes_of_csms, stations, args, report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", default="5000,10000", help="storm sizes, one run each")
    parser.add_argument("--per-process", type=int, default=5000, help="stations per client")
    parser.add_argument("--connect-rate", type=float, default=400.0, help="per client, per s")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after (s)")
    parser.add_argument("--profile", action="store_true", help="py-spy both during the storm")
    parser.add_argument("--profile-seconds", type=float, default=10.0, help="how long")
    harness.common_arguments(parser)
    args = parser.parse_args()
    args.stations = [int(size) for size in args.stations.split(",")]
    if args.smoke:
        args.stations, args.timeout = [10], 60.0
    report = harness.report_for("Reconnect storm", args)
    with harness.running_csms(args) as csms:
        asyncio.run(measure(csms, args, report))
    report.write()


if __name__ == "__main__":
    main()
