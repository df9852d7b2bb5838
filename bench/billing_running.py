"""Billing's running part of 2.1 answers: Updated events answered per second on PostgreSQL.

Every TransactionEvent Updated of a 2.1 station reaches billing, which answers its part
(the running cost, ``costs.running``) within the gateway's bounded wait (2 s). This
applies the same Updated CALLs (``ocpp.inbound`` records naming billing a contributor,
one register reading each) through the batched consumer with billing's handler, to the
real PostgreSQL, twice:

- ``unpriced`` (the reference): no tariff prices the sessions, so each answer is ``{}``
  after one lookup: what billing costs a station whose sessions are not priced;
- ``priced``: a default tariff (a start fee, energy by time of day, VAT) prices them, so
  each answer is the engine's running cost from the session's stored samples and the
  event's reading.

Each run has a database of its own with ``--sessions`` live sessions of ``--samples``
stored register samples each (not timed), then ``--calls`` Updated CALLs spread over the
sessions and 4 partitions. The figure is answers per second (and ms per answer); the
priced one is quoted as a ratio to the unpriced one of the same run.

    uv run python -m bench.billing_running --calls 2000 --sessions 200 --samples 10
"""

import argparse
import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.billing import PARTITIONS, START, _deliveries, _polls, billing_consumer
from csms_billing.tariffs.service import TariffPut, put_tariff
from csms_core.bus import Delivery
from csms_core.bus.batching import BatchLimits
from csms_core.db import transaction
from csms_core.events import InboundCall, OcppCall
from csms_core.events.data import ocpp_time
from csms_core.topics import OCPP_INBOUND

TARIFF = {
    "tariff": {
        "id": "bench",
        "currency": "EUR",
        "start_date_time": "2025-01-01T00:00:00Z",
        "elements": [
            {"price_components": [{"type": "FLAT", "price": 0.50, "vat": 20, "step_size": 1}]},
            {
                "price_components": [{"type": "ENERGY", "price": 0.20, "vat": 20, "step_size": 1}],
                "restrictions": {"end_time": "18:00"},
            },
            {"price_components": [{"type": "ENERGY", "price": 0.30, "vat": 20, "step_size": 1}]},
        ],
    },
    "applies_to": {"default": True},
}


def _updated_calls(sessions: int, samples: int, calls: int) -> list[Delivery]:
    """2.1 TransactionEvent Updated CALLs, each after the session's stored samples."""
    deliveries = []
    for offset in range(calls):
        index = offset % sessions
        step = samples + offset // sessions + 1
        at = START + timedelta(seconds=10 * step)
        payload: dict[str, Any] = {
            "eventType": "Updated",
            "timestamp": ocpp_time(at),
            "triggerReason": "MeterValuePeriodic",
            "seqNo": step,
            "transactionInfo": {"transactionId": f"tx-{index}"},
            "meterValue": [{"timestamp": ocpp_time(at), "sampledValue": [{"value": 10.0 * step}]}],
        }
        call = OcppCall(
            id=uuid.uuid4().hex,
            source="csms/gateway/gw-bench",
            station_id=f"BENCH-{index}",
            ocpp_version="2.1",
            data=InboundCall(
                gateway_id="gw-bench",
                connection_id="c-1",
                action="TransactionEvent",
                message_id=uuid.uuid4().hex[:8],
                payload=payload,
                received_at=datetime.now(UTC),
                owner="gateway",
                contributors=["billing"],
            ),
        )
        station_id = f"BENCH-{index}"
        deliveries.append(
            Delivery(OCPP_INBOUND, index % PARTITIONS, offset, station_id, call.to_bytes())
        )
    return deliveries


async def _rate(server_url: str, priced: bool, arguments: argparse.Namespace) -> float:
    """Updated CALLs answered per second by billing's handler."""
    starts, stored = _deliveries(arguments.sessions, arguments.sessions * arguments.samples)
    updated = _updated_calls(arguments.sessions, arguments.samples, arguments.calls)
    limits = BatchLimits()
    async with billing_consumer(server_url, limits) as billing:
        if priced:
            async with transaction(billing.factory) as session:
                body = TariffPut.model_validate(TARIFF)
                await put_tariff(session, billing.settings, "bench", body, START)
        await billing.consumer.apply_poll(starts, billing.stopping)
        for poll in _polls(stored, limits.max_records):
            await billing.consumer.apply_poll(poll, billing.stopping)
        began = time.perf_counter()
        for poll in _polls(updated, limits.max_records):
            await billing.consumer.apply_poll(poll, billing.stopping)
        rate: float = arguments.calls / (time.perf_counter() - began)
        return rate


async def main(arguments: argparse.Namespace) -> None:
    server_url = os.environ.get("CSMS_TEST_DATABASE_URL")
    if not server_url:
        raise SystemExit('no PostgreSQL: eval "$(scripts/infra.sh env)" first')
    before = [f"{value:.2f}" for value in os.getloadavg()]
    unpriced = await _rate(server_url, False, arguments)
    priced = await _rate(server_url, True, arguments)
    after = [f"{value:.2f}" for value in os.getloadavg()]
    print(
        json.dumps(
            {
                "calls": arguments.calls,
                "sessions": arguments.sessions,
                "stored_samples_per_session": arguments.samples,
                "unpriced_per_s": round(unpriced),
                "priced_per_s": round(priced),
                "priced_ms_per_answer": round(1000 / priced, 2),
                "priced_over_unpriced": round(priced / unpriced, 2),
                "load_average_before": before,
                "load_average_after": after,
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--samples", type=int, default=10)
    asyncio.run(main(parser.parse_args()))
