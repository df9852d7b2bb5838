"""Prepaid balances held centrally (payments.limits): a live session of a prepaid token
is stopped once its running cost, including taxes, reaches the token's balance."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from csms_billing.app import create_app
from csms_billing.payments import limits
from csms_billing.sessions.models import BilledSession
from csms_core.db import utc_now
from tests.billing_harness import BillingHarness, meter_values, register, running_billing, started
from tests.cluster import Infra, own_database
from tests.kits.api import bearer_headers
from tests.waiting import eventually

START = datetime(2024, 5, 6, 8, 0, tzinfo=UTC)
# 0.40/kWh + 25 % VAT: 0.50 a kWh as the driver pays it.
TARIFF = {
    "tariff": {
        "id": "per-kwh",
        "currency": "EUR",
        "start_date_time": "2024-01-01T00:00:00Z",
        "elements": [
            {"price_components": [{"type": "ENERGY", "price": 0.40, "vat": 25, "step_size": 1}]}
        ],
    },
    "applies_to": {"default": True},
}


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, infra: Infra
) -> AsyncIterator[str]:
    """SQLite (csms up), or a PostgreSQL database of this test's own (the claim query takes
    row locks there: FOR UPDATE SKIP LOCKED)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'csms.db'}"
        return
    async with own_database(infra.database_url, "csms_bi") as url:
        yield url


@pytest.fixture
async def quick(
    tmp_path: Path, database_url: str
) -> AsyncIterator[tuple[BillingHarness, httpx.AsyncClient]]:
    overrides = {"cost_update_interval_s": 0.2, "database_url": database_url}
    async with running_billing(tmp_path, **overrides) as harness:
        transport = httpx.ASGITransport(app=create_app(harness.service))
        headers = await bearer_headers(harness.service.engine)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://b/api/v1", headers=headers
        ) as api:
            assert (await api.put("/tariffs/per-kwh", json=TARIFF)).status_code == 201
            yield harness, api


async def _prepaid(api: httpx.AsyncClient, id_token: str, amount: str) -> None:
    assert (await api.put(f"/prepaid-accounts/{id_token}", json={"currency": "EUR"})).is_success
    topped = await api.post(f"/prepaid-accounts/{id_token}/top-ups", json={"amount": amount})
    assert topped.is_success, topped.text


async def _session(
    billing: BillingHarness, station_id: str, version: str, token: str, transaction_id: str
) -> None:
    await billing.stations.connect(station_id, version)
    data = started(f"s-{station_id}", station_id, START, transaction_id=transaction_id, token=token)
    await billing.publish("session.started", station_id, data, version=version)


async def _reading(
    billing: BillingHarness, station_id: str, transaction_id: str, wh: float
) -> None:
    sample = register(START + timedelta(minutes=wh / 100), wh)
    data = meter_values(f"s-{station_id}", sample, transaction_id=transaction_id)
    await billing.publish("meter.values", station_id, data)
    await billing.caught_up()


async def _checked_since(billing: BillingHarness, session_id: str, since: datetime) -> None:
    """Until the session's cost was checked against its balance after ``since``."""

    async def checked() -> bool:
        async with billing.service.factory() as session:
            billed = await session.get(BilledSession, session_id)
            due = billed.limit_due_at if billed is not None else None
            return due is not None and due > since + timedelta(seconds=0.2)

    await eventually(checked, timeout_s=10)


async def _stop_recorded(billing: BillingHarness, session_id: str) -> None:
    """Until the station's acceptance of the stop is stored."""

    async def recorded() -> bool:
        async with billing.service.factory() as session:
            billed = await session.get(BilledSession, session_id)
            return billed is not None and billed.limit_stop_at is not None

    await eventually(recorded, timeout_s=10)


def _stops(billing: BillingHarness, action: str, station_id: str) -> list[dict[str, Any]]:
    return billing.stations.sent(action, station_id)


async def test_billing_prepaid_session_stopped_at_its_balance(
    quick: tuple[BillingHarness, httpx.AsyncClient],
) -> None:
    """2.0.1: 3.00 left; 5 kWh (2.50 incl. VAT) runs on, 8 kWh (4.00) is stopped once with
    RequestStopTransaction; a token with more left, or without an account, is not."""
    billing, api = quick
    await _prepaid(api, "PRE", "3.00")
    await _prepaid(api, "PRE-2", "100.00")
    billing.stations.answers["RequestStopTransaction"] = {"status": "Accepted"}
    await _session(billing, "CP-P", "2.0.1", "PRE", "tx-P")
    await _session(billing, "CP-Q", "2.0.1", "PRE-2", "tx-Q")
    await _session(billing, "CP-O", "2.0.1", "OTHER", "tx-O")
    for station_id, transaction_id in (("CP-P", "tx-P"), ("CP-O", "tx-O")):
        await _reading(billing, station_id, transaction_id, 5000)
    await _checked_since(billing, "s-CP-P", utc_now())
    assert _stops(billing, "RequestStopTransaction", "CP-P") == []

    await _reading(billing, "CP-P", "tx-P", 8000)
    await _reading(billing, "CP-O", "tx-O", 8000)

    async def stopped() -> list[dict[str, Any]] | None:
        return _stops(billing, "RequestStopTransaction", "CP-P") or None

    assert await eventually(stopped, timeout_s=10) == [{"transactionId": "tx-P"}]
    await _stop_recorded(billing, "s-CP-P")
    # Checks go on for others; the stopped session is not asked again.
    await _reading(billing, "CP-P", "tx-P", 9000)
    await _checked_since(billing, "s-CP-Q", utc_now())
    assert len(_stops(billing, "RequestStopTransaction", "CP-P")) == 1
    assert _stops(billing, "RequestStopTransaction", "CP-Q") == []
    assert _stops(billing, "RequestStopTransaction", "CP-O") == []
    async with billing.service.factory() as session:
        other = await session.get(BilledSession, "s-CP-O")
        assert other is not None and other.limit_due_at is None  # no account: never checked


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_billing_prepaid_stop_refused_is_asked_again_v16(
    quick: tuple[BillingHarness, httpx.AsyncClient],
) -> None:
    """1.6: RemoteStopTransaction with the integer transactionId; a station that refuses
    is asked again at the next check, until it accepts."""
    billing, api = quick
    await _prepaid(api, "PRE-16", "1.00")
    billing.stations.answers["RemoteStopTransaction"] = {"status": "Rejected"}
    await _session(billing, "CP-16", "1.6", "PRE-16", "17")
    await _reading(billing, "CP-16", "17", 3000)  # 1.50 incl. VAT

    async def asked(count: int) -> list[dict[str, Any]] | None:
        found = _stops(billing, "RemoteStopTransaction", "CP-16")
        return found if len(found) >= count else None

    assert (await eventually(lambda: asked(2), timeout_s=10))[:2] == [{"transactionId": 17}] * 2
    billing.stations.answers["RemoteStopTransaction"] = {"status": "Accepted"}

    await _stop_recorded(billing, "s-CP-16")
    after = len(_stops(billing, "RemoteStopTransaction", "CP-16"))
    await _session(billing, "CP-X", "1.6", "PRE-16", "18")  # checked too, from now on
    await _checked_since(billing, "s-CP-X", utc_now())
    assert len(_stops(billing, "RemoteStopTransaction", "CP-16")) == after


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_billing_prepaid_sessions_of_one_token_share_its_balance(
    quick: tuple[BillingHarness, httpx.AsyncClient],
) -> None:
    """3.50 left and two sessions at once: 6 kWh (3.00 incl. VAT) and 2 kWh (1.00). Each
    alone is under the balance; together they spent 4.00, so both are stopped."""
    billing, api = quick
    await _prepaid(api, "PRE-S", "3.50")
    billing.stations.answers["RequestStopTransaction"] = {"status": "Accepted"}
    await _session(billing, "CP-S1", "2.0.1", "PRE-S", "tx-S1")
    await _session(billing, "CP-S2", "2.0.1", "PRE-S", "tx-S2")
    await _reading(billing, "CP-S1", "tx-S1", 6000)
    await _checked_since(billing, "s-CP-S1", utc_now())
    assert _stops(billing, "RequestStopTransaction", "CP-S1") == []  # alone: 3.00 < 3.50
    await _reading(billing, "CP-S2", "tx-S2", 2000)
    await _stop_recorded(billing, "s-CP-S1")
    await _stop_recorded(billing, "s-CP-S2")
    assert _stops(billing, "RequestStopTransaction", "CP-S1") == [{"transactionId": "tx-S1"}]
    assert _stops(billing, "RequestStopTransaction", "CP-S2") == [{"transactionId": "tx-S2"}]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_billing_prepaid_max_cost_is_what_the_token_has_left(
    quick: tuple[BillingHarness, httpx.AsyncClient],
) -> None:
    """The 2.1 transactionLimit.maxCost figure: 10.00 less the 1.00 (2 kWh incl. VAT) the
    token's other live session spent is 9.00; a token without an account has none."""
    billing, api = quick
    await _prepaid(api, "PRE-M", "10.00")
    await _session(billing, "CP-M1", "2.1", "PRE-M", "tx-M1")
    await _session(billing, "CP-M2", "2.1", "PRE-M", "tx-M2")
    await _session(billing, "CP-M3", "2.1", "NOT-PREPAID", "tx-M3")
    await _reading(billing, "CP-M1", "tx-M1", 2000)
    async with billing.service.factory() as session:
        second = await session.get(BilledSession, "s-CP-M2")
        third = await session.get(BilledSession, "s-CP-M3")
        assert second is not None and third is not None
        assert await limits.max_cost(session, second, utc_now()) == Decimal("9.00")
        assert await limits.max_cost(session, third, utc_now()) is None
