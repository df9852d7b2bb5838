"""Fixtures: a billing service on the embedded bus, router and SQLite, and its REST API."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from csms_billing.app import create_app
from tests.billing_harness import BillingHarness, running_billing


@pytest.fixture
async def billing(tmp_path: Path) -> AsyncIterator[BillingHarness]:
    async with running_billing(tmp_path) as harness:
        yield harness


@pytest.fixture
async def api(billing: BillingHarness) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(billing.service))
    async with httpx.AsyncClient(transport=transport, base_url="http://billing/api/v1") as client:
        yield client
