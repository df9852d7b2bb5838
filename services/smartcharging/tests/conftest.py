"""Fixtures: a running smart charging service on the embedded bus, router and SQLite."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from csms_smartcharging.app import create_app
from csms_smartcharging.testing import Harness, running_smartcharging, settings_for_tests


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_smartcharging(settings_for_tests(tmp_path)) as running:
        yield running


@pytest.fixture
async def api(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(harness.service))
    async with httpx.AsyncClient(transport=transport, base_url="http://sc/api/v1") as client:
        yield client
