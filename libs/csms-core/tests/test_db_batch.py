"""What a batch of events reads and writes in bulk: Prefetched rows, among(), insert_rows(),
upsert_rows() and Writes, on SQLite and on a real PostgreSQL (array parameters and one
statement for many writes there)."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import JSON, Column, event, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Field, SQLModel, col, select

from csms_core.db import (
    Prefetched,
    UtcDateTime,
    Writes,
    among,
    create_engine,
    insert_part,
    insert_rows,
    prefer_indexes,
    session_factory,
    upsert_part,
    upsert_rows,
    warm,
)
from tests.cluster import Infra

SCHEMA = "batchtest"


class Reading(SQLModel, table=True):
    """A row keyed like a connector status: (station, evse)."""

    __tablename__ = "reading"
    __table_args__ = {"schema": SCHEMA}

    station_id: str = Field(primary_key=True)
    evse_id: int = Field(primary_key=True)
    value: float = 0.0


class Entry(SQLModel, table=True):
    """A row like an inbox entry: a key, a time, JSON, a flag."""

    __tablename__ = "entry"
    __table_args__ = {"schema": SCHEMA}

    entry_id: str = Field(primary_key=True)
    at: datetime = Field(sa_type=UtcDateTime)
    body: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    done: bool = False


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'batch.db'}"
    infra: Infra = request.getfixturevalue("infra")
    return infra.database_url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, [SCHEMA])
    schema = SCHEMA
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            schema = f"{SCHEMA}_{uuid4().hex[:8]}"
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        await connection.run_sync(
            lambda sync: SQLModel.metadata.create_all(
                sync.execution_options(schema_translate_map={SCHEMA: schema}),
                tables=[Reading.__table__, Entry.__table__],  # type: ignore[attr-defined]
            )
        )
    engine = engine.execution_options(schema_translate_map={SCHEMA: schema})
    yield engine
    if engine.dialect.name == "postgresql":
        async with engine.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    await engine.dispose()


def counted(engine: AsyncEngine) -> list[str]:
    statements: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def count(*args: Any) -> None:
        statements.append(args[2].split()[0])

    return statements


async def test_prefetched_rows_answer_from_memory_also_for_absent_and_added_rows(
    engine: AsyncEngine,
) -> None:
    factory = session_factory(engine)
    async with factory() as session, session.begin():
        session.add_all([Reading(station_id="CP-1", evse_id=1, value=1.0)])
    statements = counted(engine)
    async with factory() as session, session.begin():
        rows = Prefetched(session)
        loaded = await rows.load(
            Reading, among(session, col(Reading.station_id), ["CP-1", "CP-2"]), lambda key: True
        )
        read_by_load = len(statements)
        stored = await rows.get(Reading, ("CP-1", 1))
        absent = await rows.get(Reading, ("CP-2", 1))
        session.add(Reading(station_id="CP-2", evse_id=1, value=2.0))
        added = await rows.get(Reading, ("CP-2", 1))
        assert len(statements) == read_by_load  # no round trip for any of them
        assert [row.value for row in loaded] == [1.0]
        assert stored is not None and stored.value == 1.0
        assert absent is None
        assert added is not None and added.value == 2.0


async def test_a_key_the_load_did_not_cover_is_read_from_the_database(
    engine: AsyncEngine,
) -> None:
    factory = session_factory(engine)
    async with factory() as session, session.begin():
        session.add(Reading(station_id="CP-9", evse_id=2, value=9.0))
    async with factory() as session, session.begin():
        rows = Prefetched(session)
        await rows.load(
            Reading,
            among(session, col(Reading.station_id), ["CP-1"]),
            lambda key: key[0] == "CP-1",
        )
        other = await rows.get(Reading, ("CP-9", 2))
        assert other is not None and other.value == 9.0


async def test_among_matches_the_given_keys(engine: AsyncEngine) -> None:
    factory = session_factory(engine)
    async with factory() as session, session.begin():
        session.add_all(Reading(station_id=f"CP-{n}", evse_id=1) for n in range(5))
    async with factory() as session:
        for wanted in (["CP-1", "CP-3", "CP-7"], ["CP-4"], []):
            found = await session.exec(
                select(Reading.station_id).where(among(session, col(Reading.station_id), wanted))
            )
            assert sorted(found) == sorted(set(wanted) & {f"CP-{n}" for n in range(5)})


async def test_a_lookup_that_prefers_indexes_reads_a_grown_table_by_index_not_whole(
    engine: AsyncEngine,
) -> None:
    """A statement's cached generic plan made while the table was small (and analyzed so)
    goes on reading it whole once the table has grown (the premise, checked); made in
    transactions that prefer indexes, the same statement's plan reads by the primary key
    before and after the growth, and finds the same rows."""
    factory = session_factory(engine)

    async def add(first: int, count: int) -> None:
        async with factory() as session, session.begin():
            now = datetime.now(UTC)
            session.add_all(Entry(entry_id=f"e-{n}", at=now) for n in range(first, count))

    async def lookup(keys: list[str], prefer: bool) -> tuple[list[str], int, int, int]:
        """The rows found, the table's sequential and index scans that took, and the
        server process (one connection throughout: the pool is only ever used by one)."""
        table = Entry.__table__.name  # type: ignore[attr-defined]
        counters = text(
            "SELECT seq_scan, COALESCE(idx_scan, 0), pg_backend_pid() "
            "FROM pg_stat_xact_user_tables WHERE relname = :table"
        )
        async with factory() as session, session.begin():
            connection = await session.connection()
            # The generic plan from the first run, as a statement may keep after five.
            await connection.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
            if prefer:
                await prefer_indexes(session)
            before = (await connection.execute(counters, {"table": table})).one()
            query = select(Entry.entry_id).where(among(session, col(Entry.entry_id), keys))
            if prefer:  # a statement of its own (another text): a plan of its own
                query = query.where(col(Entry.done).in_([True, False]))
            found = sorted(await session.exec(query))
            after = (await connection.execute(counters, {"table": table})).one()
            return found, after[0] - before[0], after[1] - before[1], after[2]

    await add(0, 50)
    if engine.dialect.name != "postgresql":
        async with factory() as session:
            await prefer_indexes(session)  # nothing to set: SQLite has no such plans
        return
    schema = engine.get_execution_options()["schema_translate_map"][SCHEMA]
    async with engine.connect() as connection:
        await connection.execute(text(f'ANALYZE "{schema}".entry'))
    keys = ["e-3", "e-4100", "absent"]
    found, sequential, _, server = await lookup(keys, prefer=False)
    assert (found, sequential) == (["e-3"], 1)  # a small table: read whole
    found, sequential, by_index, _ = await lookup(keys, prefer=True)
    assert (found, sequential) == (["e-3"], 0) and by_index >= 1
    await add(50, 20_000)
    assert await lookup(keys, prefer=False) == (["e-3", "e-4100"], 1, 0, server)
    found, sequential, by_index, same = await lookup(keys, prefer=True)
    assert (found, sequential, same) == (["e-3", "e-4100"], 0, server)
    assert by_index >= 1  # one index scan, or one per key


async def test_insert_rows_stores_many_rows_in_the_transaction(engine: AsyncEngine) -> None:
    at = datetime(2026, 12, 1, 12, 0, 0, 123000, tzinfo=UTC)
    rows = [
        {"entry_id": f"e{n}", "at": at, "body": {"n": n, "items": [1, "two"]}, "done": n % 2 == 0}
        for n in range(300)
    ] + [{"entry_id": "none", "at": at, "body": None, "done": False}]
    factory = session_factory(engine)
    statements = counted(engine)
    async with factory() as session, session.begin():
        await insert_rows(session, Entry, rows)
    assert statements == ["INSERT"]  # one executemany, on PostgreSQL one over unnest()
    async with factory() as session:
        stored = (await session.exec(select(Entry).order_by(col(Entry.entry_id)))).all()
    by_id = {entry.entry_id: entry for entry in stored}
    assert len(stored) == 301
    assert by_id["e7"].at == at
    assert by_id["e7"].body == {"n": 7, "items": [1, "two"]}
    assert (by_id["e7"].done, by_id["e8"].done) == (False, True)
    assert by_id["none"].body is None


async def test_insert_rows_rolls_back_with_its_transaction(engine: AsyncEngine) -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    factory = session_factory(engine)
    with pytest.raises(RuntimeError):
        async with factory() as session, session.begin():
            await insert_rows(session, Entry, [{"entry_id": "x", "at": at, "done": False}])
            raise RuntimeError("the batch failed")
    async with factory() as session:
        assert (await session.exec(select(Entry))).all() == []


async def test_upsert_rows_inserts_and_updates_in_one_statement_keeping_newer_rows(
    engine: AsyncEngine,
) -> None:
    early, late = datetime(2026, 12, 1, 12, tzinfo=UTC), datetime(2026, 12, 1, 13, tzinfo=UTC)
    factory = session_factory(engine)
    async with factory() as session, session.begin():
        await insert_rows(
            session,
            Entry,
            [
                {"entry_id": "older", "at": early, "done": False},
                {"entry_id": "newer", "at": late, "done": False},
            ],
        )
    statements = counted(engine)
    async with factory() as session, session.begin():
        await upsert_rows(
            session,
            Entry,
            [
                {"entry_id": "older", "at": late, "done": True},  # replaces the older row
                {"entry_id": "newer", "at": early, "done": True},  # older than stored: kept
                {"entry_id": "fresh", "at": early, "done": True},  # not stored yet
            ],
            unless_newer="at",
        )
    assert statements == ["INSERT"]
    async with factory() as session:
        stored = {e.entry_id: (e.at, e.done) for e in (await session.exec(select(Entry))).all()}
    assert stored == {"older": (late, True), "newer": (late, False), "fresh": (early, True)}


async def test_upsert_rows_without_a_condition_updates_every_stored_row(
    engine: AsyncEngine,
) -> None:
    factory = session_factory(engine)
    async with factory() as session, session.begin():
        await upsert_rows(session, Reading, [{"station_id": "CP-1", "evse_id": 1, "value": 1.0}])
        await upsert_rows(session, Reading, [])  # nothing: no statement
    async with factory() as session, session.begin():
        await upsert_rows(
            session,
            Reading,
            [
                {"station_id": "CP-1", "evse_id": 1, "value": 2.0},
                {"station_id": "CP-1", "evse_id": 2, "value": 3.0},
            ],
        )
    async with factory() as session:
        rows = (await session.exec(select(Reading))).all()
    assert sorted((r.station_id, r.evse_id, r.value) for r in rows) == [
        ("CP-1", 1, 2.0),
        ("CP-1", 2, 3.0),
    ]


async def test_upsert_rows_of_many_rows_and_of_a_json_column(engine: AsyncEngine) -> None:
    """Many rows in one statement (on PostgreSQL from array parameters, unnest()); rows
    with a JSON column (no array form there), a null one among them, go row by row."""
    at = datetime(2026, 12, 1, 12, tzinfo=UTC)
    factory = session_factory(engine)
    readings = [{"station_id": f"CP-{n}", "evse_id": n % 3, "value": n / 2} for n in range(300)]
    entries = [
        {"entry_id": "a", "at": at, "body": {"n": 1}, "done": False},
        {"entry_id": "b", "at": at, "body": None, "done": True},
    ]
    async with factory() as session, session.begin():
        await upsert_rows(session, Reading, readings)
        await upsert_rows(session, Entry, entries)
    async with factory() as session:
        stored = {(r.station_id, r.evse_id, r.value) for r in await session.exec(select(Reading))}
        bodies = {e.entry_id: (e.body, e.done) for e in await session.exec(select(Entry))}
    assert stored == {(row["station_id"], row["evse_id"], row["value"]) for row in readings}
    assert bodies == {"a": ({"n": 1}, False), "b": (None, True)}


async def test_writes_of_several_tables_go_in_one_statement_on_postgresql(
    engine: AsyncEngine,
) -> None:
    """A batch's closing writes (issue 10: one round trip where there was one per
    statement): an upsert and an insert with JSON of two tables as one statement on
    PostgreSQL; a second part of a table already in it runs alone; on SQLite one statement
    each. Everything is stored, and nothing is if the transaction rolls back."""
    at = datetime(2026, 12, 1, 12, tzinfo=UTC)
    factory = session_factory(engine)
    async with factory() as session, session.begin():
        await upsert_rows(session, Reading, [{"station_id": "CP-1", "evse_id": 1, "value": 1.0}])
    readings = [{"station_id": "CP-1", "evse_id": n, "value": n + 0.5} for n in range(1, 4)]
    entries = [
        {"entry_id": "a", "at": at, "body": {"items": [1, "two"]}, "done": False},
        {"entry_id": "b", "at": at, "body": None, "done": True},
    ]
    more = [{"entry_id": "c", "at": at, "body": {"n": 3}, "done": False}]

    def parts(session: Any) -> Writes:
        writes = Writes()
        writes.add(upsert_part(session, Reading, readings))
        writes.add(insert_part(session, Entry, entries))
        writes.add(insert_part(session, Entry, []))  # nothing: no part
        writes.add(insert_part(session, Entry, more))
        return writes

    with pytest.raises(RuntimeError):
        async with factory() as session, session.begin():
            await parts(session).run(session)
            raise RuntimeError("the batch failed")
    statements = counted(engine)
    async with factory() as session, session.begin():
        writes = parts(session)
        assert len(writes.parts) == 3
        await writes.run(session)
        assert writes.parts == []  # run once
    if engine.dialect.name == "postgresql":
        assert statements == ["INSERT", "WITH"]  # the second part of entry, then the rest
    else:
        assert statements == ["INSERT", "INSERT", "INSERT"]
    async with factory() as session:
        stored = {(r.station_id, r.evse_id, r.value) for r in await session.exec(select(Reading))}
        bodies = {e.entry_id: (e.body, e.done) for e in await session.exec(select(Entry))}
    assert stored == {("CP-1", 1, 1.5), ("CP-1", 2, 2.5), ("CP-1", 3, 3.5)}
    assert bodies == {
        "a": ({"items": [1, "two"]}, False),
        "b": (None, True),
        "c": ({"n": 3}, False),
    }


async def test_warm_opens_connections_the_pool_keeps(engine: AsyncEngine) -> None:
    """A REST process's start-up (issue 10): its first requests find connections open."""
    await engine.dispose()  # none open
    opened: list[object] = []
    event.listen(engine.sync_engine, "connect", lambda *args: opened.append(args))

    await warm(engine, 3)

    assert len(opened) == 3
    assert engine.sync_engine.pool.checkedin() == 3  # type: ignore[attr-defined]
    async with engine.connect() as connection:  # taken from the pool: none opened
        await connection.execute(text("SELECT 1"))
    assert len(opened) == 3
