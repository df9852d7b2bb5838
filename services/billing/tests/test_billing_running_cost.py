"""Billing's part of a 2.1 station's running TransactionEvent answers (costs.running): the
running cost of Updated events, a prepaid token's ``transactionLimit.maxCost``, and the
session the station ends itself at that limit (OCPP 2.1 E16, triggerReason
``CostLimitReached``)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from csms_core.events import OcppCall
from csms_core.router import CallAnswer
from tests.billing_harness import BillingHarness, ended, ocpp_time, started
from tests.billing_kit import component, tariff_body
from tests.waiting import eventually

START = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)
# 0.30/kWh + 20 % VAT: 0.36 a kWh as the driver pays it.
TARIFF = tariff_body("flat-energy", component("ENERGY", "0.30", vat="20"))


def _event(
    event_type: str,
    transaction_id: str,
    at: datetime,
    wh: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A 2.1 TransactionEvent with the register reading ``wh`` (if any)."""
    context = {"Started": "Transaction.Begin", "Ended": "Transaction.End"}
    event: dict[str, Any] = {
        "eventType": event_type,
        "timestamp": ocpp_time(at),
        "triggerReason": extra.pop("triggerReason", "MeterValuePeriodic"),
        "seqNo": 1,
        "transactionInfo": {"transactionId": transaction_id, **extra.pop("info", {})},
        **extra,
    }
    if wh is not None:
        sampled = {"value": wh, "context": context.get(event_type, "Sample.Periodic")}
        event["meterValue"] = [{"timestamp": ocpp_time(at), "sampledValue": [sampled]}]
    return event


async def _answer(
    billing: BillingHarness, station_id: str, event: dict[str, Any], owner: str = "gateway"
) -> dict[str, Any]:
    """Billing's part of the answer to ``event``, which the gateway waits for."""
    call = await billing.call(
        station_id, "TransactionEvent", event, owner=owner, contributors=("billing",)
    )
    return await _part_of(billing, call)


async def _part_of(billing: BillingHarness, call: OcppCall) -> dict[str, Any]:
    async def answered() -> CallAnswer | None:
        mine = [a for a in billing.stations.call_answers if a.message_id == call.data.message_id]
        return mine[0] if mine else None

    answer = await eventually(answered, timeout_s=5)
    assert answer.party == "billing"
    return dict(answer.payload or {})


async def _open(billing: BillingHarness, station_id: str, tx: str, token: str | None) -> None:
    opened = started(f"s-{tx}", station_id, START, transaction_id=tx, token=token)
    await billing.publish("session.started", station_id, opened, version="2.1")
    await billing.caught_up()


async def _prepaid(api: httpx.AsyncClient, id_token: str, amount: str) -> None:
    assert (await api.put(f"/prepaid-accounts/{id_token}", json={"currency": "EUR"})).is_success
    topped = await api.post(f"/prepaid-accounts/{id_token}/top-ups", json={"amount": amount})
    assert topped.is_success, topped.text


async def test_i_2_1_updated_answers_carry_the_running_cost(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    """2.1 totalCost "when eventType is Updated: the running cost", incl. VAT, rising with
    the event's own register readings; the Ended answer and the CDR carry the final one."""
    assert (await api.put("/tariffs/flat-energy", json=TARIFF)).status_code == 201
    await _open(billing, "CP-41", "tx-41", token=None)
    at = [START + timedelta(minutes=minutes) for minutes in (10, 20, 30)]
    # 2 kWh x 0.36 = 0.72; 5 kWh = 1.80; the end, 8 kWh = 2.88.
    assert await _answer(billing, "CP-41", _event("Updated", "tx-41", at[0], 2000)) == {
        "totalCost": 0.72
    }
    assert await _answer(billing, "CP-41", _event("Updated", "tx-41", at[1], 5000)) == {
        "totalCost": 1.8
    }
    final = await _answer(billing, "CP-41", _event("Ended", "tx-41", at[2], 8000))
    assert final == {"totalCost": 2.88}
    closed = ended("s-tx-41", START, at[2], transaction_id="tx-41", meter_stop_wh=8000.0)
    await billing.publish("session.ended", "CP-41", closed, version="2.1")
    (cdr,) = await billing.wait_for_cdrs(1)
    assert cdr["total_cost"]["incl_vat"] == final["totalCost"]


async def test_i_2_1_no_running_cost_without_a_tariff_or_a_known_session(
    billing: BillingHarness,
) -> None:
    """Billing's part is empty, and sent at once, when no tariff prices the session or billing
    has not heard of it yet: the gateway need not wait out the bounded wait."""
    await _open(billing, "CP-42", "tx-42", token=None)
    at = START + timedelta(minutes=5)
    assert await _answer(billing, "CP-42", _event("Updated", "tx-42", at, 1000)) == {}
    assert await _answer(billing, "CP-42", _event("Updated", "tx-unknown", at, 1000)) == {}


async def test_e16_a_prepaid_tokens_started_answer_carries_max_cost(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    """2.1 E16: the Started answer of a prepaid token's transaction sets ``maxCost``, what
    the token has left (billing knows the token from the event: the session comes after).
    A station that reports the limit (triggerReason LimitSet) is not sent it again; one
    that reports another limit is; a LimitSet event that names no limit is not answered with
    one again (that could loop)."""
    assert (await api.put("/tariffs/flat-energy", json=TARIFF)).status_code == 201
    await _prepaid(api, "PRE-21", "10.00")
    token = {"idToken": "PRE-21", "type": "ISO14443"}
    begin = _event("Started", "tx-43", START, 0, idToken=token, triggerReason="Authorized")
    assert await _answer(billing, "CP-43", begin, owner="sessions") == {
        "transactionLimit": {"maxCost": 10.0}
    }
    await _open(billing, "CP-43", "tx-43", token="PRE-21")
    held = {"transactionLimit": {"maxCost": 10.0}}
    limit_set = _event("Updated", "tx-43", START, triggerReason="LimitSet", info=held)
    assert await _answer(billing, "CP-43", limit_set) == {"totalCost": 0.0}
    at = START + timedelta(minutes=10)
    other = {"transactionLimit": {"maxCost": 25.0}}
    wrong = _event("Updated", "tx-43", at, 2000, info=other)
    assert await _answer(billing, "CP-43", wrong) == {
        "totalCost": 0.72,
        "transactionLimit": {"maxCost": 10.0},
    }
    silent = _event("Updated", "tx-43", at, 2000, triggerReason="LimitSet")
    assert await _answer(billing, "CP-43", silent) == {"totalCost": 0.72}  # no loop
    stranger = {"idToken": "NOT-PREPAID", "type": "ISO14443"}
    plain = _event("Started", "tx-44", START, 0, idToken=stranger, triggerReason="Authorized")
    assert await _answer(billing, "CP-44", plain, owner="sessions") == {}


async def test_e16_a_token_presented_after_the_start_gets_its_limit(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    """A transaction started without a token (TxStartPoint EVConnected) and authorized later:
    the Updated event that carries the prepaid token gets ``maxCost``."""
    assert (await api.put("/tariffs/flat-energy", json=TARIFF)).status_code == 201
    await _prepaid(api, "PRE-23", "5.00")
    await _open(billing, "CP-50", "tx-50", token=None)
    token = {"idToken": "PRE-23", "type": "ISO14443"}
    at = START + timedelta(minutes=1)
    authorized = _event("Updated", "tx-50", at, 100, idToken=token, triggerReason="Authorized")
    assert await _answer(billing, "CP-50", authorized, owner="sessions") == {
        "totalCost": 0.04,
        "transactionLimit": {"maxCost": 5.0},
    }


async def test_e16_a_session_ended_at_its_cost_limit_settles_the_balance(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    """The station ends the transaction at ``maxCost`` (triggerReason CostLimitReached): the
    Ended answer and the CDR carry the engine's cost, and the account pays exactly that
    (2.00 of 2.00 left: 5.56 kWh x 0.36 = 2.0016, 2.00 once rounded), no stop is sent."""
    assert (await api.put("/tariffs/flat-energy", json=TARIFF)).status_code == 201
    await _prepaid(api, "PRE-22", "2.00")
    await billing.stations.connect("CP-45", "2.1")
    await _open(billing, "CP-45", "tx-45", token="PRE-22")
    end = START + timedelta(minutes=40)
    info = {"stoppedReason": "Other", "transactionLimit": {"maxCost": 2.0}}
    last = _event("Ended", "tx-45", end, 5560, triggerReason="CostLimitReached", info=info)
    assert await _answer(billing, "CP-45", last) == {"totalCost": 2.0}
    closed = ended("s-tx-45", START, end, transaction_id="tx-45", meter_stop_wh=5560.0)
    await billing.publish("session.ended", "CP-45", closed, version="2.1")
    (cdr,) = await billing.wait_for_cdrs(1)
    assert cdr["total_cost"]["incl_vat"] == 2.0

    async def settled() -> dict[str, Any] | None:
        account = (await api.get("/prepaid-accounts/PRE-22")).json()
        return account if account["balance"] == 0 else None

    await eventually(settled, timeout_s=5)
    assert billing.stations.sent("RequestStopTransaction", "CP-45") == []


FLEET = {
    "tariff": {
        "id": "fleet",
        "currency": "EUR",
        "start_date_time": "2024-01-01T00:00:00Z",
        "elements": [{"price_components": [{"type": "ENERGY", "price": 0.20, "step_size": 1}]}],
    },
    "applies_to": {"token_group_ids": ["FLEET"]},
}


async def test_i_2_1_the_authorize_answer_carries_the_drivers_tariff(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    """2.1 AuthorizeResponse ``tariff``: the tariff the driver is priced by, as the 2.1
    TariffType SetDefaultTariff sends (per kWh, VAT as a tax rate): the token group's for a
    driver of the group (its group as billing knows it from the token's sessions), the
    station's for a token billing never saw charge."""
    assert (await api.put("/tariffs/flat-energy", json=TARIFF)).status_code == 201
    assert (await api.put("/tariffs/fleet", json=FLEET)).status_code == 201
    opened = started(
        "s-fleet", "CP-46", START, transaction_id="tx-46", token="DRV-1", group_id="FLEET"
    )
    await billing.publish("session.started", "CP-46", opened, version="2.1")
    await billing.caught_up()

    async def offered(token: str) -> dict[str, Any]:
        request = {"idToken": {"idToken": token, "type": "ISO14443"}}
        call = await billing.call(
            "CP-47", "Authorize", request, owner="sessions", contributors=("billing",)
        )
        return await _part_of(billing, call)

    fleet = (await offered("DRV-1"))["tariff"]
    assert (fleet["tariffId"], fleet["currency"]) == ("fleet.v1", "EUR")
    assert fleet["energy"] == {"prices": [{"priceKwh": 0.2}]}
    default = (await offered("STRANGER"))["tariff"]
    assert default["tariffId"] == "flat-energy.v1"
    assert default["energy"]["prices"] == [{"priceKwh": 0.3}]
    assert default["energy"]["taxRates"] == [{"type": "VAT", "tax": 20.0, "stack": 0}]


async def test_i_2_1_no_tariff_is_offered_where_none_applies(billing: BillingHarness) -> None:
    call = await billing.call(
        "CP-48",
        "Authorize",
        {"idToken": {"idToken": "ANY", "type": "ISO14443"}},
        owner="sessions",
        contributors=("billing",),
    )
    assert await _part_of(billing, call) == {}
