"""Station identity on a real PostgreSQL: concurrent migrations and a store round trip."""

import asyncio
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from csms_core.db import create_engine, session_factory
from csms_core.identity import SCHEMA, IdentityStore, migrate_identity, verify_password
from tests.cluster import Infra

pytestmark = pytest.mark.integration


@pytest.fixture
async def engines(infra: Infra) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    first = create_engine(infra.database_url, [SCHEMA])
    second = create_engine(infra.database_url, [SCHEMA])
    yield first, second
    await first.dispose()
    await second.dispose()


async def test_replicas_migrating_at_once_both_succeed(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    # Two replicas starting together serialise on the advisory lock; neither fails.
    await asyncio.gather(*(migrate_identity(engine) for engine in engines))
    await asyncio.gather(*(migrate_identity(engine) for engine in engines))

    async with engines[0].connect() as connection:
        versions = await connection.execute(
            text("SELECT version_num FROM identity.alembic_version")
        )
        assert versions.scalars().all() == ["0003"]


async def test_store_round_trip(engines: tuple[AsyncEngine, AsyncEngine]) -> None:
    writer_engine, reader_engine = engines
    await migrate_identity(writer_engine)
    writer = IdentityStore(session_factory(writer_engine))
    reader = IdentityStore(session_factory(reader_engine))
    station_id = f"CP-{uuid4().hex[:12]}"
    try:
        await writer.save(station_id, password="s3cret-Passw0rd", lenient=True)

        stored = await reader.get(station_id)
        assert stored is not None
        assert (stored.station_id, stored.lenient) == (station_id, True)
        assert stored.password_hash is not None
        assert verify_password("s3cret-Passw0rd", stored.password_hash)
        assert stored.updated_at.tzinfo is not None

        await writer.save(station_id, lenient=False)
        updated = await reader.get(station_id)
        assert updated is not None
        assert (updated.lenient, updated.password_hash) == (False, stored.password_hash)
    finally:
        await writer.delete(station_id)
    assert await reader.get(station_id) is None
