"""Fixtures: a migrated identity and access database on SQLite with two stations on two sites."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from csms_api.access import SCHEMA as ACCESS_SCHEMA
from csms_api.access import migrate_access
from csms_core.db import create_engine, session_factory
from csms_core.identity import SCHEMA as IDENTITY_SCHEMA
from csms_core.identity import assign_site, migrate_identity


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """CP-A on site-a, CP-B on site-b."""
    engine = create_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'csms.db'}", [IDENTITY_SCHEMA, ACCESS_SCHEMA]
    )
    await migrate_identity(engine)
    await migrate_access(engine)
    async with session_factory(engine)() as session, session.begin():
        await assign_site(session, "CP-A", "site-a")
        await assign_site(session, "CP-B", "site-b")
    yield engine
    await engine.dispose()
