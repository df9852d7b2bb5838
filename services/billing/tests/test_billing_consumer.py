"""The billing service consuming the sessions service's events: running cost, CDR, late data."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from csms_core.bus import Delivery
from csms_core.topics import DEAD_LETTER
from tests.billing_harness import BillingHarness, ocpp_time
from tests.waiting import eventually

START = datetime(2024, 5, 6, 15, 0, tzinfo=UTC)  # 17:00 in Amsterdam (summer time)
TARIFF = {
    "tariff": {
        "id": "standard",
        "currency": "EUR",
        "start_date_time": "2024-01-01T00:00:00Z",
        "elements": [
            {"price_components": [{"type": "FLAT", "price": 1.00, "vat": 21, "step_size": 1}]},
            {
                "price_components": [{"type": "ENERGY", "price": 0.50, "vat": 21, "step_size": 1}],
                "restrictions": {"start_time": "07:00", "end_time": "18:00"},
            },
            {"price_components": [{"type": "ENERGY", "price": 0.30, "vat": 21, "step_size": 1}]},
        ],
    },
    "applies_to": {"station_ids": ["CP-7"]},
}


def register(at: datetime, wh: float, context: str = "Sample.Periodic") -> dict[str, Any]:
    return {
        "timestamp": ocpp_time(at),
        "measurand": "Energy.Active.Import.Register",
        "value": wh,
        "unit": "Wh",
        "context": context,
    }


async def start(billing: BillingHarness, session_id: str = "s-1") -> None:
    await billing.publish(
        "session.started",
        "CP-7",
        {
            "session_id": session_id,
            "transaction_id": "tx-1",
            "evse_id": 1,
            "station_id": "CP-7",
            "connector_id": 1,
            "id_token": {"id_token": "TAG-9", "type": "ISO14443"},
            "started_at": ocpp_time(START),
            "meter_start_wh": 1000.0,
        },
    )


async def samples(
    billing: BillingHarness, *values: dict[str, Any], session_id: str = "s-1"
) -> None:
    data = {
        "evse_id": 1,
        "samples": list(values),
        "session_id": session_id,
        "transaction_id": "tx-1",
    }
    await billing.publish("meter.values", "CP-7", data)


async def end(billing: BillingHarness, at: datetime, stop_wh: float) -> None:
    await billing.publish(
        "session.ended",
        "CP-7",
        {
            "session_id": "s-1",
            "transaction_id": "tx-1",
            "evse_id": 1,
            "ended_at": ocpp_time(at),
            "stop_reason": "local",
            "ocpp_stop_reason": "Local",
            "energy_wh": stop_wh - 1000,
            "duration_s": (at - START).total_seconds(),
            "meter_stop_wh": stop_wh,
        },
    )


async def test_tc_i_02_final_cost_is_the_cdrs(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    """The running cost, then the CDR of an ended session (2.0.1 I03 / TC_I_02: the final total
    cost a station is answered with is the CDR's)."""
    assert (await api.put("/tariffs/standard", json=TARIFF)).status_code == 201
    await start(billing)
    # 17:00-18:00 local at 0.50/kWh: 4 kWh; 18:00-18:30 at 0.30/kWh: 2 kWh.
    await samples(billing, register(START + timedelta(hours=1), 5000))
    await billing.caught_up()
    running = (await api.get("/costs/s-1")).json()
    assert running["state"] == "active" and running["tariff_id"] == "standard"
    assert running["total_cost"]["excl_vat"] == 3.0  # 1.00 + 4 x 0.50 so far
    await samples(billing, register(START + timedelta(minutes=90), 7000, "Transaction.End"))
    await end(billing, START + timedelta(minutes=90), 7000)
    (cdr,) = await billing.wait_for_cdrs(1)
    # 1.00 + 4 x 0.50 + 2 x 0.30 = 3.60; x 1.21 = 4.356.
    assert cdr["total_cost"] == {"excl_vat": 3.6, "incl_vat": 4.36}
    assert cdr["session_id"] == "s-1" and cdr["total_energy"] == 6.0
    assert [p["start_date_time"] for p in cdr["charging_periods"]] == [
        "2024-05-06T15:00:00Z",
        "2024-05-06T16:00:00Z",
    ]
    final = (await api.get("/costs/s-1")).json()
    assert (final["state"], final["cdr_id"], final["total_cost"]) == (
        "ended",
        cdr["id"],
        cdr["total_cost"],
    )


async def test_billing_late_meter_values_credit_and_correct(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    assert (await api.put("/tariffs/standard", json=TARIFF)).status_code == 201
    await start(billing)
    await end(billing, START + timedelta(hours=2), 7000)
    (first,) = await billing.wait_for_cdrs(1)
    # Evenly 1000 -> 7000 Wh over 17:00-19:00: 3 kWh at 0.50, 3 at 0.30: 1.00 + 1.50 + 0.90.
    assert first["total_cost"]["excl_vat"] == 3.4
    # Queued samples arrive after the end: 5 kWh were in by 18:00.
    await samples(billing, register(START + timedelta(hours=1), 6000))
    credit, corrected = (await billing.wait_for_cdrs(3))[1:]
    assert credit["credit"] is True and credit["credit_reference_id"] == first["id"]
    assert credit["total_cost"]["excl_vat"] == -3.4
    # 1.00 + 5 x 0.50 + 1 x 0.30 = 3.80.
    assert corrected["total_cost"]["excl_vat"] == 3.8 and "credit" not in corrected
    # The same samples once more: nothing new.
    await samples(billing, register(START + timedelta(hours=1), 6000))
    await billing.caught_up()
    assert len(billing.cdrs()) == 3


async def test_billing_replayed_events_change_nothing(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    assert (await api.put("/tariffs/standard", json=TARIFF)).status_code == 201
    await start(billing)
    await start(billing)  # the sessions service published it again (a new envelope)
    await end(billing, START + timedelta(hours=1), 5000)
    await end(billing, START + timedelta(hours=2), 9000)  # a second end never moves the first
    (cdr,) = await billing.wait_for_cdrs(1)
    await billing.caught_up()
    assert len(billing.cdrs()) == 1
    assert cdr["end_date_time"] == "2024-05-06T16:00:00Z" and cdr["total_energy"] == 4.0


async def test_billing_unreadable_event_is_dead_lettered(billing: BillingHarness) -> None:
    bad = await billing.publish_as_written("session.started", "CP-7", {"session_id": "s-x"})

    async def dead() -> list[Delivery] | None:
        return billing.bus.records(DEAD_LETTER) or None

    (letter,) = await eventually(dead, timeout_s=5)
    assert letter.envelope.data["event"]["id"] == bad.id
    assert letter.envelope.data["group"] == "csms-billing"
    assert "started_at" in letter.envelope.data["error"]  # the reason: what is missing
