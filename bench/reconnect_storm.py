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
import math
from typing import Any

from bench import harness
from bench.harness import Csms, Report


def _summary(results: list[dict[str, Any]]) -> tuple[float, list[float], int, int]:
    """(seconds until the last Accepted, per-station seconds, accepted, attempts)."""
    started = min(result["started_at"] for result in results)
    accepted = [at - started for result in results for at in result["accepted_at"]]
    attempts = sum(result["attempts"] for result in results)
    return max(accepted, default=math.nan), accepted, len(accepted), attempts


async def storm(
    csms: Csms, port: int, stations: int, args: argparse.Namespace, report: Report
) -> None:
    processes = math.ceil(stations / args.per_process)
    prefix = harness.station_prefix("storm")
    async with harness.workers(port, prefix, stations, processes) as fleet:
        connected = await fleet.ask(cmd="connect", rate=args.connect_rate)
        first = await fleet.ask(cmd="storm", timeout=args.timeout, reconnect=False)
        took, _each, accepted, _attempts = _summary(first)
        opened = sum(result["open"] for result in connected)
        report.figure(
            f"{stations} stations: {opened} connected, first boot: {accepted} Accepted "
            f"after {took:.1f} s"
        )
        results = await fleet.ask(cmd="storm", timeout=args.timeout, reconnect=True)
        took, each, accepted, attempts = _summary(results)
        report.figure(
            f"reconnect storm of {stations} stations ({processes} client processes): "
            f"{accepted}/{stations} Accepted, the last after {took:.1f} s; per station "
            f"p50 {harness.percentile(each, 50):.1f} s, p99 {harness.percentile(each, 99):.1f} s; "
            f"{attempts} boot attempts"
        )
        await fleet.ask(cmd="close")


async def measure(csms: Csms, args: argparse.Namespace, report: Report) -> None:
    _sessions, gateway = csms.sessions_and_gateway()
    for stations in args.stations:
        await storm(csms, gateway.port, stations, args, report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", default="5000,10000", help="storm sizes, one run each")
    parser.add_argument("--per-process", type=int, default=5000, help="stations per client")
    parser.add_argument("--connect-rate", type=float, default=400.0, help="per client, per s")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after (s)")
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
