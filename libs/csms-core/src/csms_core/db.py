"""Database access: one async engine per process, one schema per owner, Alembic migrations.

PostgreSQL in the distributed mode (asyncpg); SQLite in the embedded one
(aiosqlite), where each schema is an attached database file next to the main
one, so the same ``schema.table`` names work on both.
"""

import asyncio
import hashlib
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, DateTime, Dialect, MetaData, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.types import TypeDecorator
from sqlmodel.ext.asyncio.session import AsyncSession

# Schemas owned by ``libs`` that any component may read (station identity and directory,
# API keys): always attached on SQLite, so no caller can forget one.
SHARED_SCHEMAS = ("identity", "access")


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
        )
    engine = create_async_engine(url, connect_args={"timeout": 30})
    main_file = parsed.database or ""
    _attach_schemas(engine, main_file, list(dict.fromkeys([*SHARED_SCHEMAS, *schemas])))
    return engine


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


def utc_now() -> datetime:
    return datetime.now(UTC)


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
    config = Config()
    config.set_main_option("script_location", script_location)
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    # "heads": a service's domains may each keep their own branch of revisions.
    command.upgrade(config, "heads")


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
