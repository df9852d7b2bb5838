"""OCA "OCPP & California Pricing Requirements" on the final cost (2.0.1 I03, TC_I_02): a
station that takes the costmsg customization (its device model says so, or the operator
flags it) gets, with ``totalCost``, the costmsg ``customData`` for the end and the
itemized cost as ``updatedPersonalMessage``; a station showing costs in another currency
(TariffCostCtrlr.Currency) gets no cost.

Tariff: 0.30/kWh, 20 % VAT. The session charges 0 -> 10 000 Wh from 09:00 to 10:00:
10 kWh x 0.30 = 3.00 excl. VAT, 3.60 incl. (0.60 tax); the price per kWh incl. VAT is 0.36.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from csms_billing.app import create_app
from csms_billing.costs import california
from csms_billing.pricing.cost import ComponentRef, Dimension
from csms_billing.tariffs.ocpi import Tariff
from csms_core.router import CallAnswer
from csms_ocpp import OcppVersion, schemas
from tests.billing_harness import BillingHarness, ended, ocpp_time, running_billing, started
from tests.billing_kit import component, tariff_body
from tests.kits.api import bearer_headers
from tests.waiting import eventually

START = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
TARIFF = tariff_body("per-kwh", component("ENERGY", "0.30", vat="20"))
FINAL_TEXT = "Total 3.60 EUR incl. 0.60 tax. 3.00 EUR excl. tax, energy 3.00. 10.000 kWh in 1:00 h."


@pytest.fixture
async def flagged(tmp_path: Path) -> AsyncIterator[BillingHarness]:
    """Billing with the tariff, CP-FLAG flagged by the operator as taking costmsg."""
    async with running_billing(tmp_path, california_stations="CP-OTHER, CP-FLAG") as harness:
        transport = httpx.ASGITransport(app=create_app(harness.service))
        async with httpx.AsyncClient(transport=transport, base_url="http://b/api/v1") as api:
            api.headers.update(await bearer_headers(harness.service.engine))
            assert (await api.put("/tariffs/per-kwh", json=TARIFF)).status_code == 201
        yield harness


@asynccontextmanager
async def public_client(billing: BillingHarness) -> AsyncIterator[httpx.AsyncClient]:
    """A driver's client: no bearer token, the service's root."""
    transport = httpx.ASGITransport(app=create_app(billing.service))
    async with httpx.AsyncClient(transport=transport, base_url="http://b") as client:
        yield client


def _device_model(currency: str, decimals: str) -> dict[str, Any]:
    """A station's GetVariables answer to billing's probe."""

    def result(component: str, name: str, value: str, instance: str | None = None) -> Any:
        variable = {"name": name} | ({"instance": instance} if instance else {})
        return {
            "attributeStatus": "Accepted",
            "attributeValue": value,
            "component": {"name": component},
            "variable": variable,
        }

    return {
        "getVariableResult": [
            result(
                "CustomizationCtrlr", "CustomImplementationEnabled", "true", california.VENDOR_ID
            ),
            result("TariffCostCtrlr", "Currency", currency),
            result("TariffCostCtrlr", "NumberOfDecimalsForCostValues", decimals),
        ]
    }


async def _ended_answer(billing: BillingHarness, station_id: str) -> dict[str, Any] | None:
    """The session on ``station_id`` and billing's part of its Ended answer."""
    session_id = f"s-{station_id}"
    opened = started(session_id, station_id, START)
    await billing.publish("session.started", station_id, opened)
    await billing.caught_up()
    sampled = {"value": 10000, "context": "Transaction.End"}
    event = {
        "eventType": "Ended",
        "timestamp": ocpp_time(END),
        "triggerReason": "EVDeparted",
        "seqNo": 2,
        "transactionInfo": {"transactionId": session_id, "stoppedReason": "EVDisconnected"},
        "meterValue": [{"timestamp": ocpp_time(END), "sampledValue": [sampled]}],
    }
    call = await billing.call(
        station_id, "TransactionEvent", event, version="2.0.1", contributors=("billing",)
    )

    async def answered() -> CallAnswer | None:
        mine = [a for a in billing.stations.call_answers if a.message_id == call.data.message_id]
        return mine[0] if mine else None

    return (await eventually(answered, timeout_s=5)).payload


async def _probed(billing: BillingHarness, station_id: str, model: dict[str, Any]) -> None:
    """What billing learns of the station (it asks while the station's sessions run)."""
    await billing.stations.connect(station_id, "2.0.1")
    billing.stations.answers["GetVariables"] = model
    service = billing.service
    await california.station_display(service.factory, service.commands, station_id)


async def test_tc_i_02_a_california_pricing_station_gets_the_itemized_final_cost(
    flagged: BillingHarness,
) -> None:
    """Its device model reports costmsg, EUR and 2 decimals: prices to 2 decimals."""
    billing = flagged
    await _probed(billing, "CP-CA", _device_model("EUR", "2"))
    probe = billing.stations.sent("GetVariables", "CP-CA")[0]["getVariableData"]
    assert [(v["component"]["name"], v["variable"]["name"]) for v in probe] == [
        ("CustomizationCtrlr", "CustomImplementationEnabled"),
        ("TariffCostCtrlr", "Currency"),
        ("TariffCostCtrlr", "NumberOfDecimalsForCostValues"),
    ]
    answer = await _ended_answer(billing, "CP-CA")
    assert answer is not None
    receipt_url = answer["customData"].pop("qrCodeText")
    assert answer == {
        "totalCost": 3.6,
        "customData": {
            "vendorId": "org.openchargealliance.costmsg",
            "timestamp": END.isoformat(),
            "meterValue": 10000,
            "state": "Finished",
            "chargingPrice": {"kWhPrice": 0.36},
        },
        "updatedPersonalMessage": {"format": "UTF8", "content": FINAL_TEXT},
    }
    assert schemas.validate(OcppVersion.V201, "TransactionEvent", answer, response=True) is None
    # qrCodeText: the session's receipt, on the public base URL; its CDR's cost once issued.
    base = f"{billing.service.settings.receipt_base_url}/receipts/"
    assert receipt_url.startswith(base)
    async with public_client(billing) as public:
        path = receipt_url.removeprefix(billing.service.settings.receipt_base_url)
        before = (await public.get(path)).json()
        assert (before["kind"], before["session_id"], before["charge"]) == (
            "session",
            "s-CP-CA",
            None,
        )
        closed = ended("s-CP-CA", START, END, meter_stop_wh=10_000.0)
        await billing.publish("session.ended", "CP-CA", closed)
        (cdr,) = await billing.wait_for_cdrs(1)
        shown = (await public.get(path)).json()
    assert (shown["cdr_id"], shown["amount"], shown["psp_ref"]) == (cdr["id"], 3.6, None)
    assert shown["charge"]["total_cost"] == {"excl_vat": 3.0, "incl_vat": 3.6}


async def test_tc_i_02_a_station_the_operator_flags_gets_it_too(flagged: BillingHarness) -> None:
    """CP-FLAG reports nothing in its device model (never asked here): the operator's flag
    (CSMS_BILLING_CALIFORNIA_STATIONS) is enough; prices at the default 6 decimals."""
    answer = await _ended_answer(flagged, "CP-FLAG")
    assert answer is not None
    assert answer["customData"]["chargingPrice"] == {"kWhPrice": 0.36}
    assert "/receipts/" in answer["customData"]["qrCodeText"]
    assert answer["updatedPersonalMessage"]["content"] == FINAL_TEXT
    assert flagged.stations.sent("GetVariables") == []


async def test_billing_a_plain_station_gets_only_the_total(flagged: BillingHarness) -> None:
    answer = await _ended_answer(flagged, "CP-PLAIN")
    assert answer == {"totalCost": 3.6}


async def test_billing_a_station_showing_another_currency_gets_no_cost(
    flagged: BillingHarness,
) -> None:
    """Its TariffCostCtrlr.Currency is USD, the session is priced in EUR: a figure in the
    wrong currency would mislead the driver, so none is sent (the CDR has the cost)."""
    await _probed(flagged, "CP-USD", _device_model("USD", "3"))
    assert await _ended_answer(flagged, "CP-USD") == {}


@pytest.mark.parametrize(("decimals", "price"), [(0, 0.0), (1, 0.4), (3, 0.36), (None, 0.36)])
def test_billing_prices_to_the_stations_decimals(decimals: int | None, price: float) -> None:
    """NumberOfDecimalsForCostValues: 0.36/kWh incl. VAT, half up to the station's decimals
    (None: it reports none, the default 6)."""
    tariff = Tariff.model_validate(TARIFF["tariff"])
    energy = {Dimension.ENERGY: ComponentRef(element=0, component=0)}
    prices = california._gross(tariff, [], energy, decimals)
    assert prices == {Dimension.ENERGY: price}
