"""The ``access.audit_entry`` table: the audit trail, written by every service, read by
admins over REST and relayed to ``csms.audit`` (``relay``).

It lives in the ``access`` schema (owned by ``libs``, migrated by every service that
serves REST), next to the API keys: who may do what, and what they did.
"""

from collections.abc import Sequence
from datetime import datetime
from uuid import uuid4

from sqlalchemy import ColumnElement, func, insert
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from csms_api.access.store import SCHEMA
from csms_core.db import UtcDateTime, utc_now
from csms_core.events import AuditRecorded, AuditRecordedData


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_entry"
    __table_args__ = {"schema": SCHEMA}

    # Insertion order (the relay publishes in it); the id is the csms.audit event's.
    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(default_factory=lambda: uuid4().hex, max_length=32, unique=True)
    at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime, index=True)
    kind: str = Field(max_length=16)
    actor: str = Field(max_length=200, index=True)
    actor_kind: str = Field(max_length=16)
    action: str = Field(max_length=300)
    path: str | None = Field(default=None, max_length=1000)
    station_id: str | None = Field(default=None, max_length=48, index=True)
    outcome: str = Field(max_length=32)
    detail: str | None = Field(default=None, max_length=500)
    source: str = Field(max_length=64)
    client: str | None = Field(default=None, max_length=64)
    published_at: datetime | None = Field(default=None, sa_type=UtcDateTime, index=True)

    def event(self) -> AuditRecorded:
        """Its ``csms.audit`` record."""
        return AuditRecorded(
            id=self.id,
            source=f"csms/{self.source}",
            time=self.at,
            station_id=self.station_id or "",
            data=AuditRecordedData.model_validate(self.model_dump(), from_attributes=False),
        )


_INSERT = insert(AuditEntry)


async def add_entries(
    factory: async_sessionmaker[AsyncSession], entries: Sequence[AuditEntry]
) -> None:
    """Store ``entries`` in one transaction, in their order (all or none).

    On PostgreSQL one round trip: the rows go as one executemany on a connection in
    autocommit mode, which asyncpg sends as one batch ended by a single Sync, one implicit
    transaction (no BEGIN and COMMIT of their own; issue 10, the command path: on a busy
    machine each round trip of the REST process waits for a core twice, and the ORM's
    flush cost twice the CPU). Elsewhere (SQLite) one ORM transaction."""
    engine = factory.kw.get("bind")
    if not isinstance(engine, AsyncEngine) or engine.dialect.name != "postgresql":
        async with factory() as session, session.begin():
            session.add_all(entries)
        return
    rows = [entry.model_dump(exclude={"seq"}) for entry in entries]
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(_INSERT, rows)
        await autocommit.commit()  # nothing to send: counted as the transaction it was


def _conditions(
    *,
    station_id: str | None,
    actor: str | None,
    kind: str | None,
    since: datetime | None,
    until: datetime | None,
    visible: SelectOfScalar[str] | None,
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if station_id is not None:
        conditions.append(col(AuditEntry.station_id) == station_id)
    if actor is not None:
        conditions.append(col(AuditEntry.actor) == actor)
    if kind is not None:
        conditions.append(col(AuditEntry.kind) == kind)
    if since is not None:
        conditions.append(col(AuditEntry.at) >= since)
    if until is not None:
        conditions.append(col(AuditEntry.at) < until)
    if visible is not None:  # a site-limited caller: its sites' stations only
        conditions.append(col(AuditEntry.station_id).in_(visible))
    return conditions


async def page(
    session: AsyncSession,
    *,
    limit: int,
    offset: int,
    station_id: str | None = None,
    actor: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    visible: SelectOfScalar[str] | None = None,
) -> tuple[Sequence[AuditEntry], int]:
    """Entries newest first, and how many match."""
    conditions = _conditions(
        station_id=station_id, actor=actor, kind=kind, since=since, until=until, visible=visible
    )
    rows = await session.exec(
        select(AuditEntry)
        .where(*conditions)
        .order_by(col(AuditEntry.seq).desc())
        .offset(offset)
        .limit(limit)
    )
    total = await session.exec(select(func.count()).select_from(AuditEntry).where(*conditions))
    return rows.all(), total.one()


async def unpublished(session: AsyncSession, limit: int) -> Sequence[AuditEntry]:
    """The oldest entries not on ``csms.audit`` yet (locked: one relay takes each)."""
    query = (
        select(AuditEntry)
        .where(col(AuditEntry.published_at).is_(None))
        .order_by(col(AuditEntry.seq))
        .limit(limit)
    )
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return (await session.exec(query)).all()
