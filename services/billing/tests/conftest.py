"""Fixtures: a billing service on the embedded bus, router and SQLite, and its REST API."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from csms_billing.app import create_app
from tests.billing_harness import BillingHarness, running_billing
from tests.kits.api import bearer_headers


@pytest.fixture
async def billing(tmp_path: Path) -> AsyncIterator[BillingHarness]:
    async with running_billing(tmp_path) as harness:
        yield harness


@pytest.fixture
async def api(billing: BillingHarness) -> AsyncIterator[httpx.AsyncClient]:
    """The REST API as an admin calls it."""
    async with client_of(billing) as client:
        client.headers.update(await bearer_headers(billing.service.engine))
        yield client


@pytest.fixture
async def public(billing: BillingHarness) -> AsyncIterator[httpx.AsyncClient]:
    """What is served without a bearer token: the provider's webhook, receipts."""
    async with client_of(billing, base_url="http://billing") as client:
        yield client


@asynccontextmanager
async def client_of(
    billing: BillingHarness, base_url: str = "http://billing/api/v1"
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(billing.service))
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        yield client
