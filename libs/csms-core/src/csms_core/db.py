"""Database access: one async engine per process, one schema per owner, Alembic migrations.

PostgreSQL in the distributed mode (asyncpg); SQLite in the embedded one
(aiosqlite), where each schema is an attached database file next to the main
one, so the same ``schema.table`` names work on both.
"""

import asyncio
import functools
import hashlib
import weakref
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar, cast

import orjson
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    Column,
    Connection,
    DateTime,
    Dialect,
    MetaData,
    String,
    Table,
    Text,
    any_,
    bindparam,
    event,
    func,
    insert,
    inspect,
    text,
    update,
)
from sqlalchemy import cast as cast_
from sqlalchemy import select as sql_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.sql import Executable, Select
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

# Schemas owned by ``libs`` that any component may read (station identity and directory,
# API keys): always attached on SQLite, so no caller can forget one.
SHARED_SCHEMAS = ("identity", "access")
M = TypeVar("M", bound=SQLModel)


def create_engine(url: str, schemas: Sequence[str] = ()) -> AsyncEngine:
    """An engine for ``url``; on SQLite, ``schemas`` (and SHARED_SCHEMAS) are attached as
    database files."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(
            url,
            pool_size=10,
            max_overflow=20,
            # A connection broken by a database restart fails its next statement, which the
            # consumer retries on a fresh one: cheaper than a ping before every checkout.
            pool_recycle=1800,
            connect_args=_postgres_connect_args(parsed),
            json_serializer=_json_text,
            json_deserializer=orjson.loads,
        )
    engine = create_async_engine(
        url,
        connect_args={"timeout": 30},
        json_serializer=_json_text,
        json_deserializer=orjson.loads,
    )
    main_file = parsed.database or ""
    _attach_schemas(engine, main_file, list(dict.fromkeys([*SHARED_SCHEMAS, *schemas])))
    return engine


async def warm(engine: AsyncEngine, connections: int) -> None:
    """Open ``connections`` of the engine's pool now, each with a round trip (a REST process
    at start-up: its first requests then wait for no connection to be opened; the pool keeps
    up to its size)."""

    async def one() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    await asyncio.gather(*(one() for _ in range(connections)))


def _json_text(value: Any) -> str:
    """JSON columns written by orjson (every consumed event stores its outbox as JSON):
    the same JSON as the standard library's, bar whitespace, in a fraction of its time."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _postgres_connect_args(url: URL) -> dict[str, Any]:
    """No TLS to a database on this host unless the URL asks for it (asyncpg prefers TLS,
    which costs a third of a small transaction's time on loopback)."""
    if url.host in _LOOPBACK and not {"ssl", "sslmode"} & set(url.query):
        return {"ssl": False}
    return {}


_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _attach_schemas(engine: AsyncEngine, main_file: str, schemas: Sequence[str]) -> None:
    def schema_file(schema: str) -> str:
        if main_file in ("", ":memory:"):
            return ":memory:"
        path = Path(main_file)
        return str(path.with_name(f"{path.stem}.{schema}{path.suffix or '.db'}"))

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        for schema in schemas:
            cursor.execute(f"ATTACH DATABASE '{schema_file(schema)}' AS \"{schema}\"")
        cursor.close()


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and read back zone-aware on PostgreSQL and SQLite alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.replace(tzinfo=None) if dialect.name == "sqlite" else aware

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


E = TypeVar("E", bound=StrEnum)


class StrEnumType(TypeDecorator[E]):
    """A StrEnum stored as its value (a plain string column) and read back as the enum.

    SQLAlchemy's own Enum type would store member names and, on PostgreSQL, want a
    native enum type, which every new OCPP value would have to migrate.
    """

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E]) -> None:
        super().__init__()
        self._enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self._enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self._enum(value)


def enum_column(
    enum: type[StrEnum], *, nullable: bool = False, index: bool = False
) -> "Column[Any]":
    """The column of a StrEnum field (pass as ``sa_column=``)."""
    return Column(StrEnumType(enum), nullable=nullable, index=index)


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_ocpp_time(value: str) -> datetime:
    """An OCPP dateTime (RFC 3339) as an aware UTC datetime; a zone-less value counts as UTC."""
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def ocpp_time(value: datetime) -> str:
    """A datetime as OCPP writes it (UTC, milliseconds, ``Z``)."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def consumer_lanes(engine: AsyncEngine, wanted: int) -> int:
    """How many stations' events to handle side by side: SQLite takes one writer at a time,
    so handling stations side by side there would only queue them."""
    return 1 if engine.dialect.name == "sqlite" else wanted


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose work commits on success and rolls back on error."""
    async with factory() as session, session.begin():
        yield session


# Alembic keeps its running migration in module globals (``alembic.op``/``context``), so
# the services of one process (``csms up``) migrate one after another.
_migrating: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]" = (
    weakref.WeakKeyDictionary()
)


async def migrate(engine: AsyncEngine, script_location: str, schema: str) -> None:
    """Bring ``schema`` to the newest revision of the Alembic scripts at ``script_location``.

    Replicas starting together serialise on a PostgreSQL advisory lock, so
    exactly one of them runs each migration; within a process, one at a time.
    """
    lock = _migrating.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock, engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            lock_id = int.from_bytes(hashlib.sha256(schema.encode()).digest()[:4], "big")
            await connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})
            await connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await connection.run_sync(_upgrade, script_location, schema)


def _upgrade(connection: Connection, script_location: str, schema: str) -> None:
    """``alembic upgrade heads`` with the scripts read once per process, and nothing run
    when the schema is at its heads already (every start but the first, and what made a
    service's start and each of its tests spend 0.2 s re-reading the revision files)."""
    config = _config(script_location)
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    scripts = _scripts(script_location)
    # "heads": a service's domains may each keep their own branch of revisions.
    heads = set(scripts.get_heads())
    current = MigrationContext.configure(connection, opts={"version_table_schema": schema})
    if set(current.get_current_heads()) == heads:
        return

    def upgrade(revision: Any, context: MigrationContext) -> Any:
        return scripts._upgrade_revs("heads", revision)

    with EnvironmentContext(config, scripts, fn=upgrade, destination_rev="heads"):
        scripts.run_env()


def _config(script_location: str) -> Config:
    config = Config()
    config.set_main_option("script_location", script_location)
    return config


@functools.cache
def _scripts(script_location: str) -> ScriptDirectory:
    """The revision files at ``script_location``, parsed once."""
    return ScriptDirectory.from_config(_config(script_location))


def run_migrations_online(target_metadata: MetaData) -> None:
    """The body of every service's Alembic ``env.py``: migrate on the given connection."""
    from alembic import context  # a proxy that exists only while Alembic runs

    config = context.config
    connection: Connection = config.attributes["connection"]
    schema: str = config.attributes["schema"]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table_schema=schema,
        include_schemas=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


class Prefetched:
    """Rows of some tables read in bulk for a batch of events, by primary key, so that a
    handler's lookup of one needs no round trip; also "no such row" is known.

    ``load`` reads every row of ``model`` matching a condition (e.g. the batch's
    stations) and makes the lookup of that model authoritative for keys the condition
    covers (``covers``); rows of a loaded model added to the session afterwards (by
    an event of the batch) are found too, flushed or not.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._rows: dict[type[Any], dict[Any, Any]] = {}
        self._covers: dict[type[Any], Callable[[Any], bool]] = {}
        event.listen(session.sync_session, "transient_to_pending", self._added)

    async def load(
        self, model: type[M], condition: Any, covers: Callable[[Any], bool]
    ) -> Sequence[M]:
        """Read the rows of ``model`` matching ``condition``; ``covers(key)``: whether a key
        not among them is certainly absent."""
        rows = (await self._session.exec(select(model).where(condition))).all()
        mapper = inspect(model)
        self._rows[model] = {mapper.identity_key_from_instance(row)[1]: row for row in rows}
        self._covers[model] = covers
        return rows

    async def get(self, model: type[M], key: tuple[Any, ...]) -> M | None:
        """The row of ``model`` with primary key ``key`` (as ``session.get`` would find it)."""
        rows = self._rows.get(model)
        if rows is not None:
            row = rows.get(key)
            if row is not None or self._covers[model](key):
                return cast(M | None, row)
        return await self._session.get(model, key)

    def _added(self, _session: Any, instance: Any) -> None:
        rows = self._rows.get(type(instance))
        if rows is not None:
            key = inspect(type(instance)).primary_key_from_instance(instance)
            rows[tuple(key)] = instance


async def prefer_indexes(session: AsyncSession) -> None:
    """For the rest of the transaction, plan no sequential scan where an index serves
    (PostgreSQL; nothing elsewhere). A batch's lookups are ``= ANY($1)`` of an array
    parameter over tables that grow fast from empty, and a prepared statement keeps the
    generic plan it made after its first few runs: made while a table held a few pages,
    that plan reads it whole, and goes on doing so as it grows until the next ANALYZE,
    comparing every row with every key of the parameter. Measured in a reconnect storm of
    10,000 stations: 0.4-4.2 s per batch read of a 20,000-50,000-row inbox and 2,569
    boots answered Pending, until autovacuum's ANALYZE replaced the plan. A plan made
    under this setting stays an index plan (it is cached with the statement, so every
    transaction that runs these statements sets it first); a table with no index for a
    query is still read whole. Planning each statement anew (``plan_cache_mode =
    force_custom_plan``) avoids the stale plan too, but cost the consumer its planning in
    every statement: event lag p99 135 / 210 ms against 97 / 107 at 2,000/s."""
    if _dialect(session) == "postgresql":
        connection = await session.connection()
        await connection.execute(text("SET LOCAL enable_seqscan = off"))


def among(session: AsyncSession, column: Any, values: Collection[Any]) -> Any:
    """``column IN values`` for a batch's many keys: on PostgreSQL one array parameter
    (``= ANY($1)``: one prepared statement whatever the count), elsewhere an IN list."""
    if _dialect(session) == "postgresql":
        return column == any_(cast_(list(values), ARRAY(column.type)))
    return column.in_(values)


async def mark_completed(
    factory: async_sessionmaker[AsyncSession], model: type[SQLModel], event_ids: Collection[str]
) -> None:
    """Mark a batch's inbox rows (``model``: a service's processed-event table, keyed by
    ``event_id`` with a ``completed`` flag) completed once their outbox is out, in one UPDATE."""
    if not event_ids:
        return
    table = model.__table__  # type: ignore[attr-defined]
    async with transaction(factory) as session:
        await prefer_indexes(session)
        await session.exec(
            update(table)
            .where(among(session, table.c.event_id, event_ids))
            .values(completed=True)
            # No ORM rows of these in this session: nothing to synchronise.
            .execution_options(synchronize_session=False)
        )


@dataclass(frozen=True, slots=True)
class Part:
    """One statement of a transaction's closing writes and its parameters: one dict (one
    execution), or a list of them (an executemany: SQLite, or a statement with no array
    form)."""

    statement: Executable
    params: dict[str, Any] | list[dict[str, Any]]


@dataclass
class Writes:
    """The statements a transaction writes at its end (a batch's coalesced rows, its inbox
    rows), gathered and run together: on PostgreSQL the single-execution ones as one
    statement (all but the last as data-modifying CTEs), one round trip where there was
    one per statement (each a wait for the server and a wake-up of the process);
    elsewhere one after another. An executemany, and a part whose parameter names an
    earlier part took (two parts of one table), runs as a statement of its own first.

    So the parts must write different rows and none may depend on another's writes: the
    sub-statements of one PostgreSQL statement run on the same snapshot and do not see
    each other's changes, and the order between the parts is not kept."""

    parts: list[Part] = field(default_factory=list)

    def add(self, part: Part | None) -> None:
        if part is not None:
            self.parts.append(part)

    async def run(self, session: AsyncSession) -> None:
        parts, self.parts = self.parts, []
        if _dialect(session) != "postgresql":
            for part in parts:
                await session.exec(part.statement, params=part.params)  # type: ignore[call-overload]
            return
        together: list[Part] = []
        names: set[str] = set()
        for part in parts:
            # Its statement would read the values of another part's parameters.
            if isinstance(part.params, dict) and names.isdisjoint(part.params):
                together.append(part)
                names.update(part.params)
            else:
                await session.exec(part.statement, params=part.params)  # type: ignore[call-overload]
        if len(together) == 1:
            await session.exec(together[0].statement, params=together[0].params)  # type: ignore[call-overload]
        elif together:
            statement = _together(tuple(part.statement for part in together))
            params = {
                k: v for part in together for k, v in cast(dict[str, Any], part.params).items()
            }
            await session.exec(statement, params=params)  # type: ignore[call-overload]


@functools.lru_cache(maxsize=256)
def _together(statements: tuple[Executable, ...]) -> Executable:
    """The statements as one, all but the last as CTEs of it (built once per combination
    of kept statements; their parameters have names of their own: ``unnest_parameters``)."""
    *first, last = statements
    ctes = [cast(Any, statement).cte(f"write_{index}") for index, statement in enumerate(first)]
    return cast(Any, last).add_cte(*ctes)  # type: ignore[no-any-return]


def insert_part(
    session: AsyncSession, model: type[SQLModel], rows: Sequence[dict[str, Any]]
) -> Part | None:
    """The INSERT of many rows (each with the same keys): on PostgreSQL one execution over
    ``unnest`` of an array parameter per column (JSON columns as text, cast in the
    server), elsewhere an executemany. None for no rows."""
    if not rows:
        return None
    table: Table = inspect(model).local_table
    unnested = unnest_parameters(session, table, rows, json_as_text=True)
    if unnested is None:
        return Part(insert(table), list(rows))
    source, parameters = unnested
    key = (table, tuple(rows[0]))
    statement = _INSERTS.get(key)
    if statement is None:
        statement = _INSERTS[key] = insert(table).from_select(list(rows[0]), source)
    return Part(statement, parameters)


async def insert_rows(
    session: AsyncSession, model: type[SQLModel], rows: Sequence[dict[str, Any]]
) -> None:
    """Insert many rows in the session's transaction, in one statement (``insert_part``)."""
    await Writes([part] if (part := insert_part(session, model, rows)) else []).run(session)


def upsert_part(
    session: AsyncSession,
    model: type[SQLModel],
    rows: Sequence[dict[str, Any]],
    *,
    unless_newer: str | None = None,
) -> Part | None:
    """The upsert of many rows (each key once): INSERT ... ON CONFLICT DO UPDATE, a row
    whose primary key is stored updating that one instead (PostgreSQL and SQLite alike),
    on PostgreSQL one execution over ``unnest``. ``unless_newer``: a column; a stored row
    whose value there is newer than the new row's stays as it is (a replay out of order
    changes nothing). None for no rows."""
    if not rows:
        return None
    table: Table = inspect(model).local_table
    unnested = unnest_parameters(session, table, rows)
    if unnested is not None:  # PostgreSQL: one execution of the statement for all the rows
        source, parameters = unnested
        key = (table, tuple(rows[0]), unless_newer)
        upsert = _UPSERTS.get(key)
        if upsert is None:
            statement = postgresql.insert(table).from_select(list(rows[0]), source)
            upsert = _UPSERTS[key] = _on_conflict(statement, table, list(rows[0]), unless_newer)
        return Part(upsert, parameters)
    insert_of = postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert
    return Part(_on_conflict(insert_of(table), table, list(rows[0]), unless_newer), list(rows))


async def upsert_rows(
    session: AsyncSession,
    model: type[SQLModel],
    rows: Sequence[dict[str, Any]],
    *,
    unless_newer: str | None = None,
) -> None:
    """Insert or update many rows in one statement (``upsert_part``)."""
    part = upsert_part(session, model, rows, unless_newer=unless_newer)
    await Writes([part] if part else []).run(session)


def _on_conflict(
    statement: postgresql.Insert | sqlite.Insert,
    table: Table,
    names: list[str],
    unless_newer: str | None,
) -> postgresql.Insert | sqlite.Insert:
    keys = [column.name for column in table.primary_key.columns]
    changes = {name: statement.excluded[name] for name in names if name not in keys}
    where = (
        table.c[unless_newer] <= statement.excluded[unless_newer]
        if unless_newer is not None
        else None
    )
    return statement.on_conflict_do_update(index_elements=keys, set_=changes, where=where)


# Statements over unnest(...) are built once per table and columns: a new one per batch
# cost its construction and SQLAlchemy's cache key of it every time (measured: most of
# the CPU of a small batch's status and last-seen writes), a kept one neither.
_UNNESTS: dict[tuple[Table, tuple[str, ...], bool], Select[Any] | None] = {}
_UPSERTS: dict[tuple[Table, tuple[str, ...], str | None], Any] = {}
_INSERTS: dict[tuple[Table, tuple[str, ...]], Executable] = {}


def unnest_parameters(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    json_as_text: bool = False,
) -> tuple[Select[Any], dict[str, list[Any]]] | None:
    """On PostgreSQL, ``rows`` (each with the same keys, columns of ``table``) as a SELECT of
    one ``unnest`` of an array parameter per column, and those parameters: a statement over
    it runs once for all the rows, where an executemany runs once per row (in the server,
    and encodes each row's parameters here). The SELECT is the same object for the same
    table and columns: a statement built on it may be kept for the next rows. None
    elsewhere, for no rows, or for a column without an array form here (JSON, unless
    ``json_as_text``: then its values go as text, cast to JSON in the server)."""
    bind = session.bind
    if bind is None or bind.dialect.name != "postgresql" or not rows:
        return None
    names = tuple(rows[0])
    key = (table, names, json_as_text)
    if key not in _UNNESTS:
        _UNNESTS[key] = _unnest_select(table, names, json_as_text)
    source = _UNNESTS[key]
    if source is None:
        return None
    parameters = {}
    for name in names:
        kind = table.c[name].type
        values = [row[name] for row in rows]
        impl = kind.impl_instance if isinstance(kind, TypeDecorator) else kind
        if isinstance(impl, JSON):
            values = [None if value is None else _json_text(value) for value in values]
        elif (
            isinstance(kind, TypeDecorator)
            and type(kind).process_bind_param is not TypeDecorator.process_bind_param
        ):
            values = [kind.process_bind_param(value, bind.dialect) for value in values]
        parameters[_unnest_name(table, name)] = values
    return source, parameters


def _unnest_select(table: Table, names: Sequence[str], json_as_text: bool) -> Select[Any] | None:
    columns: list[Any] = []
    for name in names:
        kind = table.c[name].type
        if isinstance(kind, TypeDecorator):
            kind = kind.impl_instance
        if isinstance(kind, JSON) and json_as_text:
            texts = bindparam(_unnest_name(table, name), type_=ARRAY(Text))
            columns.append(cast_(func.unnest(cast_(texts, ARRAY(Text))), kind).label(name))
            continue
        if isinstance(kind, JSON | ARRAY):
            return None
        values = bindparam(_unnest_name(table, name), type_=ARRAY(kind))
        columns.append(func.unnest(cast_(values, ARRAY(kind))).label(name))
    return sql_select(*columns)


def _unnest_name(table: Table, column: str) -> str:
    """The array parameter of ``column``: named after its table too, so that statements of
    several tables run as one (``Writes``) each have their own."""
    return f"unnest_{table.name}_{column}"


def _dialect(session: AsyncSession) -> str:
    bind = session.bind
    return bind.dialect.name if bind is not None else ""
