"""The ``identity`` schema: station credentials and security profile, and which site a
station belongs to (the station directory every service reads for site-limited tokens)."""

import asyncio
import base64
import hashlib
import hmac
import secrets
from collections import defaultdict
from collections.abc import Collection, Mapping
from datetime import UTC, datetime

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from csms_core.db import UtcDateTime, among, migrate

SCHEMA = "identity"
_ITERATIONS = 200_000


def _now() -> datetime:
    return datetime.now(UTC)


class StationIdentity(SQLModel, table=True):
    __tablename__ = "station_identity"
    __table_args__ = {"schema": SCHEMA}

    station_id: str = Field(primary_key=True, max_length=48)
    password_hash: str | None = None
    lenient: bool = False
    updated_at: datetime = Field(default_factory=_now)
    # The lowest OCPP security profile this station may connect with (OCPP 2.0.1 Part 2
    # A00.FR.2xx: never downgraded); None: the gateway's CSMS_MIN_SECURITY_PROFILE.
    security_profile: int | None = None
    # The RegistrationStatus of its last boot (Accepted, Pending, Rejected), written by the
    # service that decides boots; the gateway's boot gate starts from it. None: not booted
    # since it was registered (registered stations are accepted).
    registration_status: str | None = Field(default=None, max_length=16)
    # OCPP 2.0.1 A01 / 1.6 whitepaper: a new password sent to the station; the old one
    # stays valid until the station connects with this one, which then replaces it.
    pending_password_hash: str | None = None


class StationSite(SQLModel, table=True):
    """The station directory: the site a station belongs to, written by the smart charging
    service (the owner of sites) when it assigns a station, read by every service to limit
    a site-limited token to its sites' stations."""

    __tablename__ = "station_site"
    __table_args__ = {"schema": SCHEMA}

    station_id: str = Field(primary_key=True, max_length=48)
    site_id: str = Field(index=True, max_length=64)
    updated_at: datetime = Field(default_factory=_now, sa_type=UtcDateTime)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _ITERATIONS)
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return f"pbkdf2_sha256${_ITERATIONS}${encoded[0]}${encoded[1]}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    try:
        candidate = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), base64.b64decode(salt), int(iterations)
        )
        return hmac.compare_digest(candidate, base64.b64decode(digest))
    except ValueError:  # a corrupted hash (binascii.Error is a ValueError) matches nothing
        return False


async def migrate_identity(engine: AsyncEngine) -> None:
    await migrate(engine, "csms_core.identity:migrations", SCHEMA)


class IdentityStore:
    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = factory

    async def get(self, station_id: str) -> StationIdentity | None:
        async with self._factory() as session:
            return await session.get(StationIdentity, station_id)

    async def get_many(self, station_ids: Collection[str]) -> dict[str, StationIdentity]:
        """The identities of those of ``station_ids`` that have one, in one statement."""
        async with self._factory() as session:
            found = await session.exec(
                select(StationIdentity).where(
                    among(session, col(StationIdentity.station_id), list(station_ids))
                )
            )
            return {identity.station_id: identity for identity in found}

    async def save(
        self,
        station_id: str,
        *,
        password: str | None = None,
        lenient: bool | None = None,
        security_profile: int | None = None,
    ) -> StationIdentity:
        """Create or update; a None argument leaves that attribute as it is."""
        # PBKDF2 is deliberately slow (~0.1 s): never on an event loop that serves stations.
        password_hash = (
            await asyncio.to_thread(hash_password, password) if password is not None else None
        )
        async with self._factory() as session, session.begin():
            identity = await session.get(StationIdentity, station_id) or StationIdentity(
                station_id=station_id
            )
            if password_hash is not None:
                identity.password_hash = password_hash
            if lenient is not None:
                identity.lenient = lenient
            if security_profile is not None:
                identity.security_profile = security_profile
            identity.updated_at = _now()
            session.add(identity)
        return identity

    async def stage_password(self, station_id: str, password: str) -> str:
        """Keep ``password`` as the station's next one (both valid until it is used);
        its hash, for ``discard_pending_password``."""
        pending = await asyncio.to_thread(hash_password, password)
        async with self._factory() as session, session.begin():
            identity = await session.get(StationIdentity, station_id) or StationIdentity(
                station_id=station_id
            )
            identity.pending_password_hash, identity.updated_at = pending, _now()
            session.add(identity)
        return pending

    async def discard_pending_password(self, station_id: str, pending_hash: str) -> bool:
        """Forget a staged password (the station refused it), if it is still that one."""
        async with self._factory() as session, session.begin():
            result = await session.exec(
                update(StationIdentity)
                .where(col(StationIdentity.station_id) == station_id)
                .where(col(StationIdentity.pending_password_hash) == pending_hash)
                .values(pending_password_hash=None, updated_at=_now())
            )
            return bool(result.rowcount)

    async def promote_pending_password(self, station_id: str, pending_hash: str) -> bool:
        """The station connected with its staged password: from now on only that one is
        valid (compare-and-set: a newer staged password stays staged)."""
        async with self._factory() as session, session.begin():
            result = await session.exec(
                update(StationIdentity)
                .where(col(StationIdentity.station_id) == station_id)
                .where(col(StationIdentity.pending_password_hash) == pending_hash)
                .values(password_hash=pending_hash, pending_password_hash=None, updated_at=_now())
            )
            return bool(result.rowcount)

    async def delete(self, station_id: str) -> None:
        async with self._factory() as session, session.begin():
            identity = await session.get(StationIdentity, station_id)
            if identity is not None:
                await session.delete(identity)


async def record_registration(session: AsyncSession, station_id: str, status: str) -> None:
    """Record (in the caller's transaction) the RegistrationStatus a registered station's
    boot got; a station without an identity record gets none (it stays unknown)."""
    await session.exec(
        update(StationIdentity)
        .where(col(StationIdentity.station_id) == station_id)
        .values(registration_status=status)
    )


async def record_registrations(session: AsyncSession, statuses: Mapping[str, str]) -> None:
    """``record_registration`` of many stations at once (a batch's boots): one UPDATE per
    status. The session's objects are not synchronised (none of this table is in it)."""
    by_status: dict[str, list[str]] = defaultdict(list)
    for station_id, status in statuses.items():
        by_status[status].append(station_id)
    for status, station_ids in by_status.items():
        await session.exec(
            update(StationIdentity)
            .where(among(session, col(StationIdentity.station_id), station_ids))
            .values(registration_status=status)
            .execution_options(synchronize_session=False)
        )


async def assign_site(session: AsyncSession, station_id: str, site_id: str) -> None:
    """Record (in the caller's transaction) that ``station_id`` is on ``site_id``."""
    entry = await session.get(StationSite, station_id) or StationSite(
        station_id=station_id, site_id=site_id
    )
    entry.site_id, entry.updated_at = site_id, _now()
    session.add(entry)


async def unassign_site(session: AsyncSession, station_id: str) -> None:
    """Record (in the caller's transaction) that ``station_id`` is on no site."""
    await session.exec(delete(StationSite).where(col(StationSite.station_id) == station_id))


async def site_of(session: AsyncSession, station_id: str) -> str | None:
    entry = await session.get(StationSite, station_id)
    return entry.site_id if entry is not None else None


def stations_on(sites: Collection[str]) -> SelectOfScalar[str]:
    """The ids of the stations on ``sites``, as a subquery for ``station_id IN (...)``."""
    return select(StationSite.station_id).where(col(StationSite.site_id).in_(sorted(sites)))
