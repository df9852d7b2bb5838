"""One sessions transaction of status reports, in process, against PostgreSQL: its time
and its statements, the batch's closing writes as one statement against one each.

The sessions consumer's handler (``InboundConsumer``) on the batched consumer
(``BatchedConsumer.apply_poll``), with the in-memory bus and router (its answers and
events go nowhere), applies polls of ``--records`` 2.0.1 StatusNotifications of
``--stations`` stations, one transaction each, over a database of this run's own. The
closing writes (last-seen times, connector statuses, inbox rows: ``csms_core.db.Writes``)
run as one statement, and, for reference in the same run, one statement each (as before
issue 10's stop 24); the two alternate, ``--rounds`` times ``--transactions`` polls each,
so that a machine whose speed changes from minute to minute changes both alike. Reported:
wall time per transaction (p50, p99), statements per transaction, and the ratio.

    uv run python -m bench.consumer_transaction --records 80 --transactions 200 --rounds 4
"""

import argparse
import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from bench import harness
from bench.event_lag import backlog_records
from bench.harness import Report
from csms_api.access import migrate_access
from csms_cli.runtime import tune_gc
from csms_core import db
from csms_core.bus import Delivery
from csms_core.bus.batching import BatchedConsumer, BatchLimits
from csms_core.bus.memory import InMemoryBus
from csms_core.identity import migrate_identity
from csms_core.loop import run
from csms_core.router import CommandClient
from csms_core.router.memory import InMemoryRouter
from csms_core.telemetry import unsampled_trace_headers
from csms_sessions.consumer import InboundConsumer
from csms_sessions.db import SCHEMA, migrate_sessions
from csms_sessions.settings import SessionsSettings

VARIANTS = ("one statement", "one statement each")


async def _one_each(self: db.Writes, session: AsyncSession) -> None:
    """The reference: every part of the closing writes a statement (a round trip) of its own."""
    parts, self.parts = self.parts, []
    for part in parts:
        await session.exec(part.statement, params=part.params)  # type: ignore[call-overload]


@contextmanager
def variant(name: str) -> Iterator[None]:
    together = db.Writes.run
    if name == "one statement each":
        db.Writes.run = _one_each  # type: ignore[method-assign]
    try:
        yield
    finally:
        db.Writes.run = together  # type: ignore[method-assign]


def deliveries(station_ids: list[str], count: int) -> list[Delivery]:
    """``count`` StatusNotifications, as the consumer reads them from ``ocpp.inbound``."""
    gateway = f"gw-{uuid.uuid4().hex[:6]}"
    return [
        Delivery(
            record.topic,
            0,
            offset,
            record.event.station_id,
            record.event.to_bytes(),
            unsampled_trace_headers(),  # as the gateway writes them (a trace not sampled)
        )
        for offset, record in enumerate(backlog_records(station_ids, count, gateway))
    ]


def statement_counter(engine: AsyncEngine) -> list[int]:
    count = [0]

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def counted(*_args: Any) -> None:
        count[0] += 1

    return count


async def measure(args: argparse.Namespace, report: Report, database_url: str) -> None:
    engine = db.create_engine(database_url, [SCHEMA])
    try:
        await migrate_identity(engine)
        await migrate_access(engine)
        await migrate_sessions(engine)
        settings = SessionsSettings(database_url=database_url, environment="development")
        bus, router = InMemoryBus(), InMemoryRouter()
        commands = CommandClient(router, "bench")
        consumer = InboundConsumer(settings, bus, commands, engine)
        batched = BatchedConsumer(
            bus,
            "bench-transaction",
            consumer,
            db.session_factory(engine),
            BatchLimits(max_per_transaction=args.records, lanes=1),
        )
        stopping = asyncio.Event()
        stations = [f"{harness.station_prefix('tx')}{n:05d}" for n in range(args.stations)]
        # The stations and their connectors stored first (a first status makes the row).
        for first in range(0, len(stations), args.records):
            chunk = stations[first : first + args.records]
            await batched.apply_poll(deliveries(chunk, len(chunk)), stopping)
        statements = statement_counter(engine)
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        counts: dict[str, int] = dict.fromkeys(VARIANTS, 0)
        for _round in range(args.rounds):
            for name in VARIANTS:
                polls = [deliveries(stations, args.records) for _ in range(args.transactions)]
                with variant(name):
                    before = statements[0]
                    for poll in polls:
                        started = time.perf_counter()
                        await batched.apply_poll(poll, stopping)
                        times[name].append((time.perf_counter() - started) * 1000)
                    counts[name] += statements[0] - before
        for name in VARIANTS:
            samples = times[name]
            report.figure(
                f"{args.records} StatusNotifications per transaction, closing writes as "
                f"{name}: p50 {harness.percentile(samples, 50):.2f} ms, p99 "
                f"{harness.percentile(samples, 99):.2f} ms per transaction "
                f"({len(samples)} transactions), "
                f"{counts[name] / len(samples):.1f} statements per transaction"
            )
        together, each = (harness.percentile(times[name], 50) for name in VARIANTS)
        report.figure(f"one statement / one each, p50: {together / each:.2f}")
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=80, help="StatusNotifications per poll")
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--transactions", type=int, default=200, help="per variant and round")
    parser.add_argument("--rounds", type=int, default=4)
    harness.common_arguments(parser)
    args = parser.parse_args()
    if args.smoke:
        args.records, args.stations, args.transactions, args.rounds = 10, 20, 5, 1
    report = harness.report_for("Consumer transaction: closing writes in one statement", args)
    database_url = harness.new_database(harness.shared_infra().database_url)
    try:
        tune_gc()  # as in the services' processes, and on their event loop
        run(measure(args, report, database_url))
    finally:
        harness.drop_database(database_url)
    report.write()


if __name__ == "__main__":
    main()
