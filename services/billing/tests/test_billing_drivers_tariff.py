"""A token that arrives after the session's start (2.0.1 E03: cable plugged in first, the
driver identified in a later Updated event) re-prices the session with the driver's tariff
of the token's group, for all of it, as if the token had come with the start.

Tariffs: the default one, 0.30/kWh; the FLEET-A drivers' one, a 0.50 start fee and
0.20/kWh; both with 20 % VAT. Every session charges 0 -> 10 000 Wh from 09:00 to 10:00.
Default: 10 kWh x 0.30 = 3.00 excl. VAT, 3.60 incl.
Driver's: 0.50 + 10 kWh x 0.20 = 2.50 excl. VAT, 3.00 incl.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from csms_core.router import CallAnswer
from tests.billing_harness import BillingHarness, ended, ocpp_time, started
from tests.billing_kit import component, tariff_body
from tests.waiting import eventually

START = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
DEFAULT = tariff_body("standard", component("ENERGY", "0.30", vat="20"))
FLEET = tariff_body(
    "fleet",
    component("FLAT", "0.50", vat="20"),
    component("ENERGY", "0.20", vat="20"),
    applies_to={"token_group_ids": ["FLEET-A"]},
)
DRIVERS = {"excl_vat": 2.5, "incl_vat": 3.0}
DEFAULTS = {"excl_vat": 3.0, "incl_vat": 3.6}


@pytest.fixture
async def priced(billing: BillingHarness, api: httpx.AsyncClient) -> BillingHarness:
    for tariff_id, body in (("standard", DEFAULT), ("fleet", FLEET)):
        assert (await api.put(f"/tariffs/{tariff_id}", json=body)).status_code == 201
    return billing


def _token(token: str, group_id: str | None) -> dict[str, str]:
    found = {"id_token": token, "type": "ISO14443"}
    return found | ({"group_id": group_id} if group_id else {})


def _identified(session_id: str, at: datetime, token: dict[str, str]) -> dict[str, Any]:
    """``session.updated``: the Updated event that named the driver, 10 minutes in."""
    return {
        "session_id": session_id,
        "transaction_id": session_id,
        "evse_id": 1,
        "energy_wh": 500.0,
        "power_w": 11000.0,
        "updated_at": ocpp_time(at),
        "id_token": token,
    }


def _ended_call(session_id: str) -> dict[str, Any]:
    """The station's TransactionEvent Ended with its stop reading (10 kWh)."""
    sampled = {"value": 10.0, "context": "Transaction.End", "unitOfMeasure": {"unit": "kWh"}}
    return {
        "eventType": "Ended",
        "timestamp": ocpp_time(END),
        "triggerReason": "EVDeparted",
        "seqNo": 2,
        "transactionInfo": {"transactionId": session_id, "stoppedReason": "EVDisconnected"},
        "meterValue": [{"timestamp": ocpp_time(END), "sampledValue": [sampled]}],
    }


async def _total_cost_answered(billing: BillingHarness, session_id: str) -> dict[str, Any] | None:
    call = await billing.call(
        "CP-E3",
        "TransactionEvent",
        _ended_call(session_id),
        version="2.0.1",
        owner="gateway",
        contributors=("billing",),
    )

    async def answered() -> CallAnswer | None:
        mine = [a for a in billing.stations.call_answers if a.message_id == call.data.message_id]
        return mine[0] if mine else None

    answer = await eventually(answered, timeout_s=5)
    return answer.payload


async def _cdr_of(billing: BillingHarness, session_id: str) -> dict[str, Any]:
    closed = ended(session_id, START, END, meter_stop_wh=10_000.0, stop_reason="ev_disconnected")
    await billing.publish("session.ended", "CP-E3", closed)

    async def issued() -> dict[str, Any] | None:
        found = [c for c in billing.cdrs() if c["session_id"] == session_id]
        return found[0] if found else None

    found: dict[str, Any] = await eventually(issued, timeout_s=15)
    return found


async def test_tc_e_03_a_token_after_the_start_prices_the_session_with_the_drivers_tariff(
    priced: BillingHarness,
) -> None:
    """Cable plugged in first: the session starts with no token (the default tariff), the
    driver of FLEET-A identifies 10 minutes in. The Ended answer's totalCost and the CDR are
    the driver's tariff for the whole hour: 3.00 incl. VAT (not 3.60)."""
    billing = priced
    await billing.publish("session.started", "CP-E3", started("s-e3", "CP-E3", START))
    later = _identified("s-e3", START + timedelta(minutes=10), _token("T-FLEET", "FLEET-A"))
    await billing.publish("session.updated", "CP-E3", later)
    await billing.caught_up()
    assert await _total_cost_answered(billing, "s-e3") == {"totalCost": DRIVERS["incl_vat"]}
    cdr = await _cdr_of(billing, "s-e3")
    assert cdr["total_cost"] == DRIVERS
    assert [tariff["id"] for tariff in cdr["tariffs"]] == ["fleet"]
    assert cdr["cdr_token"]["uid"] == "T-FLEET"


@pytest.mark.parametrize("group_id", [None, "NO-TARIFF-GROUP"])
async def test_billing_a_later_token_without_a_drivers_tariff_keeps_the_sessions(
    priced: BillingHarness, group_id: str | None
) -> None:
    billing = priced
    session_id = f"s-{group_id or 'none'}"
    await billing.publish("session.started", "CP-E3", started(session_id, "CP-E3", START))
    later = _identified(session_id, START + timedelta(minutes=10), _token("T-2", group_id))
    await billing.publish("session.updated", "CP-E3", later)
    await billing.caught_up()
    assert await _total_cost_answered(billing, session_id) == {"totalCost": DEFAULTS["incl_vat"]}
    cdr = await _cdr_of(billing, session_id)
    assert (cdr["total_cost"], cdr["tariffs"][0]["id"]) == (DEFAULTS, "standard")
    assert cdr["cdr_token"]["uid"] == "T-2"


async def test_billing_a_token_known_only_at_the_end_prices_the_cdr_as_the_drivers(
    priced: BillingHarness,
) -> None:
    """No Updated named the driver (or billing never read it): the sessions service's
    session.ended does, with its group; the CDR is the driver's tariff all the same."""
    billing = priced
    await billing.publish("session.started", "CP-E3", started("s-end", "CP-E3", START))
    closed = ended("s-end", START, END, meter_stop_wh=10_000.0)
    closed["id_token"] = _token("T-FLEET", "FLEET-A")
    await billing.publish("session.ended", "CP-E3", closed)
    (cdr,) = await billing.wait_for_cdrs(1)
    assert (cdr["total_cost"], cdr["tariffs"][0]["id"]) == (DRIVERS, "fleet")


async def test_billing_a_token_at_the_start_is_not_replaced_later(
    priced: BillingHarness,
) -> None:
    """The token the session started with stays its driver (a later one changes nothing)."""
    billing = priced
    opened = started("s-own", "CP-E3", START, token="T-OWN")
    await billing.publish("session.started", "CP-E3", opened)
    later = _identified("s-own", START + timedelta(minutes=10), _token("T-FLEET", "FLEET-A"))
    await billing.publish("session.updated", "CP-E3", later)
    await billing.caught_up()
    cdr = await _cdr_of(billing, "s-own")
    assert (cdr["total_cost"], cdr["cdr_token"]["uid"]) == (DEFAULTS, "T-OWN")
