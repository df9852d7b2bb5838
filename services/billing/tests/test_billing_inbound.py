"""The 2.1 station CALLs billing learns from, as they arrive on ocpp.inbound."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlmodel import select

from csms_billing.inbox import ProcessedEvent
from csms_billing.payments.models import Settlement
from csms_billing.sessions.models import BilledSession
from csms_core.router import CallAnswer
from tests.billing_harness import BillingHarness, ended, ocpp_time, started
from tests.billing_kit import component, tariff_body
from tests.waiting import eventually

START = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)
TARIFF = tariff_body("flat-energy", component("ENERGY", "0.30", vat="20"))


async def _rows(billing: BillingHarness, model: Any) -> list[Any]:
    async with billing.service.factory() as session:
        return list(await session.exec(select(model)))


async def test_billing_notify_settlement_is_kept_with_a_receipt(
    billing: BillingHarness, public: httpx.AsyncClient
) -> None:
    """Nobody waits for billing's part (it was not announced): the settlement is still
    kept, with a receipt; billing sends no part of the answer."""
    settled = {
        "transactionId": "tx-9",
        "pspRef": "PSP-1",
        "status": "Settled",
        "settlementAmount": 7.5,
        "settlementTime": "2024-05-06T10:00:00Z",
    }
    await billing.call("CP-T", "NotifySettlement", settled)
    await billing.caught_up()
    (settlement,) = await _rows(billing, Settlement)
    receipt = (await public.get(f"/receipts/{settlement.receipt_id}")).json()
    assert (receipt["psp_ref"], receipt["amount"], receipt["station_id"]) == ("PSP-1", 7.5, "CP-T")
    assert (receipt["cdr_id"], receipt["charge"]) == (None, None)  # no such session
    assert billing.stations.call_answers == []


async def test_billing_notify_settlement_answers_the_receipt_and_names_the_cdr(
    billing: BillingHarness, api: httpx.AsyncClient, public: httpx.AsyncClient
) -> None:
    """OCPP 2.1 NotifySettlement with billing a contributor: its part of the answer is the
    receipt it made (receiptUrl on the configured public base, receiptId); the terminal
    settled before the CDR was issued, and the receipt names the CDR once it is, with what
    it charged (10 kWh x 0.30 = 3.00, 3.60 incl. 20 % VAT)."""
    assert (await api.put("/tariffs/flat-energy", json=TARIFF)).status_code == 201
    opened = started("s-pay", "CP-PAY", START, transaction_id="tx-pay")
    await billing.publish("session.started", "CP-PAY", opened, version="2.1")
    settled = {
        "transactionId": "tx-pay",
        "pspRef": "PSP-42",
        "status": "Settled",
        "settlementAmount": 3.6,
        "settlementTime": ocpp_time(START + timedelta(hours=1, seconds=5)),
    }
    call = await billing.call("CP-PAY", "NotifySettlement", settled, contributors=("billing",))
    answer = await _answer_to(billing, call)
    assert answer.party == "billing"
    assert answer.payload is not None
    receipt_id = answer.payload["receiptId"]
    assert answer.payload == {
        "receiptUrl": f"{billing.service.settings.receipt_base_url}/receipts/{receipt_id}",
        "receiptId": receipt_id,
    }
    before = (await public.get(f"/receipts/{receipt_id}")).json()
    assert (before["session_id"], before["cdr_id"], before["charge"]) == ("s-pay", None, None)
    closed = ended(
        "s-pay", START, START + timedelta(hours=1), transaction_id="tx-pay", meter_stop_wh=10000.0
    )
    await billing.publish("session.ended", "CP-PAY", closed, version="2.1")
    (cdr,) = await billing.wait_for_cdrs(1)
    receipt = (await public.get(f"/receipts/{receipt_id}")).json()
    assert receipt["cdr_id"] == cdr["id"]
    assert receipt["charge"]["total_cost"] == {"excl_vat": 3.0, "incl_vat": 3.6}
    assert (receipt["charge"]["currency"], receipt["charge"]["total_energy"]) == ("EUR", 10.0)
    again = await billing.call("CP-PAY", "NotifySettlement", settled, contributors=("billing",))
    resent = await _answer_to(billing, again)  # it missed our answer
    assert resent.payload == answer.payload
    assert len(await _rows(billing, Settlement)) == 1


async def test_billing_station_cost_details_are_reconciled_at_the_cdr(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    assert (await api.put("/tariffs/flat-energy", json=TARIFF)).status_code == 201
    opened = started("s-21", "CP-21", START, transaction_id="tx-21")
    await billing.publish("session.started", "CP-21", opened, version="2.1")
    await billing.caught_up()
    end = START + timedelta(hours=1)
    # The station's own final cost: 2.00 for 10 kWh (ours: 10 x 0.30 = 3.00, 3.60 incl.).
    ended_event = {
        "eventType": "Ended",
        "timestamp": ocpp_time(end),
        "triggerReason": "EVDeparted",
        "seqNo": 3,
        "transactionInfo": {"transactionId": "tx-21"},
        "costDetails": {
            "totalCost": {
                "currency": "EUR",
                "typeOfCost": "NormalCost",
                "total": {"exclTax": 2.0, "inclTax": 2.4},
            },
            "totalUsage": {"energy": 10000, "chargingTime": 3600, "idleTime": 0},
        },
    }
    await billing.call("CP-21", "TransactionEvent", ended_event)
    await billing.caught_up()
    closed = ended(
        "s-21",
        START,
        end,
        transaction_id="tx-21",
        meter_stop_wh=10000.0,
        stop_reason="ev_disconnected",
    )
    await billing.publish("session.ended", "CP-21", closed, version="2.1")
    (cdr,) = await billing.wait_for_cdrs(1)
    assert cdr["total_cost"] == {"excl_vat": 3.0, "incl_vat": 3.6}
    assert "another cost" in cdr["remark"]
    cost = (await api.get("/costs/s-21")).json()
    assert cost["flags"][0]["differences"]["total.excl_tax"] == {"station": 2.0, "csms": 3.0}


async def test_billing_skips_the_calls_it_does_not_read(billing: BillingHarness) -> None:
    ignored = [
        await billing.call("CP-1", "Heartbeat", {}, track=False),
        # The CSMS's to send (2.1): a station's would never pass the gateway; passed over.
        await billing.call(
            "CP-1", "NotifyWebPaymentStarted", {"evseId": 1, "timeout": 5}, track=False
        ),
        await billing.call(
            "CP-1", "NotifySettlement", {"pspRef": "x"}, version="2.0.1", track=False
        ),
        await billing.call("CP-1", "TransactionEvent", {"eventType": "Updated"}, track=False),
    ]
    settled = {
        "pspRef": "P-1",
        "status": "Settled",
        "settlementAmount": 1.0,
        "settlementTime": "2024-05-06T10:00:00Z",
    }
    await billing.call("CP-1", "NotifySettlement", settled)
    await billing.caught_up()  # the last one was read, so the earlier ones were passed over
    stored = {row.event_id for row in await _rows(billing, ProcessedEvent)}
    assert not stored & {event.id for event in ignored}
    assert (await _rows(billing, BilledSession)) == []

    async def bad() -> list[Any] | None:
        from csms_core.topics import DEAD_LETTER

        return billing.bus.records(DEAD_LETTER) or None

    await billing.call("CP-1", "NotifySettlement", settled | {"settlementAmount": "x"}, track=False)
    (letter,) = await eventually(bad, timeout_s=5)
    assert "NotifySettlement" in letter.envelope.data["error"]


async def test_billing_decides_vat_number_validation(billing: BillingHarness) -> None:
    """OCPP 2.1 VatNumberValidation routed to billing (its owner): billing's answer goes to
    the gateway that holds the connection; with no VAT registry configured the number is
    Rejected as Unavailable (a number of no VAT form would be InvalidValue)."""
    call = await billing.call(
        "CP-V", "VatNumberValidation", {"vatNumber": "NL123456789B01", "evseId": 1}, owner="billing"
    )

    async def answered() -> list[CallAnswer] | None:
        return billing.stations.call_answers or None

    (answer,) = await eventually(answered, timeout_s=5)
    assert (answer.message_id, answer.party) == (call.data.message_id, "billing")
    assert answer.payload == {
        "vatNumber": "NL123456789B01",
        "evseId": 1,
        "status": "Rejected",
        "statusInfo": {
            "reasonCode": "Unavailable",
            "additionalInfo": "no VAT registry is configured",
        },
    }


async def test_billing_vat_number_validation_owned_elsewhere_is_not_answered(
    billing: BillingHarness,
) -> None:
    """A VatNumberValidation the gateway did not route to billing (another owner, or none
    alive when it arrived) gets no answer from billing."""
    await billing.call("CP-V", "VatNumberValidation", {"vatNumber": "NL123456789B01"})
    await billing.caught_up()
    assert billing.stations.call_answers == []


def _ended_event(transaction_id: str, at: datetime, stop: dict[str, Any] | None) -> dict[str, Any]:
    """A 2.x TransactionEvent Ended, with its Transaction.End register reading (``stop``)."""
    event: dict[str, Any] = {
        "eventType": "Ended",
        "timestamp": ocpp_time(at),
        "triggerReason": "EVDeparted",
        "seqNo": 4,
        "transactionInfo": {"transactionId": transaction_id, "stoppedReason": "EVDisconnected"},
    }
    if stop is not None:
        sampled = {"context": "Transaction.End", **stop}
        event["meterValue"] = [{"timestamp": ocpp_time(at), "sampledValue": [sampled]}]
    return event


async def _answer_to(billing: BillingHarness, call: Any) -> CallAnswer:
    async def answered() -> CallAnswer | None:
        mine = [a for a in billing.stations.call_answers if a.message_id == call.data.message_id]
        return mine[0] if mine else None

    return await eventually(answered, timeout_s=5)


async def test_tc_i_02_billing_adds_the_final_cost_to_the_ended_answer(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    """2.0.1 I02 (TC_I_02_CSMS): the Ended event's answer carries ``totalCost``, incl. VAT,
    and it is the CDR's ``total_cost.incl_vat``, though billing prices it before the
    sessions service's ``session.ended`` (the event's own stop reading, in kWh here)."""
    assert (await api.put("/tariffs/flat-energy", json=TARIFF)).status_code == 201
    opened = started("s-31", "CP-31", START, transaction_id="tx-31", meter_start_wh=1000.0)
    await billing.publish("session.started", "CP-31", opened, version="2.0.1")
    await billing.caught_up()
    end = START + timedelta(minutes=50)
    stop = {"value": 13.345, "unitOfMeasure": {"unit": "kWh"}}
    event = _ended_event("tx-31", end, stop)
    call = await billing.call(
        "CP-31", "TransactionEvent", event, version="2.0.1", contributors=("billing",)
    )
    answer = await _answer_to(billing, call)
    # 12.345 kWh x 0.30 = 3.7035 excl. VAT; x 1.20 = 4.4442: 4.44 incl. VAT.
    assert (answer.party, answer.payload) == ("billing", {"totalCost": 4.44})
    assert answer.payload is not None
    closed = ended(
        "s-31", START, end, transaction_id="tx-31", meter_start_wh=1000.0, meter_stop_wh=13345.0
    )
    await billing.publish("session.ended", "CP-31", closed, version="2.0.1")
    (cdr,) = await billing.wait_for_cdrs(1)
    assert cdr["total_cost"]["incl_vat"] == answer.payload["totalCost"]


async def test_tc_i_02_billing_sends_zero_when_free_and_nothing_without_a_tariff(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    """A session a tariff prices at nothing gets ``totalCost`` 0.0 (2.0.1: free); one no
    tariff prices gets billing's empty part (no ``totalCost``: the cost is not known), at
    once, so the gateway sends the answer without waiting for the timeout."""
    opened = started("s-32", "CP-32", START, transaction_id="tx-32")
    await billing.publish("session.started", "CP-32", opened, version="2.0.1")
    await billing.caught_up()
    end = START + timedelta(minutes=20)
    unpriced = await billing.call(
        "CP-32",
        "TransactionEvent",
        _ended_event("tx-32", end, {"value": 5000}),
        version="2.0.1",
        contributors=("billing",),
    )
    assert (await _answer_to(billing, unpriced)).payload == {}
    free = {
        "tariff": {
            "id": "free",
            "currency": "EUR",
            "start_date_time": "2024-01-01T00:00:00Z",
            "elements": [
                {"price_components": [{"type": "ENERGY", "price": 0, "vat": 20, "step_size": 1}]}
            ],
        },
        "applies_to": {"station_ids": ["CP-33"]},
    }
    assert (await api.put("/tariffs/free", json=free)).status_code == 201
    opened = started("s-33", "CP-33", START, transaction_id="tx-33")
    await billing.publish("session.started", "CP-33", opened, version="2.1")
    await billing.caught_up()
    gratis = await billing.call(
        "CP-33",
        "TransactionEvent",
        _ended_event("tx-33", end, {"value": 5000}),
        version="2.1",
        owner="sessions",
        contributors=("billing",),
    )
    assert (await _answer_to(billing, gratis)).payload == {"totalCost": 0.0}


async def test_billing_computes_no_cost_nobody_waits_for(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    """An Ended event the gateway did not name billing a contributor of (billing not alive
    when it arrived) gets no part from billing."""
    assert (await api.put("/tariffs/flat-energy", json=TARIFF)).status_code == 201
    opened = started("s-34", "CP-34", START, transaction_id="tx-34")
    await billing.publish("session.started", "CP-34", opened, version="2.0.1")
    await billing.caught_up()
    event = _ended_event("tx-34", START + timedelta(minutes=5), {"value": 900})
    await billing.call("CP-34", "TransactionEvent", event, version="2.0.1", track=False)
    settled = {
        "pspRef": "P-34",
        "status": "Settled",
        "settlementAmount": 1.0,
        "settlementTime": "2024-05-06T10:00:00Z",
    }
    waited = await billing.call("CP-34", "NotifySettlement", settled, version="2.1")
    await billing.caught_up()  # read after the Ended event: that one was passed over
    assert waited.station_id == "CP-34"
    assert billing.stations.call_answers == []
