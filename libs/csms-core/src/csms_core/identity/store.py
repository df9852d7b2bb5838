"""The ``identity.station_identity`` table and its access."""

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.db import migrate

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

    async def save(
        self, station_id: str, *, password: str | None = None, lenient: bool | None = None
    ) -> StationIdentity:
        """Create or update; a None argument leaves that attribute as it is."""
        async with self._factory() as session, session.begin():
            identity = await session.get(StationIdentity, station_id) or StationIdentity(
                station_id=station_id
            )
            if password is not None:
                identity.password_hash = hash_password(password)
            if lenient is not None:
                identity.lenient = lenient
            identity.updated_at = _now()
            session.add(identity)
        return identity

    async def delete(self, station_id: str) -> None:
        async with self._factory() as session, session.begin():
            identity = await session.get(StationIdentity, station_id)
            if identity is not None:
                await session.delete(identity)
