"""The audit trail's writes on a real PostgreSQL: one statement per group commit, all or none."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from csms_api.access.store import SCHEMA, migrate_access
from csms_api.audit import AuditEntry, AuditLog
from csms_api.audit.store import add_entries
from csms_core.db import create_engine, session_factory
from tests.cluster import Infra

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(infra: Infra) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(infra.database_url, [SCHEMA])
    await migrate_access(engine)
    yield engine
    await engine.dispose()


def entry(source: str, action: str, **fields: Any) -> AuditEntry:
    return AuditEntry(
        kind="rest", actor="service:test", actor_kind="service", action=action, outcome="200",
        source=source, **fields,
    )  # fmt: skip


async def stored(engine: AsyncEngine, source: str) -> list[str]:
    async with session_factory(engine)() as session:
        query = select(AuditEntry).where(col(AuditEntry.source) == source)
        rows = await session.exec(query.order_by(col(AuditEntry.seq)))
        return [one.action for one in rows.all()]


class Statements:
    """The queries asyncpg sends from now on (their first word), BEGIN and COMMIT too."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.sent: list[str] = []
        self._engine = engine
        self._watched: list[Any] = []  # asyncpg connections

    def __enter__(self) -> list[str]:
        event.listen(self._engine.sync_engine, "checkout", self._watch)
        return self.sent

    def __exit__(self, *exc: object) -> None:
        event.remove(self._engine.sync_engine, "checkout", self._watch)
        for raw in self._watched:
            raw.remove_query_logger(self._note)

    def _watch(self, dbapi_connection: Any, _record: object, _proxy: object) -> None:
        raw = dbapi_connection.driver_connection
        if all(raw is not seen for seen in self._watched):
            raw.add_query_logger(self._note)
            self._watched.append(raw)

    def _note(self, record: Any) -> None:
        self.sent.append(record.query.split(None, 1)[0].upper())


async def test_a_batch_is_one_insert_without_begin_or_commit_of_its_own(
    engine: AsyncEngine,
) -> None:
    source = f"t-{uuid4().hex[:8]}"
    with Statements(engine) as sent:
        await add_entries(session_factory(engine), [entry(source, "a"), entry(source, "b")])
    assert sent == ["INSERT"]
    assert await stored(engine, source) == ["a", "b"]


async def test_a_batch_with_a_bad_entry_stores_none_of_it(engine: AsyncEngine) -> None:
    source, taken = f"t-{uuid4().hex[:8]}", uuid4().hex
    await add_entries(session_factory(engine), [entry(source, "first", id=taken)])
    batch = [entry(source, "before"), entry(source, "duplicate", id=taken), entry(source, "after")]
    with pytest.raises(Exception, match="unique"):
        await add_entries(session_factory(engine), batch)
    assert await stored(engine, source) == ["first"]


async def test_group_commit_stores_every_good_entry_and_logs_only_the_bad_one(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    source, taken = f"t-{uuid4().hex[:8]}", uuid4().hex
    audit = AuditLog(session_factory(engine), source)
    await audit.record(entry(source, "first", id=taken))
    with Statements(engine) as sent:
        await asyncio.gather(
            *(audit.record(entry(source, f"call {n}")) for n in range(20)),
            audit.record(entry(source, "duplicate", id=taken)),
        )
    assert sorted(await stored(engine, source)) == sorted(
        ["first", *(f"call {n}" for n in range(20))]
    )
    assert caplog.text.count("could not record an audit entry") == 1
    # one or two group commits (as on SQLite), the one with the duplicate retried one by one
    assert set(sent) == {"INSERT"}
    assert len(sent) <= 2 + 21
