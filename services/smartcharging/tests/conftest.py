"""Fixtures: a running smart charging service on the embedded bus, router and SQLite."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from csms_smartcharging.app import create_app
from tests.cluster import Infra, own_database
from tests.kits.api import bearer_headers
from tests.kits.smartcharging import Harness, running_smartcharging, settings_for_tests


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_smartcharging(settings_for_tests(tmp_path)) as running:
        yield running


@pytest.fixture
async def api(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(harness.service))
    headers = await bearer_headers(harness.service.engine)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sc/api/v1", headers=headers
    ) as client:
        yield client


@pytest.fixture
async def postgres_url(infra: Infra) -> AsyncIterator[str]:
    """A PostgreSQL database of this test's own (replicas of one deployment share it)."""
    async with own_database(infra.database_url, "csms_sc") as url:
        yield url
