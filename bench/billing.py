"""Billing's consumer rate: ``csms.meter-values`` records stored per second on PostgreSQL.

The billing service reads every meter value of the fleet (``csms.meter-values``), so its
consumer's rate bounds the fleet it can follow. This applies the same records twice to
the real PostgreSQL, through the batched consumer (``csms_core.bus.batching``) with the
billing service's handler:

- ``one_by_one``: one record per transaction (the reference: how billing consumed
  before it was batched);
- ``batched``: the default limits (up to 500 records per transaction, 2 lanes).

Each run has a database of its own, ``--sessions`` live sessions (their
``session.started`` applied first, not timed), then ``--records`` meter.values of one
register sample each, spread over the sessions and 4 partitions. The figure is records
per second; the batched one is quoted as a ratio to the one-by-one one of the same run.

    uv run python -m bench.billing --records 5000 --sessions 200
"""

import argparse
import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_api.access import SCHEMA as ACCESS_SCHEMA
from csms_billing.cdrs.issuer import CdrIssuer
from csms_billing.consumer import TimelineConsumer
from csms_billing.db import SCHEMA
from csms_billing.service import BillingService
from csms_billing.settings import BillingSettings
from csms_core.bus import Delivery
from csms_core.bus.batching import BatchedConsumer, BatchLimits
from csms_core.bus.memory import InMemoryBus
from csms_core.db import create_engine, session_factory
from csms_core.events.data import ocpp_time
from csms_core.identity import SCHEMA as IDENTITY_SCHEMA
from csms_core.router import CommandClient
from csms_core.router.memory import InMemoryRouter
from csms_core.topics import BY_NAME, METER_VALUES, SESSIONS
from tests import cluster

START = datetime(2026, 1, 5, 8, tzinfo=UTC)
PARTITIONS = 4


def _record(topic: str, event_type: str, station_id: str, data: dict[str, Any]) -> bytes:
    event = BY_NAME[topic].parse_object(
        {
            "id": uuid.uuid4().hex,
            "type": event_type,
            "source": "csms/sessions",
            "station_id": station_id,
            "ocpp_version": "2.0.1",
            "data": data,
        }
    )
    return bytes(event.to_bytes())


def _deliveries(sessions: int, records: int) -> tuple[list[Delivery], list[Delivery]]:
    """(the sessions' starts, the meter values): deliveries as a poll brings them."""
    starts, values = [], []
    for index in range(sessions):
        station_id = f"BENCH-{index}"
        data = {
            "session_id": f"s-{index}",
            "transaction_id": f"tx-{index}",
            "evse_id": 1,
            "station_id": station_id,
            "connector_id": 1,
            "id_token": None,
            "started_at": ocpp_time(START),
            "meter_start_wh": 0.0,
        }
        value = _record(SESSIONS, "session.started", station_id, data)
        starts.append(Delivery(SESSIONS, index % PARTITIONS, index, station_id, value))
    for offset in range(records):
        index = offset % sessions
        station_id = f"BENCH-{index}"
        at = START + timedelta(seconds=10 * (offset // sessions + 1))
        sample = {
            "timestamp": ocpp_time(at),
            "measurand": "Energy.Active.Import.Register",
            "value": float(10 * (offset // sessions + 1)),
            "unit": "Wh",
            "context": "Sample.Periodic",
        }
        data = {
            "session_id": f"s-{index}",
            "transaction_id": f"tx-{index}",
            "evse_id": 1,
            "samples": [sample],
        }
        value = _record(METER_VALUES, "meter.values", station_id, data)
        values.append(Delivery(METER_VALUES, index % PARTITIONS, offset, station_id, value))
    return starts, values


@dataclass
class Billing:
    """Billing's handler on the batched consumer, on a PostgreSQL database of its own."""

    settings: BillingSettings
    factory: async_sessionmaker[AsyncSession]
    consumer: BatchedConsumer[Any]
    stopping: asyncio.Event


@asynccontextmanager
async def billing_consumer(server_url: str, limits: BatchLimits) -> AsyncIterator[Billing]:
    """A migrated billing database and the consumer that applies records to it."""
    async with cluster.own_database(server_url, "csms_bench_billing") as database_url:
        settings = BillingSettings(database_url=database_url, environment="development")
        engine = create_engine(database_url, [SCHEMA, IDENTITY_SCHEMA, ACCESS_SCHEMA])
        bus, router = InMemoryBus(), InMemoryRouter()
        try:
            async with router, bus, CommandClient(router, "billing") as commands:
                service = BillingService(
                    settings, bus=bus, router=router, commands=commands, engine=engine
                )
                await service.migrate()
                issuer = CdrIssuer(settings, bus, engine)
                handler = TimelineConsumer(settings, bus, engine, issuer, commands)
                factory = session_factory(engine)
                consumer = BatchedConsumer(bus, "bench-billing", handler, factory, limits)
                yield Billing(settings, factory, consumer, asyncio.Event())
        finally:
            await engine.dispose()


async def _rate(server_url: str, limits: BatchLimits, sessions: int, records: int) -> float:
    """Meter values stored per second by billing's handler under ``limits``."""
    starts, values = _deliveries(sessions, records)
    async with billing_consumer(server_url, limits) as billing:
        await billing.consumer.apply_poll(starts, billing.stopping)
        started = time.perf_counter()
        for poll in _polls(values, limits.max_records):
            await billing.consumer.apply_poll(poll, billing.stopping)
        return records / (time.perf_counter() - started)


def _polls(values: Sequence[Delivery], size: int) -> list[Sequence[Delivery]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


async def main(arguments: argparse.Namespace) -> None:
    server_url = os.environ.get("CSMS_TEST_DATABASE_URL")
    if not server_url:
        raise SystemExit('no PostgreSQL: eval "$(scripts/infra.sh env)" first')
    one_by_one = await _rate(
        server_url, BatchLimits(max_per_transaction=1), arguments.sessions, arguments.records
    )
    batched = await _rate(server_url, BatchLimits(), arguments.sessions, arguments.records)
    load = [f"{value:.2f}" for value in os.getloadavg()]
    print(
        json.dumps(
            {
                "records": arguments.records,
                "sessions": arguments.sessions,
                "one_by_one_per_s": round(one_by_one),
                "batched_per_s": round(batched),
                "batched_over_one_by_one": round(batched / one_by_one, 1),
                "load_average": load,
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--sessions", type=int, default=200)
    asyncio.run(main(parser.parse_args()))
