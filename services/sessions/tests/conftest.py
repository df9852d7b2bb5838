"""Fixtures: a running sessions service on the embedded bus and router and SQLite in tmp_path."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from csms_core.bus.memory import InMemoryBus
from csms_core.router.memory import InMemoryRouter
from csms_sessions.app import create_app
from csms_sessions.settings import UnknownStationPolicy
from tests.kits.api import bearer_headers
from tests.kits.sessions import Harness, running_sessions, settings_for_tests


@pytest.fixture
def policy() -> UnknownStationPolicy:
    """The unknown-station policy; a test overrides it with ``parametrize("policy", ...)``."""
    return "reject"


@pytest.fixture
async def sessions(tmp_path: Path, policy: UnknownStationPolicy) -> AsyncIterator[Harness]:
    settings = settings_for_tests(tmp_path, unknown_station_policy=policy)
    async with running_sessions(settings, InMemoryBus(), InMemoryRouter()) as harness:
        yield harness


@pytest.fixture
async def api(sessions: Harness) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(sessions.service))
    headers = await bearer_headers(sessions.service.engine)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://csms", headers=headers
    ) as client:
        yield client
