"""2.1 payments: web / QR payments started by the provider's signed webhook, prepaid balances,
settlements with receipts."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from csms_billing.app import create_app
from csms_billing.payments.models import WebPayment
from csms_billing.payments.settlements import NotifySettlement, record_settlement
from csms_core.db import transaction, utc_now
from tests.billing_harness import BillingHarness, ended, running_billing, started
from tests.kits.api import bearer_headers
from tests.payment_provider import SECRET, Provider, running_provider


@pytest.fixture
async def paying(
    tmp_path: Path,
) -> AsyncIterator[tuple[BillingHarness, httpx.AsyncClient, Provider]]:
    """The billing service with a provider on loopback; the client is the provider's (no
    bearer token) on the service's root, where the webhook is."""
    async with (
        running_provider() as provider,
        running_billing(
            tmp_path,
            payment_webhook_secret=SECRET.decode(),
            payment_provider_url=provider.url,
            receipt_base_url="https://csms.example",
        ) as harness,
    ):
        transport = httpx.ASGITransport(app=create_app(harness.service))
        async with httpx.AsyncClient(transport=transport, base_url="http://b") as client:
            yield harness, client, provider


async def _paying(
    billing: BillingHarness,
    api: httpx.AsyncClient,
    provider: Provider,
    payment_id: str,
    station_id: str,
    evse_id: int,
) -> dict[str, Any]:
    """The provider's ``started``: the driver scanned the QR code and pays (120 s)."""
    headers, body = provider.webhook(
        payment_id, station_id, evse_id, state="started", timeout_s=120
    )
    answer = await api.post("/payments/webhook", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def test_billing_web_payment_tells_the_station_then_starts_charging(
    paying: tuple[BillingHarness, httpx.AsyncClient, Provider],
) -> None:
    """OCPP 2.1 QR code payment: the driver starts paying (the provider's ``started``): the
    station is told (NotifyWebPaymentStarted, CSMS to station: the EVSE and the seconds
    the driver has); the provider says paid: RequestStartTransaction, the payment as a
    NoAuthorization token; a retried webhook changes nothing."""
    billing, api, provider = paying
    await billing.stations.connect("CP-QR", "2.1")
    billing.stations.answers["RequestStartTransaction"] = {"status": "Accepted"}
    pending = await _paying(billing, api, provider, "pay-1", "CP-QR", 2)
    assert (pending["status"], pending["payment_id"]) == ("pending", "pay-1")
    (notice,) = billing.stations.sent("NotifyWebPaymentStarted", "CP-QR")
    assert notice["evseId"] == 2 and 115 <= notice["timeout"] <= 120
    assert billing.stations.sent("RequestStartTransaction") == []
    headers, body = provider.webhook("pay-1", "CP-QR", 2)
    answer = await api.post("/payments/webhook", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    paid = answer.json()
    assert (paid["status"], paid["amount"], paid["payment_id"]) == ("started", 25.0, "pay-1")
    (start,) = billing.stations.sent("RequestStartTransaction", "CP-QR")
    assert start == {
        "evseId": 2,
        "remoteStartId": paid["remote_start_id"],
        "idToken": {"idToken": "pay-1", "type": "NoAuthorization"},
    }
    again = await api.post("/payments/webhook", content=body, headers=headers)  # a retry
    assert (again.status_code, again.json()) == (200, None)
    assert len(billing.stations.sent("RequestStartTransaction")) == 1
    assert len(billing.stations.sent("NotifyWebPaymentStarted")) == 1


async def test_billing_web_payment_authorized_without_a_start_starts_charging(
    paying: tuple[BillingHarness, httpx.AsyncClient, Provider],
) -> None:
    """A provider that announces no start: its ``authorized`` alone starts the transaction."""
    billing, api, provider = paying
    await billing.stations.connect("CP-QR2", "2.1")
    billing.stations.answers["RequestStartTransaction"] = {"status": "Accepted"}
    headers, body = provider.webhook("pay-2", "CP-QR2", 1)
    paid = (await api.post("/payments/webhook", content=body, headers=headers)).json()
    assert paid["status"] == "started"
    assert billing.stations.sent("NotifyWebPaymentStarted") == []
    assert len(billing.stations.sent("RequestStartTransaction", "CP-QR2")) == 1


async def test_billing_webhook_without_the_providers_signature_is_refused(
    paying: tuple[BillingHarness, httpx.AsyncClient, Provider],
) -> None:
    billing, api, provider = paying
    await billing.stations.connect("CP-QR", "2.1")
    for headers, body in (
        provider.webhook("forged", "CP-QR", 1, secret=b"someone-else"),
        provider.webhook(
            "stale", "CP-QR", 1, at=(datetime.now(UTC) - timedelta(hours=1)).timestamp()
        ),
        ({"content-type": "application/json"}, provider.webhook("unsigned", "CP-QR", 1)[1]),
    ):
        refused = await api.post("/payments/webhook", content=body, headers=headers)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "urn:csms:problem:invalid-signature"
    headers, body = provider.webhook("tampered", "CP-QR", 1)
    tampered = body.replace(b'"25.00"', b'"0.01"')
    assert (
        await api.post("/payments/webhook", content=tampered, headers=headers)
    ).status_code == 401
    assert billing.stations.sent("RequestStartTransaction") == []
    assert billing.stations.sent("NotifyWebPaymentStarted") == []


async def test_billing_payment_the_provider_does_not_confirm_is_refused(
    paying: tuple[BillingHarness, httpx.AsyncClient, Provider],
) -> None:
    billing, api, provider = paying
    await billing.stations.connect("CP-QR", "2.1")
    await _paying(billing, api, provider, "pay-9", "CP-QR", 1)
    headers, body = provider.webhook("pay-9", "CP-QR", 1)
    provider.states["pay-9"] = "failed"  # its API knows better than the (replayed) call
    refused = await api.post("/payments/webhook", content=body, headers=headers)
    assert (refused.status_code, refused.json()["type"]) == (401, "urn:csms:problem:unconfirmed")
    assert billing.stations.sent("RequestStartTransaction") == []


async def test_billing_payment_that_cannot_start_charging_is_kept_for_a_refund(
    paying: tuple[BillingHarness, httpx.AsyncClient, Provider],
) -> None:
    """Paid for a station that is offline (it was not even told of the payment), or that
    refuses the start: ``unmatched``, listed for the operator to refund."""
    billing, api, provider = paying
    pending = await _paying(billing, api, provider, "pay-lost", "CP-NONE", 1)
    assert (pending["status"], pending["detail"]) == ("pending", "not told: the station is offline")
    headers, body = provider.webhook("pay-lost", "CP-NONE", 1)
    lost = (await api.post("/payments/webhook", content=body, headers=headers)).json()
    assert (lost["status"], lost["detail"]) == ("unmatched", "the station is offline")
    await billing.stations.connect("CP-NO", "2.1")
    billing.stations.answers["RequestStartTransaction"] = {"status": "Rejected"}
    headers, body = provider.webhook("pay-refused", "CP-NO", 1)
    refused = (await api.post("/payments/webhook", content=body, headers=headers)).json()
    assert (refused["status"], refused["detail"]) == ("unmatched", "the station answered Rejected")
    admin = await bearer_headers(billing.service.engine)
    listed = (
        await api.get("/api/v1/payments/web", params={"status": "unmatched"}, headers=admin)
    ).json()
    assert sorted(p["payment_id"] for p in listed["items"]) == ["pay-lost", "pay-refused"]


async def test_billing_payment_after_the_drivers_time_ran_out_is_not_started(
    paying: tuple[BillingHarness, httpx.AsyncClient, Provider],
) -> None:
    billing, api, provider = paying
    await billing.stations.connect("CP-LATE", "2.1")
    await _paying(billing, api, provider, "pay-late", "CP-LATE", 1)
    async with transaction(billing.service.factory) as session:  # 120 s later
        await session.exec(update(WebPayment).values(expires_at=utc_now() - timedelta(seconds=1)))
    admin = await bearer_headers(billing.service.engine)
    listed = await api.get("/api/v1/payments/web", params={"status": "expired"}, headers=admin)
    assert [p["payment_id"] for p in listed.json()["items"]] == ["pay-late"]
    pending = await api.get("/api/v1/payments/web", params={"status": "pending"}, headers=admin)
    assert pending.json()["items"] == []
    headers, body = provider.webhook("pay-late", "CP-LATE", 1)
    late = (await api.post("/payments/webhook", content=body, headers=headers)).json()
    assert late["status"] == "unmatched"
    assert billing.stations.sent("RequestStartTransaction") == []


async def test_billing_payment_the_provider_says_failed(
    paying: tuple[BillingHarness, httpx.AsyncClient, Provider],
) -> None:
    billing, api, provider = paying
    await billing.stations.connect("CP-F", "2.1")
    await _paying(billing, api, provider, "pay-f", "CP-F", 1)
    headers, body = provider.webhook("pay-f", "CP-F", 1, state="canceled")
    failed = (await api.post("/payments/webhook", content=body, headers=headers)).json()
    assert (failed["status"], failed["detail"]) == ("failed", "the provider says canceled")
    assert billing.stations.sent("RequestStartTransaction") == []


async def test_billing_webhook_without_a_provider_is_503(public: httpx.AsyncClient) -> None:
    answer = await public.post("/payments/webhook", content=b"{}")
    assert (answer.status_code, answer.json()["type"]) == (
        503,
        "urn:csms:problem:payments-not-configured",
    )


TARIFF = {
    "tariff": {
        "id": "prepaid",
        "currency": "EUR",
        "start_date_time": "2024-01-01T00:00:00Z",
        "elements": [
            {"price_components": [{"type": "ENERGY", "price": 0.50, "vat": 20, "step_size": 1}]}
        ],
    },
    "applies_to": {"default": True},
}
START = datetime(2024, 5, 6, 8, 0, tzinfo=UTC)


async def _charge(billing: BillingHarness, session_id: str, token: str, stop_wh: float) -> None:
    data = started(session_id, "CP-P", START, token=token)
    await billing.publish("session.started", "CP-P", data)
    end = START + timedelta(hours=1)
    await billing.publish(
        "session.ended", "CP-P", ended(session_id, START, end, meter_stop_wh=stop_wh)
    )


async def test_billing_prepaid_balance_pays_the_cdrs(
    billing: BillingHarness, api: httpx.AsyncClient
) -> None:
    assert (await api.put("/tariffs/prepaid", json=TARIFF)).status_code == 201
    assert (await api.put("/prepaid-accounts/PRE-1", json={"currency": "EUR"})).status_code == 200
    topped = await api.post("/prepaid-accounts/PRE-1/top-ups", json={"amount": "20.00"})
    assert (topped.status_code, topped.json()["balance"]) == (201, 20.0)
    await _charge(billing, "s-pre-1", "PRE-1", 10_000)  # 10 kWh x 0.50 = 5.00, 6.00 incl.
    await _charge(billing, "s-other", "NOT-PREPAID", 10_000)
    await billing.wait_for_cdrs(2)
    account = (await api.get("/prepaid-accounts/PRE-1")).json()
    assert account["balance"] == 14.0
    assert [(e["kind"], e["amount"]) for e in account["entries"]] == [
        ("session", -6.0),
        ("top_up", 20.0),
    ]
    refused = await api.put("/prepaid-accounts/PRE-1", json={"currency": "USD"})
    assert refused.status_code == 409
    bad = await api.post("/prepaid-accounts/PRE-1/top-ups", json={"amount": "-5"})
    assert bad.status_code == 422
    assert (await api.get("/prepaid-accounts/NOPE")).status_code == 404


async def test_billing_notify_settlement_makes_a_receipt(
    billing: BillingHarness, api: httpx.AsyncClient, public: httpx.AsyncClient
) -> None:
    assert (await api.put("/tariffs/prepaid", json=TARIFF)).status_code == 201
    await _charge(billing, "s-card", "CARD-1", 4000)
    (cdr,) = await billing.wait_for_cdrs(1)
    request = NotifySettlement.model_validate(
        {
            "transactionId": "s-card",
            "pspRef": "PSP-77",
            "status": "Settled",
            "settlementAmount": 2.4,
            "settlementTime": "2024-05-06T09:00:05Z",
        }
    )
    async with transaction(billing.service.factory) as session:
        answer = await record_settlement(
            session, "CP-P", request, "https://csms.example", utc_now()
        )
    assert answer["receiptUrl"] == f"https://csms.example/receipts/{answer['receiptId']}"
    receipt = (await public.get(f"/receipts/{answer['receiptId']}")).json()
    assert (receipt["psp_ref"], receipt["amount"], receipt["cdr_id"]) == ("PSP-77", 2.4, cdr["id"])
    assert (await public.get("/receipts/not-a-receipt")).status_code == 404
    own = request.model_copy(update={"receipt_url": "https://terminal/r/1", "receipt_id": "T-1"})
    async with transaction(billing.service.factory) as session:
        assert await record_settlement(session, "CP-P", own, "https://x", utc_now()) == {}


@pytest.mark.parametrize("secret", ["change-me", "short"])
def test_billing_placeholder_webhook_secret_refused_in_production(secret: str) -> None:
    from pydantic import ValidationError

    from csms_billing.settings import BillingSettings
    from csms_core.settings import Environment

    with pytest.raises(ValidationError, match="PAYMENT_WEBHOOK_SECRET"):
        BillingSettings(environment=Environment.PRODUCTION, payment_webhook_secret=secret)
