"""Fixtures: the embedded bus and router (product code) and an identity store on SQLite."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from csms_core.bus.memory import InMemoryBus
from csms_core.calls.declared import SESSIONS
from csms_core.db import create_engine, session_factory
from csms_core.identity import SCHEMA, IdentityStore, migrate_identity
from csms_core.router.memory import InMemoryRouter
from csms_core.telemetry import setup_tracing
from csms_gateway.server import Gateway
from tests.kits.gateway import running_gateway, settings_for_tests


@pytest.fixture
def bus() -> InMemoryBus:
    return InMemoryBus()


@pytest.fixture
async def router() -> InMemoryRouter:
    """The embedded router, with the sessions service announced (alive) in it."""
    router = InMemoryRouter()
    await router.announce(SESSIONS, "sessions-1", ttl_s=3600)
    return router


@pytest.fixture
async def identities(tmp_path: Path) -> AsyncIterator[IdentityStore]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'csms.db'}", [SCHEMA])
    await migrate_identity(engine)
    yield IdentityStore(session_factory(engine))
    await engine.dispose()


@pytest.fixture
async def gateway(
    bus: InMemoryBus, router: InMemoryRouter, identities: IdentityStore
) -> AsyncIterator[Gateway]:
    async with running_gateway(settings_for_tests(), bus, router, identities) as running:
        yield running


@pytest.fixture
def tracing() -> None:
    """A tracer provider, so spans are recorded and their context propagated."""
    setup_tracing("csms-gateway-tests")
